# Stand-in for text-generation-webui's server.py at 8466cf2 (tests only): same flags, ports and API answers, no model code.
"""Stand-in web UI server.

Reproduces what the deployment depends on: the command-line flags of
text-generation-webui at commit 8466cf229ab29ace6e336a96f81f4eda44ca94fa, the refusal to
start outside its own folder, cwd-relative models/ loras/ logs/ folders, the UI port
(7860, HTTP basic auth standing in for Gradio's login when --gradio-auth[-path] is
given, TLS with --ssl-keyfile/--ssl-certfile), the API ports with --api and the openai
extension. Without --listen everything binds 127.0.0.1; --listen binds 0.0.0.0 and
--listen-host applies to the UI only. Answers have the shapes of the real ones
(extensions/api/blocking_api.py, streaming_api.py, extensions/openai/script.py); the
generated text is always "stand-in".

Blocking API (--api-blocking-port, 5000), paths matched exactly:
  GET  /api/v1/model        -> {"result": name}
  POST /api/v1/model        {"action": "info"|"load"|"unload"|"list"} -> {"result": ...};
                            info/load/unload give {"model_name", "lora_names",
                            "shared.settings", "shared.args": vars(args)} (args include
                            --gradio-auth, as the real one leaks them); load (body
                            "model_name") and unload switch the model; no action -> name
  POST /api/v1/generate     {"prompt": ...} -> {"results": [{"text": "stand-in"}]}
  POST /api/v1/chat         {"user_input": ...} -> {"results": [{"history": body
                            "history" or {"internal": [], "visible": []}}]}
  POST /api/v1/token-count  {"prompt": ...} -> {"results": [{"tokens": N}]}
  POST /api/v1/stop-stream  -> {"results": "success"}
  A load only switches the model when its folder exists (else {"error": ...}); a
  missing field or bad JSON answers 400 (the real one drops the connection).
Streaming API (--api-streaming-port, 5005): RFC 6455 websocket on /api/v1/stream and
  /api/v1/chat-stream (full path, query included, like the real one): per client text
  frame, {"event": "text_stream", "message_num": 0, "text": "stand"}, {..., 1, "-in"},
  {"event": "stream_end", "message_num": 2}, then a close frame; a message without
  "prompt" (stream) or "user_input" (chat-stream) gets close code 1011, an unknown path
  a close right after the handshake. Plain GET / -> {"streaming": true}.
OpenAI API (OPENEDAI_PORT or 5001), paths matched by prefix/substring on the raw path
  (query string included), as the real extension does:
  GET  /v1/models, /v1/engines           -> the model list
  GET  /v1/engines/<name> (any /v1/models... or /v1/engines... path containing
       "engines", e.g. /v1/models?/v1/engines/<name>) -> {"id": name, "object": "engine",
       "owner": "self", "ready": true}; recorded in STATE["loads"], and the model
       switches to <name> when its folder exists (not for the pseudo models)
  GET  /v1/models/<name>                 -> {"id": name, "object": "model", ...}
  GET  ...billing/usage...               -> {"total_usage": 0}
  POST ...completions... / ...generate... -> chat.completions (path contains "chat") or
       text_completion answer (id, object, created, model, choices, usage); "stream":
       true gives server-sent events; 503 when no model is loaded
  POST /api/v1/token-count               -> {"results": [{"tokens": N}]}
POST answers go through the same basic-auth check as GET when auth is set.

Stand-in only: GET /standin/state on the UI port returns argv, cwd, uid, the resolved
model folder, the loader and the settings it read, "authorization_seen" (paths of requests
that brought an Authorization header to a port that asks for none), and "loads", the model names a load
was requested for through the APIs, for tests.
"""
import base64
import hashlib
import json
import os
import re
import signal
import struct
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
# what the real server keeps in modules/shared.py
SHARED = {"model_name": "None", "lora_names": [], "settings": {}, "args": None}
LOCK = threading.Lock()
REPLY = ("stand", "-in")  # the generated text, in the chunks the streaming API sends
# names the openai extension never loads (models.get_pseudo_model_list + embeddings model)
PSEUDO_MODELS = ("gpt-3.5-turbo", "text-embedding-ada-002", "all-mpnet-base-v2")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


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


def tokens(text):
    """A stand-in token count: one token per word."""
    return len(str(text).split())


def natural_key(name):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def available_models():
    """modules.utils.get_available_models: the entries of --model-dir."""
    return sorted((re.sub(r"\.pth$", "", p.name) for p in Path(SHARED["args"].model_dir).glob("*")
                   if not p.name.endswith((".txt", "-np", ".pt", ".json", ".yaml", ".py"))
                   and "llama-tokenizer" not in p.name), key=natural_key)


