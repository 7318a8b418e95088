"""Test client of the launchers' proxy (models scenario): one request, its answer as JSON.

usage: proxy_client.py URL [--keys FILE --cred login|key|admin-key] [--wrong | --swapcase] [--cacert FILE]
                           [--method GET|POST] [--data JSON] [--ws]

The credential is read from the user's keys file (never given on the command line): `login`
sends HTTP basic auth with the UI login, `key` / `admin-key` an `Authorization: Bearer` key;
`--wrong` changes its last character, `--swapcase` the case of every letter of the password or key
(nginx's map would take that for the same string). --ws opens a websocket (RFC 6455) on URL, sends the
JSON of --data as one text frame and reads text frames until `stream_end` or close.
Prints {"status", "headers", "body", "frames", "cert_sha256"}: cert_sha256 is the sha256 of
the DER certificate the server presented.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import struct
import sys
import urllib.parse


def credential(keys_file, which, wrong, swapcase=False):
    with open(keys_file, encoding="utf-8") as handle:
        text = handle.read()
    if which == "login":
        user, password = re.search(r"^# login: (\S+) (\S+)$", text, re.M).groups()
        if wrong:
            password = password[:-1] + ("x" if password[-1] != "x" else "y")
        if swapcase:
            password = password.swapcase()
        return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    key = re.search(r"^# %s: (\S+)$" % re.escape(which), text, re.M).group(1)
    if wrong:
        key = key[:-1] + ("x" if key[-1] != "x" else "y")
    if swapcase:
        key = key.swapcase()
    return "Bearer " + key


def context(cacert):
    return ssl.create_default_context(cafile=cacert)


def recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def read_frame(sock):
    head = recv_exact(sock, 2)
    opcode, size = head[0] & 0x0F, head[1] & 0x7F
    if size == 126:
        size = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", recv_exact(sock, 8))[0]
    mask = recv_exact(sock, 4) if head[1] & 0x80 else None
    payload = recv_exact(sock, size)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload


def send_text(sock, text):
    payload = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def websocket(url, auth, cacert, data):
    parts = urllib.parse.urlsplit(url)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock = context(cacert).wrap_socket(raw, server_hostname=parts.hostname) if parts.scheme in ("https", "wss") else raw
    der = sock.getpeercert(binary_form=True) if parts.scheme in ("https", "wss") else b""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % (parts.path or "/"), "Host: %s" % parts.netloc, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
    if auth:
        lines.append("Authorization: %s" % auth)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    frames = []
    if status == 101:
        send_text(sock, json.dumps(data or {"prompt": "hello"}))
        while True:
            opcode, payload = read_frame(sock)
            if opcode == 8:
                break
            if opcode == 1:
                frames.append(json.loads(payload.decode()))
                if frames[-1].get("event") == "stream_end":
                    break
    sock.close()
    return {"status": status, "headers": headers, "body": "", "frames": frames,
            "cert_sha256": hashlib.sha256(der).hexdigest() if der else None}


def request(url, auth, cacert, method, data):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10, context=context(cacert))
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    body = json.dumps(data).encode() if data is not None else None
    path = parts.path + ("?" + parts.query if parts.query else "")
    conn.request(method, path, body=body, headers=headers)
    der = conn.sock.getpeercert(binary_form=True) if parts.scheme == "https" else b""
    resp = conn.getresponse()
    text = resp.read().decode("utf-8", "replace")
    return {"status": resp.status, "headers": dict(resp.getheaders()), "body": text, "frames": [],
            "cert_sha256": hashlib.sha256(der).hexdigest() if der else None}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--keys")
    parser.add_argument("--cred", choices=["login", "key", "admin-key"])
    parser.add_argument("--wrong", action="store_true")
    parser.add_argument("--swapcase", action="store_true")
    parser.add_argument("--cacert")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--data")
    parser.add_argument("--ws", action="store_true")
    args = parser.parse_args()
    auth = credential(args.keys, args.cred, args.wrong, args.swapcase) if args.cred else None
    data = json.loads(args.data) if args.data else None
    try:
        if args.ws:
            result = websocket(args.url, auth, args.cacert, data)
        else:
            result = request(args.url, auth, args.cacert, args.method, data)
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        print(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc)}))
        sys.exit(3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
