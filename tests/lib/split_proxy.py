#!/usr/bin/env python3
"""split_proxy.py LISTEN_PORT UPSTREAM_PORT CONTROL_FILE — a TCP relay on 127.0.0.1
that can cut a server's reply in two.

Relays every connection to 127.0.0.1:UPSTREAM_PORT, bytes as they come (TLS passes
through untouched). When CONTROL_FILE holds "hold SECONDS", the next chunk the server
sends on a connection opened before the file was written (a pool's, not a bind made for
one login) goes out without its last byte, and that byte, with whatever follows on that
connection, SECONDS later; the file is removed when the hold begins.
So a client reading that reply gets all of a TLS record but one byte and must wait:
one that waits inside a blocking read stops everything else it does meanwhile.
Prints "ready" on stdout once listening.
"""
import os
import select
import socket
import sys
import time

listen_port, upstream_port, control = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", listen_port))
lsock.listen(16)
print("ready", flush=True)

peer = {}  # socket -> the socket it relays to
upstream = set()  # the sockets to the server
opened = {}  # client socket -> when it was accepted
held = {}  # client socket -> [release time, bytes held back]


def hold_seconds(client):
    try:
        with open(control) as f:
            words = f.read().split()
        written = os.stat(control).st_mtime
    except OSError:
        return 0
    if len(words) == 2 and words[0] == "hold" and opened[client] < written:
        os.unlink(control)
        return float(words[1])
    return 0


def close(s):
    for x in (s, peer.get(s)):
        if x is not None and x in peer:
            del peer[x]
            held.pop(x, None)
            opened.pop(x, None)
            upstream.discard(x)
            x.close()


def from_server(up, data):
    client = peer[up]
    if client in held:
        held[client][1] += data
        return
    secs = hold_seconds(client) if len(data) > 1 else 0
    if secs:
        client.sendall(data[:-1])
        held[client] = [time.monotonic() + secs, data[-1:]]
    else:
        client.sendall(data)


while True:
    now = time.monotonic()
    for client, (due, rest) in list(held.items()):
        if due <= now:
            del held[client]
            try:
                client.sendall(rest)
            except OSError:
                close(client)
    wait = min([due - now for due, _ in held.values()] + [0.2])
    ready, _, _ = select.select([lsock] + list(peer), [], [], max(wait, 0))
    for s in ready:
        if s is lsock:
            client, _ = lsock.accept()
            try:
                up = socket.create_connection(("127.0.0.1", upstream_port))
            except OSError:
                client.close()
                continue
            peer[client], peer[up] = up, client
            upstream.add(up)
            opened[client] = time.time()
            continue
        if s not in peer:
            continue
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        try:
            if not data:
                close(s)
            elif s in upstream:
                from_server(s, data)
            else:
                peer[s].sendall(data)
        except OSError:
            close(s)
