"""Stopping takes a bounded time: a client holding a PATCH open mid-body does not keep
``cargobay serve`` from exiting after SIGTERM (``shutdown_timeout``), and the session keeps
exactly the bytes received, so the client resumes after a restart."""

from __future__ import annotations

import base64
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from clients import ON_REFERENCE
from images import random_bytes
from kit import digest_of, explain
from registry_http import with_params

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(ON_REFERENCE, reason="cargobay's shutdown"),
]

SHUTDOWN_TIMEOUT = 3
#: Generous for a loaded CI machine; without the bound the server waits for the client forever.
STOP_WITHIN = SHUTDOWN_TIMEOUT + 12


def test_sigterm_with_a_stalled_patch_stops_in_bounded_time(
    server_factory: Any, restart_server: Any
) -> None:
    server = server_factory(shutdown_timeout=SHUTDOWN_TIMEOUT)
    repo = "e2e/stop"
    data = random_bytes(3 * 1024 * 1024)
    sent = 1024 * 1024 + 12345  # not a multiple of any write batch
    with httpx.Client(base_url=server.url, timeout=30, auth=server.auth) as http:
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = r.headers["location"]

    # A client that sends part of the body it announced, then stalls.
    path = urlsplit(location).path or location
    credentials = base64.b64encode(f"{server.user}:{server.token}".encode()).decode()
    stalled = socket.create_connection(("127.0.0.1", server.port))
    try:
        stalled.sendall(
            (
                f"PATCH {path} HTTP/1.1\r\nHost: {server.address}\r\n"
                f"Authorization: Basic {credentials}\r\n"
                "Content-Type: application/octet-stream\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data[:sent]
        )
        time.sleep(2)  # the server has read what was sent
        began = time.monotonic()
        server.process.terminate()
        try:
            server.process.wait(timeout=STOP_WITHIN + 30)
        except Exception:
            server.kill()
            raise
        took = time.monotonic() - began
    finally:
        stalled.close()
    assert took <= STOP_WITHIN, f"stopping took {took:.1f} s with a stalled upload"

    server = restart_server(server)
    with httpx.Client(base_url=server.url, timeout=30, auth=server.auth) as http:
        r = http.get(location)
        assert r.status_code == 204, explain(r)
        assert r.headers["range"] == f"0-{sent - 1}", "the session lost bytes it received"
        r = http.patch(
            location,
            content=data[sent:],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{sent}-{len(data) - 1}",
            },
        )
        assert r.status_code == 202, explain(r)
        r = http.put(with_params(r.headers["location"], digest=digest_of(data)))
        assert r.status_code == 201, explain(r)
        r = http.get(f"/v2/{repo}/blobs/{digest_of(data)}")
        assert r.status_code == 200 and r.content == data, explain(r)
