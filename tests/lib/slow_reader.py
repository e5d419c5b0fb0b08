#!/usr/bin/env python3
"""slow_reader.py URL CA TOKEN PATH PID|rate:BYTES — a client too slow for its reply.

Asks ldapdeskd for PATH over HTTPS with a tiny receive buffer, reads nothing
while the daemon is sent SIGTERM (PID), then reads the reply to its end.
Prints "BODY_BYTES CONTENT_LENGTH": equal when the stop let the whole reply
out, the body shorter when the daemon closed the connection under it.
With rate:BYTES instead of a PID, nobody is stopped: the reply is read
steadily at about BYTES per second, and the seconds it took follow.
"""
import os
import signal
import socket
import ssl
import sys
import time
import urllib.parse

url, ca, token, path, pid = sys.argv[1:6]
u = urllib.parse.urlsplit(url)
ctx = ssl.create_default_context(cafile=ca)
raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Set before connect, so the window offered stays small: the reply then
# waits in ldapdeskd's buffers, not in the kernel's.
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.connect((u.hostname, u.port))
tls = ctx.wrap_socket(raw, server_hostname=u.hostname)
tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n"
             % (path, u.hostname, token)).encode())
rate = int(pid[5:]) if pid.startswith("rate:") else 0
start = time.monotonic()
if not rate:
    time.sleep(2)  # the reply is made and queued
    os.kill(int(pid), signal.SIGTERM)
    time.sleep(1)  # the daemon drains meanwhile
chunks = []
got = 0
length = None  # the reply's Content-Length, once its head is in
head = b""
while True:
    if rate:  # one 4 KB read, then wait until the rate allows the next
        time.sleep(max(0.0, start + got / rate - time.monotonic()))
    try:
        chunk = tls.recv(4096 if rate else 65536)
    except (ssl.SSLError, OSError):
        break
    if not chunk:
        break
    chunks.append(chunk)
    got += len(chunk)
    # The head is looked for until found (not in the whole reply each time: quadratic).
    if length is None and b"\r\n\r\n" in b"".join(chunks[:64]):
        head = b"".join(chunks).partition(b"\r\n\r\n")[0]
        found = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")]
        length = found[0] if found else -1
    if length is not None and length >= 0 and got - len(head) - 4 >= length:
        break
data = b"".join(chunks)
head, sep, body = data.partition(b"\r\n\r\n")
length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
          if line.lower().startswith(b"content-length:")]
print(len(body), length[0] if length else -1, *([round(time.monotonic() - start)] if rate else []))
