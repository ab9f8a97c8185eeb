"""Hardening seen from the outside, on real ``cargobay serve`` processes:

- the metadata database goes away (a TCP proxy in front of PostgreSQL is cut): pages, the REST
  API and ``/v2`` answer 503 with Retry-After, and recover by themselves;
- two replicas on one PostgreSQL database (no Redis) count failed sign-ins against one limit;
- numbers in non-ASCII digits on pages and forms are a 4xx, never a 500;
- two replicas that disagree about the resumable SHA-256 (one has it turned off; one finds a
  state another library wrote) still finish chunked uploads with the right digest.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from kit import digest_of
from kit.postgres import fresh_database
from kit.server import start_cargobay

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay behaviour", allow_module_level=True)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

OCTET = {"Content-Type": "application/octet-stream"}


# -- a database that can go away ---------------------------------------------------------------


class CuttableProxy:
    """Forwards TCP connections from a local port to PostgreSQL; :meth:`cut` drops every
    connection and refuses new ones (the database went away), :meth:`mend` lets them in."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                conn.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [conn, upstream]
            threading.Thread(target=self._pump, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, conn), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for s in (source, target):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def mend(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def migrate(url: str, data_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cargobay", "migrate", "--data-dir", str(data_dir)],
        env={**os.environ, "CARGOBAY_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _retry_after(r: httpx.Response) -> None:
    assert r.status_code == 503, (r.request.url, r.status_code, r.text[:300])
    assert r.headers.get("retry-after", "").isdigit(), r.headers


def test_an_unavailable_database_is_503_everywhere(server_factory: Any, tmp_path: Path) -> None:
    with fresh_database("cargobay_hardening") as rendered:
        url = sa.make_url(rendered)
        proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
        try:
            through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
            migrate(through, tmp_path / "migrate")
            server = server_factory(database_url=through)
            token = {"Authorization": f"Bearer {server.token}"}
            pages = ["/", "/login", f"/users/{server.user}/packages", "/orgs/api/packages"]
            # A session cookie: every page looks the session up in the database.
            cookies = {"cargobay_session": "s" * 43}
            with httpx.Client(base_url=server.url, timeout=60, cookies=cookies) as http:
                for path in pages:
                    assert http.get(path).status_code == 200, path
                rest = "/api/v3/user/packages?package_type=container"
                assert http.get(rest, headers=token).status_code == 200
                proxy.cut()
                for path in pages:
                    _retry_after(http.get(path))
                    assert "<html" in http.get(path).text  # a page, not a traceback
                form = {"login": "tester", "password": "x", "csrf": "y" * 32}
                signing_in = httpx.post(  # signing in needs the database
                    f"{server.url}/login",
                    data=form,
                    headers={"Cookie": f"cargobay_login_csrf={'y' * 32}"},
                )
                _retry_after(signing_in)
                _retry_after(http.get(rest, headers=token))
                _retry_after(http.get("/api/v3/orgs/api/packages/container/x", headers=token))
                _retry_after(http.get("/v2/_catalog", headers=token))
                proxy.mend()
                for path in pages:
                    assert http.get(path).status_code == 200, path
                assert http.get(rest, headers=token).status_code == 200
        finally:
            proxy.close()


def test_replicas_on_one_database_share_the_sign_in_limit(
    server_factory: Any, tmp_path: Path
) -> None:
    with fresh_database("cargobay_hardening") as rendered:
        migrate(rendered, tmp_path / "migrate")
        first = server_factory(database_url=rendered, sign_in_failures=4, sign_in_window=60)
        second = start_cargobay(
            first.data_dir, database_url=rendered, sign_in_failures=4, sign_in_window=60
        )
        try:
            _share_one_limit(first, second)
        finally:
            second.stop()


def _share_one_limit(first: Any, second: Any) -> None:
    bad = {"Authorization": "Basic " + base64.b64encode(b"x:cbp_" + b"Z" * 36).decode()}
    statuses = [httpx.get(f"{s.url}/v2/", headers=bad).status_code for s in [first, second] * 3]
    assert statuses == [401, 401, 401, 429, 429, 429]
    for server in (first, second):  # valid tokens from the same address still work
        assert httpx.get(f"{server.url}/v2/", auth=server.auth).status_code == 200


# -- numbers on pages and forms ----------------------------------------------------------------


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def test_numbers_in_non_ascii_digits_on_pages_and_forms(server_factory: Any) -> None:
    server = server_factory()
    name, password = f"web-{uuid.uuid4().hex[:6]}", "correct horse battery staple"
    server.cli("org", "create", "acme-" + name[4:], "--owner", "tester")
    subprocess.run(
        [sys.executable, "-m", "cargobay", "user", "create", name, "--password-stdin",
         "--data-dir", str(server.data_dir)],
        input=password + "\n", text=True, check=True, capture_output=True,
        env={**os.environ, **server.env},
    )  # fmt: skip
    digest_path = f"/v2/api/numbers-{name}"
    with httpx.Client(base_url=server.url, timeout=30, auth=server.auth) as v2:
        config = b'{"architecture":"amd64","os":"linux"}'
        d = digest_of(config)
        assert v2.post(f"{digest_path}/blobs/uploads/", params={"digest": d}, content=config,
                       headers=OCTET).status_code == 201  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as http:
        login = http.get("/login")
        r = http.post(
            "/login", data={"login": name, "password": password, "csrf": _csrf(login.text)}
        )
        assert r.status_code == 303, r.text[:300]
        csrf = _csrf(http.get("/settings/tokens").text)
        for digits in ("²", "٣", "1²", "\uff19"):
            r = http.get(f"/users/{name}/packages", params={"page": digits})
            assert r.status_code == 200, (digits, r.status_code)
            r = http.get(f"/orgs/api/packages/container/package/numbers-{name}/{digits}")
            assert r.status_code == 404, (digits, r.status_code)
            for path in (f"/settings/tokens/{digits}/revoke", f"/packages/{digits}/visibility",
                         f"/packages/1/versions/{digits}/delete"):  # fmt: skip
                r = http.post(path, data={"csrf": csrf, "visibility": "public"})
                assert r.status_code == 404, (path, r.status_code)
    # Nothing was revoked: the token still works.
    assert httpx.get(f"{server.url}/v2/", auth=server.auth).status_code == 200


# -- replicas that disagree about the resumable hash --------------------------------------------


def _chunk(http: httpx.Client, location: str, data: bytes, start: int) -> str:
    r = http.patch(
        location,
        content=data,
        headers={**OCTET, "Content-Range": f"{start}-{start + len(data) - 1}"},
    )
    assert r.status_code == 202, r.text
    return str(r.headers["location"])


def test_replicas_that_disagree_about_the_resumable_hash(server_factory: Any) -> None:
    fast = server_factory()
    # A second server on the same data directory (same database and blobs), fast path off.
    slow = start_cargobay(fast.data_dir, resumable_hash=False)
    try:
        assert "resumable SHA-256 through libcrypto" in fast.log()
        assert "resumable SHA-256 unavailable: turned off" in slow.log()
        repo = f"api/hash-{uuid.uuid4().hex[:8]}"
        parts = [os.urandom(700_000), os.urandom(300_001), os.urandom(77)]
        data = b"".join(parts)
        digest = digest_of(data)
        with (
            httpx.Client(base_url=fast.url, auth=fast.auth, timeout=60) as a,
            httpx.Client(base_url=slow.url, auth=fast.auth, timeout=60) as b,
        ):
            r = a.post(f"/v2/{repo}/blobs/uploads/")
            location = r.headers["location"]
            location = _chunk(a, location, parts[0], 0)
            location = _chunk(b, location, parts[1], len(parts[0]))
            location = _chunk(a, location, parts[2], len(parts[0]) + len(parts[1]))
            r = b.put(location, params={"digest": digest})
            assert r.status_code == 201, r.text
            assert a.get(f"/v2/{repo}/blobs/{digest}").content == data
            # A state another libcrypto wrote, found on disk: not trusted, re-hashed.
            r = a.post(f"/v2/{repo}/blobs/uploads/")
            upload_id = r.headers["docker-upload-uuid"]
            location = _chunk(a, r.headers["location"], parts[0], 0)
            state = next(fast.data_dir.rglob(f"{upload_id}/hashstate"))
            raw = bytearray(state.read_bytes())
            at = 8  # after the size the state was saved at
            raw[at + 4 : at + 12] = hashlib.sha256(b"another libcrypto").digest()[:8]  # who
            raw[at + 12 : at + 44] = bytes(32)  # and a struct that means something else here
            state.write_bytes(bytes(raw))
            location = _chunk(a, location, parts[1], len(parts[0]))
            both = parts[0] + parts[1]
            r = a.put(location, params={"digest": digest_of(both)})
            assert r.status_code == 201, r.text
    finally:
        slow.stop()