def model_info():
    """blocking_api.get_model_info, which dumps every parsed flag (--gradio-auth included)."""
    return {"model_name": SHARED["model_name"], "lora_names": SHARED["lora_names"],
            "shared.settings": SHARED["settings"], "shared.args": dict(vars(SHARED["args"]))}


def request_load(model_name):
    """Record a load request; switch models when the folder exists (a real load could succeed)."""
    with LOCK:
        STATE["loads"].append(model_name)
        found = (Path(SHARED["args"].model_dir) / str(model_name)).is_dir()
        if found:
            SHARED["model_name"] = model_name
    return found


def stream_events(_message):
    """The frames streaming_api sends for one request: text chunks, then stream_end."""
    events = [{"event": "text_stream", "message_num": i, "text": text} for i, text in enumerate(REPLY)]
    return events + [{"event": "stream_end", "message_num": len(REPLY)}]


# websocket paths of the streaming port -> the field the real handler requires
WS_PATHS = {"/api/v1/stream": "prompt", "/api/v1/chat-stream": "user_input"}


def blocking_post(path, raw):
    """POST on the blocking API port (extensions/api/blocking_api.py): (status, answer) or None."""
    if path not in ("/api/v1/generate", "/api/v1/chat", "/api/v1/stop-stream", "/api/v1/model",
                    "/api/v1/token-count"):
        return None
    try:
        body = json.loads(raw.decode("utf-8"))
        if path == "/api/v1/generate":
            body["prompt"]  # pylint: disable=pointless-statement
            return 200, {"results": [{"text": "".join(REPLY)}]}
        if path == "/api/v1/chat":
            body["user_input"]  # pylint: disable=pointless-statement
            return 200, {"results": [{"history": body.get("history") or {"internal": [], "visible": []}}]}
        if path == "/api/v1/stop-stream":
            return 200, {"results": "success"}
        if path == "/api/v1/token-count":
            return 200, {"results": [{"tokens": tokens(body["prompt"])}]}
        action = body.get("action", "")
        result = SHARED["model_name"]
        if action == "load":
            model_name = body["model_name"]
            for key, value in (body.get("args") or {}).items():
                setattr(SHARED["args"], key, value)
            if not request_load(model_name):
                missing = Path(SHARED["args"].model_dir) / str(model_name)
                return 200, {"error": {"message": repr(FileNotFoundError(f"model folder {missing} not found"))}}
            SHARED["args"].model = model_name
            result = model_info()
        elif action == "unload":
            with LOCK:
                SHARED["model_name"] = None
                SHARED["args"].model = None
            result = model_info()
        elif action == "list":
            result = available_models()
        elif action == "info":
            result = model_info()
        return 200, {"result": result}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # the real handler raises (after its 200 for most paths) and drops the connection
        return 400, {"error": {"message": repr(exc)}}


def openai_error(message, code=500, error_type="OpenAIError", param=""):
    return code, {"error": {"message": message, "code": code, "type": error_type, "param": param}}


def openai_get(path):
    """GET on the openai extension's port: prefix/substring matches on the raw path (query
    string included), as extensions/openai/script.py does."""
    if path.startswith("/v1/engines") or path.startswith("/v1/models"):
        is_legacy = "engines" in path
        is_list = path in ["/v1/engines", "/v1/models"]
        name = SHARED["model_name"]
        if is_legacy and not is_list:
            model_name = path[path.find("/v1/engines/") + len("/v1/engines/"):]
            if model_name in PSEUDO_MODELS or model_name == name:  # never loaded, still recorded
                with LOCK:
                    STATE["loads"].append(model_name)
            else:
                request_load(model_name)
            return 200, {"id": model_name, "object": "engine", "owner": "self", "ready": True}
        if is_list and is_legacy:
            return 200, {"object": "list", "data": [{"id": name, "object": "engine", "owner": "user",
                                                     "ready": name not in (None, "None")}]}
        if is_list:
            return 200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "user"}]}
        return 200, {"id": path[len("/v1/models/"):], "object": "model", "owned_by": "user", "permission": []}
    if "/billing/usage" in path:
        return 200, {"total_usage": 0}
    return None


