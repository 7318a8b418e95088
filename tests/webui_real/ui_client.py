# Test client (realui scenario): runs events of the real web UI's Gradio 3.33 queue through the launchers' proxy, as a browser does.
"""Run events of the web UI through Gradio's queue behind the launcher's proxy, as the browser does.

usage: ui_client.py URL --keys FILE --cacert FILE --events JSON [--session HASH] [--timeout SECONDS]

With the queue on (server.py's .queue()), the browser runs each event of the UI through a
websocket on /queue/join (here with `websockets`, the web UI's own dependency: run this with
the web UI's venv python): the server asks for the session hash and the event's fn_index
("send_hash"), then for its inputs ("send_data"), and answers "process_starts", one
"process_generating" per value a generator yields and "process_completed". A chain of
events (a button's .then()s) is the browser's to run, one after the other in the same
session: State components stay on the server, keyed by the session hash (the browser sends
null for them). --events is a JSON list of [fn_index, data]; they run in that order and the
first one that fails ends the run. The UI login is read from the user's keys file, never
from the command line.

Prints a JSON list, one entry per event run: {"fn_index", "status" (the websocket
handshake's HTTP status), "messages" (the "msg" of each message), "generating" (the data of
each process_generating), "success" and "output" (process_completed's)}.
"""

import argparse
import json
import os
import ssl
import sys
import uuid

# websockets: the web UI's own dependency (this client runs with the web UI's venv python)
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

# the proxy client of the models scenario (copied beside this folder on the node): its reader of the keys file
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proxy_client import credential  # noqa: E402  pylint: disable=wrong-import-position


def websocket_url(url):
    """The ws(s):// form of the web UI's http(s):// URL."""
    scheme, rest = url.rstrip("/").split("://", 1)
    return {"https": "wss", "http": "ws"}[scheme] + "://" + rest


def tls_context(cacert):
    """The proxy's certificate trusted, TLS 1.2 at most: websockets 11's sync client reads the socket in a thread of its
    own while it writes the opening handshake, and with TLS 1.3 the proxy's session tickets arrive just then; one
    OpenSSL session used from two threads at once lost the request of about 1 connection in 75 here (12 of some 900;
    nginx closed them 60 s later: "connection closed during handshake"), none of 1800 with TLS 1.2, which sends no
    ticket after the handshake. (Python's SSL sockets are not safe for a read and a write at once.)"""
    context = ssl.create_default_context(cafile=cacert)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def run_event(url, auth, cacert, session, fn_index, data, timeout):
    result = {"fn_index": fn_index, "status": None, "messages": [], "generating": [], "success": False, "output": None}
    try:
        ws = connect(websocket_url(url) + "/queue/join", ssl_context=tls_context(cacert),
                     additional_headers={"Authorization": auth}, open_timeout=timeout, max_size=None)
    except InvalidStatus as exc:
        result["status"] = exc.response.status_code
        return result
    result["status"] = 101
    with ws:
        while True:
            msg = json.loads(ws.recv(timeout))
            result["messages"].append(msg["msg"])
            if msg["msg"] == "send_hash":
                ws.send(json.dumps({"fn_index": fn_index, "session_hash": session}))
            elif msg["msg"] == "send_data":
                ws.send(json.dumps({"fn_index": fn_index, "session_hash": session, "data": data, "event_data": None}))
            elif msg["msg"] == "process_generating":
                result["generating"].append(msg["output"].get("data"))
            elif msg["msg"] in ("process_completed", "queue_full"):
                result["success"], result["output"] = msg.get("success", False), msg.get("output")
                return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--keys", required=True)
    parser.add_argument("--cacert", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--session", default=uuid.uuid4().hex[:11])
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    auth = credential(args.keys, "login", False)
    results = []
    try:
        for fn_index, data in json.loads(args.events):
            results.append(run_event(args.url, auth, args.cacert, args.session, fn_index, data, args.timeout))
            if not results[-1]["success"]:
                break
    except (OSError, WebSocketException, TimeoutError, ValueError) as exc:
        results.append({"error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
