#!/usr/bin/env python3
"""dying_daemon.py PORT CERT KEY OUT — a daemon that dies under a change.

Listens on 127.0.0.1:PORT (TLS with CERT/KEY) as ldapdeskd would, answers a
login with a token, and closes every connection that brings any other
request without answering it, as a daemon killed while working on it. Each
request line is appended to OUT, so a test can count how often the client
sent its change: once, whatever the connection it was kept on.
Prints "ready" once listening; exits after 20 s.
"""
import socket
import ssl
import sys
import threading
import time

port, cert, key, out = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(port)))
srv.listen(8)
LOGIN = (b'{"token":"dGVzdA.dGVzdA","expires":"2099-01-01T00:00:00.000+08:00",'
         b'"roles":["helpdesk"]}')


def read_request(conn):
    """One request (head and Content-Length body), or None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head.split(b"\r\n")[0].decode()


def serve(raw):
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    try:
        while True:
            line = read_request(conn)
            if line is None:
                break
            with open(out, "a", encoding="utf-8") as f:
                f.write(line + "\n")
            if not line.startswith("POST /v1/login "):
                break  # dies under the change: no answer
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(LOGIN) + LOGIN)
    except OSError:
        pass
    conn.close()


print("ready", flush=True)
srv.settimeout(1)
end = time.time() + 20
while time.time() < end:
    try:
        raw, _ = srv.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(raw,), daemon=True).start()
