"""Null servers used to measure the clients and the loopback, not the registries.

    python nullserver.py http   # HTTP sink/source: POST -> 202 + Location, PUT/PATCH
                                #   bodies are read and discarded, GET ?size=N sends N bytes
    python nullserver.py raw    # accepts connections, reads to EOF, replies with the count

Binds 127.0.0.1 on a free port and prints "PORT <n>" on stdout. One thread per
connection. Run it pinned to the server core with taskset.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import urllib.parse
from collections.abc import Callable

BUF = 4 << 20
SEND = 8 << 20


def _serve(handler: Callable[[socket.socket], None]) -> None:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    print(f"PORT {ls.getsockname()[1]}", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def _raw(conn: socket.socket) -> None:
    buf = bytearray(BUF)
    total = 0
    with conn:
        while True:
            n = conn.recv_into(buf)
            if n == 0:
                break
            total += n
        conn.sendall(struct.pack("<Q", total))


def _http(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    scratch = bytearray(BUF)
    view = memoryview(scratch)
    payload = memoryview(os.urandom(SEND))
    pending = bytearray()
    uploads = 0
    with conn:
        while True:
            while b"\r\n\r\n" not in pending:
                n = conn.recv_into(scratch)
                if n == 0:
                    return
                pending += scratch[:n]
            end = pending.index(b"\r\n\r\n") + 4
            head = pending[:end].decode("latin-1").split("\r\n")
            del pending[:end]
            method, target, _ = head[0].split(" ", 2)
            length = 0
            for line in head[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            take = min(length, len(pending))
            del pending[:take]
            left = length - take
            while left:
                n = conn.recv_into(view, min(left, BUF))
                if n == 0:
                    return
                left -= n
            if method == "POST":
                uploads += 1
                conn.sendall(
                    f"HTTP/1.1 202 Accepted\r\nLocation: /upload/{uploads}\r\n"
                    "Content-Length: 0\r\n\r\n".encode()
                )
            elif method == "PATCH":
                conn.sendall(
                    f"HTTP/1.1 202 Accepted\r\nLocation: {target.split('?')[0]}\r\n"
                    "Content-Length: 0\r\n\r\n".encode()
                )
            elif method == "PUT":
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            else:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
                size = int(query.get("size", ["0"])[0])
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
                while size:
                    n = min(size, SEND)
                    conn.sendall(payload[:n])
                    size -= n


if __name__ == "__main__":
    _serve(_raw if sys.argv[1] == "raw" else _http)
