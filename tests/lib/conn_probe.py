#!/usr/bin/env python3
"""conn_probe.py MODE URL CA [ARGS] — how ldapdeskd treats connections.

Modes (each prints one line per step, for the test to match):
  cap N        opens N HTTPS connections from 127.0.0.1 and asks each for
               GET /v1/health (kept alive), then one more from 127.0.0.1,
               one from 127.0.0.2, and, after closing one of the N, one more
               from 127.0.0.1: "held K", "extra accepted|refused STATUS",
               "other ...", "reopen ..." (STATUS 0: closed, no answer).
  hold N S     opens N connections as cap does, prints "held K", holds
               them S seconds.
  loris        sends a request head one byte every 0.5 s: "closed after S s
               (B bytes sent)" or "open after 30 s".
  idle         connects (TLS handshake) and sends nothing: "closed after S s".
  slowbody     a POST head with Content-Length: 400, then its body one byte
               every 0.5 s: as loris.
  keepalive G  three GET /v1/health on one connection, G seconds apart:
               "statuses A B C".
  flood S H    pipelines GET /v1/health on one connection without reading a
               reply, for S seconds or 64 MiB, whichever first, or until
               sends stall for 2 s (the daemon stopped reading); prints
               "sent B stalled|timeup|capped|closed", then holds the connection
               open H seconds.
"""
import socket
import ssl
import sys
import time
import urllib.parse

mode, url, ca = sys.argv[1:4]
u = urllib.parse.urlsplit(url)
ctx = ssl.create_default_context(cafile=ca)


def connect(source="127.0.0.1"):
    raw = socket.create_connection((u.hostname, u.port), timeout=10,
                                   source_address=(source, 0))
    return ctx.wrap_socket(raw, server_hostname=u.hostname)


def health(tls):
    """One GET /v1/health on tls: its status, or 0 when the connection ends."""
    tls.sendall(("GET /v1/health HTTP/1.1\r\nHost: %s\r\n\r\n" % u.hostname).encode())
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                return 0
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = tls.recv(4096)
            if not chunk:
                return 0
            body += chunk
        return int(head.split(b" ")[1])
    except (OSError, ssl.SSLError):
        return 0


def try_one(source="127.0.0.1"):
    """A connection asked for GET /v1/health: (it, 200) when served, else
    (None, the status it got instead, 0 for none)."""
    try:
        tls = connect(source)
    except (OSError, ssl.SSLError):
        return None, 0
    status = health(tls)
    if status == 200:
        return tls, status
    tls.close()
    return None, status


def verdict(got):
    return "accepted" if got[0] is not None else "refused %d" % got[1]


def dribble(data, prefix=b"", every=0.5, limit=30.0):
    """Sends prefix, then data one byte per `every` s; reports when the
    server closed."""
    tls = connect()
    tls.sendall(prefix)
    tls.settimeout(every)
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < limit:
        try:
            if sent < len(data):
                tls.send(data[sent:sent + 1])
                sent += 1
            if tls.recv(4096) == b"":
                break
        except socket.timeout:
            continue
        except (OSError, ssl.SSLError):
            break
    else:
        print("open after %d s" % limit)
        return
    print("closed after %.1f s (%d bytes sent)" % (time.monotonic() - start, sent))


if mode == "cap":
    n = int(sys.argv[4])
    held = [t for t, _ in (try_one() for _ in range(n)) if t is not None]
    print("held %d" % len(held))
    print("extra " + verdict(try_one()))
    print("other " + verdict(try_one("127.0.0.2")))
    held.pop().close()
    time.sleep(0.5)
    print("reopen " + verdict(try_one()))
elif mode == "hold":
    n, seconds = int(sys.argv[4]), float(sys.argv[5])
    held = [t for t, _ in (try_one() for _ in range(n)) if t is not None]
    print("held %d" % len(held), flush=True)
    time.sleep(seconds)
elif mode == "loris":
    dribble(("GET /v1/health HTTP/1.1\r\nHost: %s\r\n" % u.hostname).encode() + b"X" * 200)
elif mode == "slowbody":
    head = ("POST /v1/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            "Content-Length: 400\r\n\r\n" % u.hostname).encode()
    dribble(b" " * 400, prefix=head)
elif mode == "idle":
    tls = connect()
    start = time.monotonic()
    tls.settimeout(40)
    try:
        tls.recv(1)
    except (OSError, ssl.SSLError):
        pass
    print("closed after %.1f s" % (time.monotonic() - start))
elif mode == "keepalive":
    gap = float(sys.argv[4])
    tls = connect()
    statuses = []
    for i in range(3):
        if i:
            time.sleep(gap)
        statuses.append(str(health(tls)))
        if not i:  # the caller waits for this before it changes anything
            print("connected", flush=True)
    print("statuses " + " ".join(statuses))
elif mode == "flood":
    secs, hold = float(sys.argv[4]), float(sys.argv[5])
    tls = connect()
    tls.settimeout(0.25)
    req = ("GET /v1/health HTTP/1.1\r\nHost: %s\r\n\r\n" % u.hostname).encode() * 256
    sent, stalled, how = 0, 0.0, "timeup"
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if sent >= 64 << 20:
            how = "capped"
            break
        try:
            sent += tls.send(req)
            stalled = 0.0
        except (socket.timeout, ssl.SSLWantWriteError):
            stalled += 0.25
            if stalled >= 2:
                how = "stalled"
                break
        except (OSError, ssl.SSLError):
            how = "closed"
            break
    print("sent %d %s" % (sent, how), flush=True)
    time.sleep(hold)
else:
    sys.exit("conn_probe.py: unknown mode " + mode)