def openai_completion(path, body):
    """extensions/openai/completions.py: chat_completions/completions and their streaming forms."""
    is_legacy = "/generate" in path
    choices = "data" if is_legacy else "choices"
    now = time.time()
    answer = "".join(REPLY)
    chat = "chat" in path
    if chat:
        messages = body["messages"]
        for msg in messages:
            for field in ("role", "content"):
                if field not in msg:
                    return openai_error(f"messages: missing {field}", 400, "InvalidRequestError", "messages")
        prompts = [" ".join(msg["content"] or "" for msg in messages)]
    else:
        prompt_str = "context" if is_legacy else "prompt"
        if prompt_str not in body:
            return openai_error("Missing required input", 400, "InvalidRequestError", prompt_str)
        prompts = body[prompt_str]
        if isinstance(prompts, str) or (isinstance(prompts, list) and prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
    prompt_tokens = sum(len(p) if isinstance(p, list) else tokens(p) for p in prompts)
    completion_tokens = tokens(answer) * len(prompts)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    cmpl_id = ("chatcmpl-%d" if chat else "conv-%d") % int(now * 1e9)

    def answer_with(object_type, items):
        return {"id": cmpl_id, "object": object_type, "created": int(now), "model": SHARED["model_name"],
                choices: items}

    def item(index, content, finish):
        if not chat:
            return {"index": index, "finish_reason": finish, "text": content, "logprobs": None}
        message = {"role": "assistant", "content": content}
        return {"index": index, "finish_reason": finish, "message": message, "delta": message}

    if body.get("stream", False):
        object_type = "chat.completions.chunk" if chat else "text_completion.chunk"
        chunks = [answer_with(object_type, [item(0, text, None)]) for text in ("",) + REPLY]
        last = answer_with(object_type, [item(0, "", "stop")])
        last["usage"] = usage
        return 200, SSE(chunks + [last])
    if chat:
        resp = answer_with("chat.completions", [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": answer}}])
    else:
        resp = answer_with("text_completion", [item(i, answer, "stop") for i in range(len(prompts))])
    resp["usage"] = usage
    return 200, resp


def openai_post(path, raw):
    """POST on the openai extension's port (substring matches, as script.py does)."""
    try:
        body = json.loads(raw.decode("utf-8"))
        if "/completions" in path or "/generate" in path:
            if SHARED["model_name"] in (None, "None"):
                return openai_error("No model loaded.", 503, "ServiceUnavailableError")
            return openai_completion(path, body)
        if path == "/api/v1/token-count":
            return 200, {"results": [{"tokens": tokens(body["prompt"])}]}
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return openai_error(repr(exc))


class SSE(list):
    """Chunks to send as server-sent events (the openai extension's "stream": true)."""


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_frame(opcode, payload=b""):
    """One unmasked, final frame (server to client)."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload


def ws_read_frame(rfile, limit=1 << 24):
    """One client frame -> (fin, opcode, payload), None at end of stream. Clients mask."""
    def read(n):
        data = rfile.read(n)
        if len(data) < n:
            raise EOFError
        return data
    try:
        b0, b1 = read(2)
        size = b1 & 0x7F
        if size == 126:
            size = struct.unpack("!H", read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", read(8))[0]
        if size > limit:
            raise EOFError
        mask = read(4) if b1 & 0x80 else b""
        payload = read(size)
    except EOFError:
        return None
    if mask and payload:
        keys = (mask * (size // 4 + 1))[:size]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(size, "big")
    return bool(b0 & 0x80), b0 & 0x0F, payload


def handler(routes, auth=None, get=None, post=None, ws=None):
    """routes: exact GET paths (query string ignored) -> answer or callable giving it;
    get(path) and post(path, raw_body): for the other paths, given the raw path with its
    query string, return (status, answer) or None for 404; ws: {path: field} websocket
    paths (full path) answered with stream_events when the message has that field."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):  # quiet
            return

        def authorized(self):
            if self.headers.get("Authorization") and not auth:
                # a key or login that reached a server which asks none (a proxy should keep them)
                STATE.setdefault("authorization_seen", []).append(self.path)
            if not auth:
                return True
            header = self.headers.get("Authorization", "")
            ok = False
            if header.startswith("Basic "):
                try:
                    user, _sep, pw = base64.b64decode(header[6:]).decode().partition(":")
                    ok = (user, pw) in auth
                except ValueError:  # bad base64 or UTF-8
                    ok = False
            if not ok:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="webui"')
                self.end_headers()
            return ok

        def send_json(self, code, answer):
            data = json.dumps(answer, default=str).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def send_sse(self, chunks):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(("data: " + json.dumps(chunk) + "\r\n\r\n").encode())
            self.wfile.write(b"data: [DONE]\r\n\r\n")

        def not_found(self):
            self.send_response(404)
            self.end_headers()

        def read_body(self):
            """The request body by Content-Length (or chunked); None without either."""
            length = self.headers.get("Content-Length")
            try:
                if length is not None:
                    return self.rfile.read(int(length)) if int(length) > 0 else b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
            except ValueError:
                pass
            return None

        def do_GET(self):
            if not self.authorized():
                return
            if ws is not None and self.headers.get("Upgrade", "").lower() == "websocket":
                self.websocket(ws.get(self.path))
                return
            body = routes.get(self.path.split("?")[0])
            if body is not None:
                self.send_json(200, body() if callable(body) else body)
                return
            answer = get(self.path) if get else None
            if answer is None:
                self.not_found()
                return
            self.send_json(*answer)

        def do_POST(self):
            if not self.authorized():
                return
            if post is None:
                self.not_found()
                return
            raw = self.read_body()
            if raw is None:
                self.send_json(400, {"error": {"message": "Content-Length or Transfer-Encoding expected"}})
                return
            answer = post(self.path, raw)
            if answer is None:
                self.not_found()
            elif isinstance(answer[1], SSE):
                self.send_sse(answer[1])
            else:
                self.send_json(*answer)

        def websocket(self, field):
            """RFC 6455 server side: handshake, then per text message the stream_events frames
            and a close frame. An unknown path is accepted, then closed (as the real one)."""
            self.close_connection = True
            key = self.headers.get("Sec-WebSocket-Key", "")
            if not key or "upgrade" not in self.headers.get("Connection", "").lower():
                self.send_json(400, {"error": {"message": "not a websocket handshake"}})
                return
            if self.headers.get("Sec-WebSocket-Version") != "13":
                data = b'{"error": {"message": "Sec-WebSocket-Version 13 expected"}}'
                self.send_response(426)
                self.send_header("Sec-WebSocket-Version", "13")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.protocol_version = "HTTP/1.1"  # clients reject "HTTP/1.0 101"
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", ws_accept(key))
            self.end_headers()
            self.connection.settimeout(60)
            try:
                self.ws_session(field)
            except OSError:  # timeouts, resets
                pass

        def ws_session(self, field):
            def close(code):
                self.wfile.write(ws_frame(0x8, struct.pack("!H", code)))
                self.connection.settimeout(1)  # wait a little for the client's close frame
                try:
                    ws_read_frame(self.rfile)
                except OSError:
                    pass
            if field is None:
                close(1000)
                return
            message = b""
            while True:
                frame = ws_read_frame(self.rfile)
                if frame is None:
                    return
                fin, opcode, payload = frame
                if opcode == 0x8:  # close: echo the status code
                    self.wfile.write(ws_frame(0x8, payload[:2]))
                    return
                if opcode == 0x9:  # ping
                    self.wfile.write(ws_frame(0xA, payload))
                    continue
                if opcode not in (0x0, 0x1, 0x2):  # pong, reserved
                    continue
                message += payload
                if not fin:
                    continue
                try:
                    body = json.loads(message.decode("utf-8"))
                    body[field]  # pylint: disable=pointless-statement
                except (ValueError, KeyError, TypeError):
                    close(1011)  # the real handler raises: internal error
                    return
                for event in stream_events(body):
                    self.wfile.write(ws_frame(0x1, json.dumps(event).encode()))
                close(1000)
                return

    return Handler


def serve(host, port, routes, auth=None, tls=None, **kwargs):
    srv = ThreadingHTTPServer((host, port), handler(routes, auth, **kwargs))
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
                 extensions=args.extensions or [], loads=[], authorization_seen=[])
    host = "0.0.0.0" if args.listen else "127.0.0.1"
    ui_host = args.listen_host if args.listen and args.listen_host else host
    tls = (args.ssl_keyfile, args.ssl_certfile) if args.ssl_keyfile and args.ssl_certfile else None
    ui_port = args.listen_port or 7860
    serve(ui_host, ui_port, {"/": {"title": "Text generation web UI"}, "/standin/state": lambda: STATE},
          load_auth(args), tls)
    SHARED.update(model_name=model or "None", lora_names=list(args.lora or []), settings=settings, args=args)
    if args.api:
        serve(host, args.api_blocking_port,
              {"/api/v1/model": lambda: {"result": SHARED["model_name"]}}, post=blocking_post)
        serve(host, args.api_streaming_port, {"/": {"streaming": True}}, ws=WS_PATHS)
        print(f"Starting API at http://{host}:{args.api_blocking_port}/api", flush=True)
        print(f"Starting streaming server at ws://{host}:{args.api_streaming_port}/api/v1/stream", flush=True)
    if "openai" in (args.extensions or []):
        port = int(os.environ.get("OPENEDAI_PORT", 5001))
        serve(host, port, {}, get=openai_get, post=openai_post)
        print(f"OpenAI compatible API ready at: OPENAI_API_BASE=http://{host}:{port}/v1", flush=True)
    scheme = "https" if tls else "http"
    print(f"Running on local URL:  {scheme}://{ui_host}:{ui_port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
