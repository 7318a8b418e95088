# Stand-in for text-generation-webui's server.py at 8466cf2 (tests only): same flags, ports and API answers, no model code.
"""Stand-in web UI server.

Reproduces what the deployment depends on: the command-line flags of
text-generation-webui at commit 8466cf229ab29ace6e336a96f81f4eda44ca94fa, the refusal to
start outside its own folder, cwd-relative models/ loras/ logs/ folders, the UI port
(7860, HTTP basic auth standing in for Gradio's login when --gradio-auth[-path] is
given, TLS with --ssl-keyfile/--ssl-certfile), the API ports with --api (5000:
GET /api/v1/model -> {"result": name}; 5005 streaming) and the openai extension
(OPENEDAI_PORT or 5001: GET /v1/models). Without --listen everything binds 127.0.0.1;
--listen binds 0.0.0.0 and --listen-host applies to the UI only.

Stand-in only: GET /standin/state on the UI port returns argv, cwd, uid, the resolved
model folder, the loader and the settings it read, for tests.
"""
import base64
import json
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# the real server imports Markdown; importing it here proves the venv is the one used
import markdown  # noqa: F401  pylint: disable=unused-import
import yaml

from modules import shared

STATE = {}


def fail(msg, code=1):
    print(msg, file=sys.stderr, flush=True)
    sys.exit(code)


def pick_loader(args, model_path):
    if args.loader:
        return args.loader
    if (model_path / "quantize_config.json").exists() or args.wbits:
        return "AutoGPTQ"
    if list(model_path.glob("*.gguf")) or list(model_path.glob("*ggml*.bin")):
        return "llama.cpp"
    return "Transformers"


def model_menu(model_dir):
    names = sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".")
                   and p.name not in ("place-your-models-here.txt", "config.yaml", "config-user.yaml"))
    if not names:
        fail("No models are available! Please download at least one.")
    print("The following models are available:\n")
    for i, name in enumerate(names, 1):
        print(f"{i}. {name}")
    print(f"\nWhich one do you want to load? 1-{len(names)}\n", flush=True)
    line = sys.stdin.readline()
    try:
        return names[int(line.strip()) - 1]
    except (ValueError, IndexError):
        fail(f"Invalid model choice: {line.strip()!r}")


def load_auth(args):
    creds = []
    if args.gradio_auth:
        creds += [c.strip() for c in args.gradio_auth.split(",") if c.strip()]
    if args.gradio_auth_path:
        with open(args.gradio_auth_path, encoding="utf-8") as fh:
            creds += [c.strip() for line in fh for c in line.split(",") if c.strip()]
    return {tuple(c.split(":", 1)) for c in creds if ":" in c}


def handler(routes, auth=None):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):  # quiet
            return

        def do_GET(self):
            if auth:
                header = self.headers.get("Authorization", "")
                ok = False
                if header.startswith("Basic "):
                    user, _sep, pw = base64.b64decode(header[6:]).decode().partition(":")
                    ok = (user, pw) in auth
                if not ok:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="webui"')
                    self.end_headers()
                    return
            body = routes.get(self.path.split("?")[0])
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body() if callable(body) else body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def serve(host, port, routes, auth=None, tls=None):
    srv = ThreadingHTTPServer((host, port), handler(routes, auth))
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[1], tls[0])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    if not Path("server.py").exists():
        fail("server.py must be started from the text-generation-webui folder "
             f"(cwd {os.getcwd()} has no server.py)")
    args = shared.parser.parse_args()
    if args.chat:
        print("The --chat flag has been deprecated and is now the default.", flush=True)

    settings = {}
    if args.settings:
        with open(args.settings, encoding="utf-8") as fh:
            settings = yaml.safe_load(fh) or {}
        print(f"Loading settings from {args.settings}...", flush=True)

    model_dir = Path(args.model_dir)
    model = args.model
    if args.model_menu:
        model = model_menu(model_dir)
    loader = None
    model_path = None
    if model:
        model_path = model_dir / model
        if not model_path.is_dir():
            fail(f"FileNotFoundError: model folder {model_path} not found")
        loader = pick_loader(args, model_path)
        print(f"Loading {model}...", flush=True)
    for lora in args.lora or []:
        if not (Path(args.lora_dir) / lora).is_dir():
            fail(f"FileNotFoundError: LoRA folder {Path(args.lora_dir) / lora} not found")
        print(f"Applying the following LoRAs to {model}: {lora}", flush=True)

    # The real server writes chat history and session data under cwd-relative logs/.
    logs = Path("logs")
    try:
        logs.mkdir(exist_ok=True)
        (logs / f"session_{os.getpid()}.json").write_text(
            json.dumps({"model": model, "started": time.time()}), encoding="utf-8")
    except OSError as exc:
        fail(f"OSError: cannot write logs/ in {os.getcwd()}: {exc.strerror}")

    STATE.update(argv=sys.argv, cwd=os.getcwd(), uid=os.getuid(), model=model,
                 model_path=str(model_path.resolve()) if model_path else None,
                 loader=loader, settings=settings, loras=args.lora or [],
                 extensions=args.extensions or [])
    host = "0.0.0.0" if args.listen else "127.0.0.1"
    ui_host = args.listen_host if args.listen and args.listen_host else host
    tls = (args.ssl_keyfile, args.ssl_certfile) if args.ssl_keyfile and args.ssl_certfile else None
    ui_port = args.listen_port or 7860
    serve(ui_host, ui_port, {"/": {"title": "Text generation web UI"}, "/standin/state": lambda: STATE},
          load_auth(args), tls)
    name = model or "None"
    if args.api:
        serve(host, args.api_blocking_port, {"/api/v1/model": {"result": name}})
        serve(host, args.api_streaming_port, {"/": {"streaming": True}})
        print(f"Starting API at http://{host}:{args.api_blocking_port}/api", flush=True)
        print(f"Starting streaming server at ws://{host}:{args.api_streaming_port}/api/v1/stream", flush=True)
    if "openai" in (args.extensions or []):
        port = int(os.environ.get("OPENEDAI_PORT", 5001))
        data = [{"id": name, "object": "model", "owned_by": "user"}]
        serve(host, port, {"/v1/models": {"object": "list", "data": data}})
        print(f"OpenAI compatible API ready at: OPENAI_API_BASE=http://{host}:{port}/v1", flush=True)
    scheme = "https" if tls else "http"
    print(f"Running on local URL:  {scheme}://{ui_host}:{ui_port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
