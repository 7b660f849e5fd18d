#!/usr/bin/env python3
"""Plain HTTP connections held open from one address, against a running ticker server.

    benches/held_connections.py ADDR PID N [chunked|silent]

Opens N connections from 127.0.0.2 (a second loopback address, so that checks from 127.0.0.1
have a budget of their own). `chunked` (the default) sends `GET /healthz` with a chunked body
that never ends; `silent` sends nothing. Then, while the attacker keeps every connection it
still has, it measures from 127.0.0.1: `/healthz` latency on 20 fresh connections, and whether
a new WebSocket upgrade gets its 101. Reports what the attacker's connections got, how many the
server still holds, and the server's open file descriptors (from /proc/PID/fd).

Loopback only, standard library only; every wait is bounded (about 15 s in all).
"""

import os
import selectors
import socket
import sys
import time

ATTACKER = "127.0.0.2"
CHECKER = "127.0.0.1"
CHUNKED = b"GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


def connect(addr, source, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(addr)
    return s


def first_line(s, timeout):
    """The status line of the answer, or what happened instead."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return "closed" if not data else data.decode(errors="replace")
            data += chunk
    except socket.timeout:
        return "no answer"
    except OSError as e:
        return type(e).__name__
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def attack(addr, n, mode):
    held, failed = [], 0
    for _ in range(n):
        try:
            s = connect(addr, ATTACKER, 2.0)
            if mode == "chunked":
                s.sendall(CHUNKED)
            s.setblocking(False)
            held.append(s)
        except OSError:
            failed += 1
    return held, failed


def outcomes(held, wait):
    """Reads what the server sent each connection within `wait`; returns counts by status."""
    sel = selectors.DefaultSelector()
    data = {}
    for s in held:
        sel.register(s, selectors.EVENT_READ)
        data[s] = b""
    deadline = time.monotonic() + wait
    closed = set()
    while time.monotonic() < deadline and len(closed) < len(held):
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                data[s] += chunk
            else:
                closed.add(s)
                sel.unregister(s)
    counts = {}
    for s in held:
        status = data[s].split(b"\r\n", 1)[0].decode(errors="replace") or "nothing"
        state = "closed" if s in closed else "held open"
        key = f"{status} / {state}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def health_latency(addr):
    times, failures = [], 0
    for _ in range(20):
        started = time.monotonic()
        try:
            s = connect(addr, CHECKER, 2.0)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            line = first_line(s, 2.0)
            s.close()
            if line.startswith("HTTP/1.1 200"):
                times.append((time.monotonic() - started) * 1000)
            else:
                failures += 1
        except OSError:
            failures += 1
    times.sort()
    return times, failures


def upgrade(addr):
    try:
        s = connect(addr, CHECKER, 2.0)
        s.sendall(UPGRADE)
        line = first_line(s, 2.0)
        s.close()
        return line
    except OSError as e:
        return type(e).__name__


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    addr = (host, int(port))
    pid, n = int(sys.argv[2]), int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else "chunked"
    started = time.monotonic()
    held, failed = attack(addr, n, mode)
    print(f"{mode}: {n} connections from {ATTACKER} in {time.monotonic() - started:.1f} s, "
          f"{failed} failed to connect")
    counts = outcomes(held, 3.0)
    for key, count in sorted(counts.items()):
        print(f"  {count:6d}  {key}")
    print(f"server fds: {len(os.listdir(f'/proc/{pid}/fd'))}")
    times, failures = health_latency(addr)
    if times:
        p50 = times[len(times) // 2]
        print(f"/healthz from {CHECKER}: {len(times)}/20 answered, "
              f"p50 {p50:.1f} ms, max {times[-1]:.1f} ms, {failures} failed (2 s timeout)")
    else:
        print(f"/healthz from {CHECKER}: 0/20 answered (2 s timeout)")
    print(f"new upgrade from {CHECKER}: {upgrade(addr)}")
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
