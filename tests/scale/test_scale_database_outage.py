"""PostgreSQL goes away in the middle of a push to three replicas: every request that needs it
gets 503 with Retry-After (not 401, not 500), ``/readyz`` names the database, and once the
database is back the same replicas (never restarted) reconnect by themselves and take the push
again. The replicas use a PostgreSQL server of their own, stopped with ``pg_ctl stop -m
immediate`` (a crash) and started again on the same port."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from clients import Clients
from images import PulledDir, assert_same_image
from kit import digest_of, explain
from kit.server import free_port
from scalekit import (
    MIB,
    NAMESPACE,
    OCI_MANIFEST,
    OCTET,
    PrivatePostgres,
    ReplicaSet,
    build_layout,
    fetch_blob,
    patch,
    path_of,
    raw_request_then_another,
    sign_in,
    upload_monolithic,
    upload_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: How long a client waits for any answer while the database is down.
BOUNDED = 30.0


@pytest.fixture(scope="module")
def postgres(request: pytest.FixtureRequest) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start(free_port())
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def replicas(make_replicas: Callable[..., ReplicaSet], postgres: PrivatePostgres) -> ReplicaSet:
    return make_replicas(3, database_url=postgres.url)


@pytest.fixture(scope="module")
def clients(scale_clients: Clients, replicas: ReplicaSet) -> Clients:
    sign_in(scale_clients, replicas)
    return scale_clients


@pytest.fixture
def database_down(postgres: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """Starts PostgreSQL again after the test if the test left it stopped."""
    try:
        yield postgres
    finally:
        try:
            postgres.start(postgres.port)
        except RuntimeError as e:
            if "another server might be running" not in str(e):
                raise


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, explain(r)
    assert r.headers.get("retry-after", "").isdigit(), explain(r)
    if r.request.method != "HEAD":
        assert [e["code"] for e in r.json()["errors"]] == ["UNAVAILABLE"], explain(r)


def test_database_down_mid_push_then_recovers(
    replicas: ReplicaSet, database_down: PrivatePostgres, clients: Clients, tmp_path: Path
) -> None:
    repo = f"{NAMESPACE}/db-down-{secrets.token_hex(3)}"
    package = quote(repo.split("/", 1)[1], safe="")
    api = f"/api/v3/orgs/{NAMESPACE}/packages/container/{package}"
    image = build_layout(tmp_path / "layout", "v1", [8 * MIB, 2048])
    config = next(d for d in image.blobs if d not in image.layers)
    first, second = image.layers
    with replicas[0].http() as http:
        upload_monolithic(http, repo, image.blobs[config])
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = patch(http, r.headers["location"], image.blobs[first][: 6 * MIB], 0)

    database_down.stop("immediate")
    for replica in replicas:
        # A connection per request: see test_a_503_before_the_body_is_read_leaves_a_usable_
        # connection for what happens to a kept-alive one.
        with replica.http(timeout=BOUNDED, keepalive=False) as http:
            r = http.get("/readyz")
            assert r.status_code == 503, explain(r)
            assert r.headers.get("retry-after", "").isdigit(), explain(r)
            assert r.json()["database"] != "ok" and r.json()["blob_store"] == "ok", r.text
            assert http.get("/healthz").status_code == 200
            # Valid credentials that can't be checked are no reason to sign in again.
            assert_unavailable(http.get("/v2/"))
            rest = image.blobs[first][6 * MIB :]
            r = http.patch(
                path_of(location),
                content=rest,
                headers={**OCTET, "Content-Range": f"{6 * MIB}-{6 * MIB + len(rest) - 1}"},
            )
            assert_unavailable(r)
            assert_unavailable(http.get(path_of(location)))
            assert_unavailable(http.post(f"/v2/{repo}/blobs/uploads/"))
            r = http.put(
                f"/v2/{repo}/manifests/v1",
                content=image.manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert_unavailable(r)
            assert_unavailable(http.get(f"/v2/{repo}/tags/list"))
            assert_unavailable(http.head(f"/v2/{repo}/blobs/{config}"))
            r = http.get(api, headers={"Authorization": f"Bearer {replicas.token}"}, auth=None)
            assert r.status_code == 503, explain(r)
            assert r.headers.get("retry-after", "").isdigit(), explain(r)
            # The token endpoint (what docker clients sign in with) says the same.
            r = http.get("/token", params={"scope": f"repository:{repo}:pull,push"})
            assert r.status_code == 503, explain(r)

    database_down.start(database_down.port)
    # The replicas were not restarted: their pooled connections died with the server. Right
    # away, requests either work or say 503, never 500.
    deadline = time.monotonic() + 60
    ready: set[int] = set()
    while len(ready) < len(replicas):
        assert time.monotonic() < deadline, f"replicas {set(range(3)) - ready} never got ready"
        for replica in replicas:
            with replica.http(timeout=BOUNDED) as http:
                r = http.get(f"/v2/{repo}/tags/list")
                # The push was cut off before any manifest: a replica that works again knows no
                # such repository yet (a package shows once it has a version).
                assert r.status_code in (404, 503), explain(r)
                if r.status_code == 404:
                    assert r.json()["errors"][0]["code"] == "NAME_UNKNOWN", explain(r)
                if http.get("/readyz").status_code == 200:
                    ready.add(replica.index)
        time.sleep(0.1)
    for replica in replicas:
        with replica.http() as http:
            r = http.head(f"/v2/{repo}/blobs/{config}")
            assert r.status_code == 200, explain(r)
            for digest in (first, second):
                assert http.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    with replicas[1].http() as http:
        assert upload_status(http, location) == 6 * MIB
        location = patch(http, location, image.blobs[first][6 * MIB :], 6 * MIB)
        r = http.put(httpx.URL(path_of(location)).copy_merge_params({"digest": first}))
        assert r.status_code == 201, explain(r)
    with replicas[2].http() as http:
        assert fetch_blob(http, repo, first) == image.blobs[first]

    # The push, redone with skopeo through one replica, pulled through another.
    clients.skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{image.layout}:v1",
        f"docker://{replicas[2].address}/{repo}:v1",
        timeout=300,
    )
    pulled = tmp_path / "pulled"
    clients.skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{replicas[0].address}/{repo}:v1",
        f"dir:{pulled}",
        timeout=300,
    )
    assert_same_image(PulledDir(pulled), image.manifest, image.blobs)
    with replicas[1].http() as http:
        r = http.get(api, headers={"Authorization": f"Bearer {replicas.token}"}, auth=None)
        assert r.status_code == 200, explain(r)
        assert r.json()["version_count"] == 1


def test_database_down_under_a_streamed_patch(
    replicas: ReplicaSet, database_down: PrivatePostgres
) -> None:
    """PostgreSQL crashes while a replica streams a PATCH: the PATCH is answered (503 or, if
    the database was not needed any more, 202), and once the database is back the upload
    resumes on another replica from a consistent offset, exact to the byte."""
    repo = f"{NAMESPACE}/db-dies-{secrets.token_hex(3)}"
    data = secrets.token_bytes(30 * MIB + 7)
    first = 6 * MIB
    stop_after = first + 12 * MIB
    reached, stopped = threading.Event(), threading.Event()
    sent = first

    def body() -> Iterator[bytes]:
        nonlocal sent
        for start in range(first, len(data), 256 * 1024):
            if sent >= stop_after and not reached.is_set():
                reached.set()
                stopped.wait(30)
            piece = data[start : start + 256 * 1024]
            sent += len(piece)
            yield piece

    with replicas[0].http(timeout=BOUNDED) as http:
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = patch(http, r.headers["location"], data[:first], 0)
        answers: list[httpx.Response | BaseException] = []

        def stream() -> None:
            try:
                answers.append(http.patch(path_of(location), content=body(), headers=OCTET))
            except httpx.HTTPError as e:
                answers.append(e)

        sender = threading.Thread(target=stream)
        sender.start()
        try:
            assert reached.wait(60), "the streamed PATCH never got going"
            database_down.stop("immediate")
        finally:
            stopped.set()
            sender.join(2 * BOUNDED)
    assert not sender.is_alive()
    answer = answers[0]
    assert isinstance(answer, httpx.Response), f"no answer to the PATCH: {answer!r}"
    if answer.status_code != 202:
        assert_unavailable(answer)

    database_down.start(database_down.port)
    with replicas[1].http() as http:
        deadline = time.monotonic() + 60
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "replica 1 never got ready"
            time.sleep(0.1)
        offset = upload_status(http, location)
        if answer.status_code == 202:
            assert offset == len(data), f"acknowledged all {len(data)} bytes, status: {offset}"
        assert first <= offset <= sent, f"offset {offset}, acknowledged {first}, sent {sent}"
        location = patch(http, location, data[offset:], offset) if offset < len(data) else location
    with replicas[2].http() as http:
        digest = digest_of(data)
        r = http.put(httpx.URL(path_of(location)).copy_merge_params({"digest": digest}))
        assert r.status_code == 201, explain(r)
        assert fetch_blob(http, repo, digest) == data


def test_a_503_before_the_body_is_read_leaves_a_usable_connection(
    replicas: ReplicaSet, database_down: PrivatePostgres
) -> None:
    """With the database down, a PATCH with a body is refused (503) while its credentials are
    checked, before its body is read. Then the server must either say ``Connection: close``
    or read the body and answer the next request on the connection; a silent close makes a
    client that reuses the connection fail its next request ("server disconnected")."""
    repo = f"{NAMESPACE}/db-keepalive-{secrets.token_hex(3)}"
    with replicas[0].http() as http:
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = path_of(r.headers["location"])
    credentials = base64.b64encode(f"{replicas.user}:{replicas.token}".encode()).decode()
    body = secrets.token_bytes(64 * 1024)
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: {replicas[0].address}\r\n"
        f"Authorization: Basic {credentials}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Range: 0-{len(body) - 1}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    database_down.stop("immediate")
    silent_closes = []
    for i in range(10):
        seen = raw_request_then_another(replicas[i % 3].port, head, body)
        assert seen.status_line.startswith("HTTP/1.1 503 "), seen
        if not seen.announced_close and not seen.next_answer.startswith("HTTP/1.1 200"):
            silent_closes.append(seen)
    assert not silent_closes, (
        f"{len(silent_closes)} of 10 answers kept the connection alive, then the server closed "
        f"it without answering the next request: {silent_closes[0]}"
    )
