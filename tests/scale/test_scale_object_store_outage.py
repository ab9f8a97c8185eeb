"""The object store goes away in the middle of a push to three replicas: the registry answers 503
with Retry-After (soon: clients wait a bounded time), ``/readyz`` says which dependency failed,
nothing half-uploaded becomes visible, and once the store is back the same replicas (never
restarted) take the push again and serve exact bytes.

The session's radosgw is paused (SIGSTOP: connections are accepted, nothing is answered, like a
hung or black-holed store) or killed (connections refused) and then started again on the same
port; every test leaves it running.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import Clients
from images import PulledDir, assert_same_image
from kit import digest_of, explain
from scalekit import (
    MIB,
    NAMESPACE,
    OCI_MANIFEST,
    OCTET,
    Image,
    RadosGateway,
    ReplicaSet,
    build_layout,
    fetch_blob,
    patch,
    path_of,
    sign_in,
    upload_monolithic,
    upload_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: How long a client waits for any answer while the store is away. A registry that takes longer
#: than this to say 503 holds the client (and a load balancer's connection) hostage.
BOUNDED = 20.0


@pytest.fixture(scope="module")
def replicas(make_replicas: Callable[..., ReplicaSet]) -> ReplicaSet:
    return make_replicas(3)


@pytest.fixture(scope="module")
def clients(scale_clients: Clients, replicas: ReplicaSet) -> Clients:
    sign_in(scale_clients, replicas)
    return scale_clients


@pytest.fixture
def paused(radosgw: RadosGateway) -> Iterator[RadosGateway]:
    """Resumes radosgw after the test, whatever happened."""
    try:
        yield radosgw
    finally:
        radosgw.resume()


@pytest.fixture
def killable(radosgw: RadosGateway) -> Iterator[RadosGateway]:
    """Starts radosgw again after the test if the test left it dead."""
    try:
        yield radosgw
    finally:
        try:
            httpx.get(radosgw.endpoint + "/", timeout=5)
        except httpx.TransportError:
            radosgw.start()


def assert_unavailable(r: httpx.Response) -> None:
    """503 UNAVAILABLE with Retry-After."""
    assert r.status_code == 503, explain(r)
    assert r.headers.get("retry-after", "").isdigit(), explain(r)
    if r.request.method != "HEAD":
        assert [e["code"] for e in r.json()["errors"]] == ["UNAVAILABLE"], explain(r)


def assert_not_ready(replicas: ReplicaSet, failing: str) -> None:
    for replica in replicas:
        with replica.http(timeout=BOUNDED) as http:
            r = http.get("/readyz")
            assert r.status_code == 503, explain(r)
            assert r.headers.get("retry-after", "").isdigit(), explain(r)
            body = r.json()
            assert body["status"] == "unavailable" and body[failing] != "ok", body
            other = "database" if failing == "blob_store" else "blob_store"
            assert body[other] == "ok", body
            assert http.get("/healthz").status_code == 200


def wait_ready(replicas: ReplicaSet, timeout: float = 60) -> None:
    for replica in replicas:
        deadline = time.monotonic() + timeout
        while True:
            r = httpx.get(f"{replica.url}/readyz", timeout=BOUNDED)
            if r.status_code == 200:
                break
            assert time.monotonic() < deadline, f"replica {replica.index} not ready: {r.text}"
            time.sleep(0.2)


def blob_keys(s3_service: Any, bucket: str) -> dict[str, int]:
    """``{digest: size}`` of the blobs in the bucket, read behind the registry's back."""
    client = s3_service.client()
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="blobs/"):
        for item in page.get("Contents", []):
            _, algorithm, encoded = item["Key"].split("/")
            out[f"{algorithm}:{encoded}"] = item["Size"]
    return out


def push_redo_and_pull(clients: Clients, replicas: ReplicaSet, image: Image, repo: str) -> None:
    """skopeo pushes ``image`` through replica 1 and pulls it through replica 2, exactly."""
    clients.skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{image.layout}:{image.tag}",
        f"docker://{replicas[1].address}/{repo}:{image.tag}",
        timeout=300,
    )
    pulled = image.layout.parent / "pulled"
    clients.skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{replicas[2].address}/{repo}:{image.tag}",
        f"dir:{pulled}",
        timeout=300,
    )
    assert_same_image(PulledDir(pulled), image.manifest, image.blobs)


def test_paused_object_store_is_a_prompt_503(
    replicas: ReplicaSet, paused: RadosGateway, tmp_path: Path
) -> None:
    """radosgw stops answering (SIGSTOP) between two chunks of an upload."""
    repo = f"{NAMESPACE}/paused-{secrets.token_hex(3)}"
    data = secrets.token_bytes(9 * MIB)
    with replicas[0].http() as http:
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = patch(http, r.headers["location"], data[: 6 * MIB], 0)
    paused.pause()
    assert_not_ready(replicas, "blob_store")
    with replicas[1].http(timeout=BOUNDED) as http:
        try:
            r = http.patch(
                path_of(location),
                content=data[6 * MIB :],
                headers={**OCTET, "Content-Range": f"{6 * MIB}-{len(data) - 1}"},
            )
        except httpx.TimeoutException:
            pytest.fail(
                f"PATCH with the object store paused: no answer within {BOUNDED} s "
                "(expected 503 UNAVAILABLE with Retry-After)"
            )
        assert_unavailable(r)
    paused.resume()
    wait_ready(replicas)
    with replicas[2].http() as http:
        # The refused PATCH may have been stored after all (the store got it late): the upload
        # holds what was acknowledged, or everything sent.
        offset = upload_status(http, location)
        assert offset in (6 * MIB, len(data)), offset
        if offset < len(data):
            location = patch(http, location, data[offset:], offset)
        r = http.put(httpx.URL(path_of(location)).copy_merge_params({"digest": digest_of(data)}))
        assert r.status_code == 201, explain(r)
        assert fetch_blob(http, repo, digest_of(data)) == data


def test_object_store_down_mid_push_then_recovers(
    replicas: ReplicaSet,
    killable: RadosGateway,
    clients: Clients,
    s3_service: Any,
    tmp_path: Path,
) -> None:
    repo = f"{NAMESPACE}/s3-down-{secrets.token_hex(3)}"
    image = build_layout(tmp_path / "layout", "v1", [3 * MIB, 9 * MIB, 2048])
    config = next(d for d in image.blobs if d not in image.layers)
    first, second, third = image.layers
    earlier = blob_keys(s3_service, replicas.bucket)  # blobs of the module's other tests
    with replicas[0].http() as http:
        # The push gets as far as: the config and the first layer uploaded, the second layer's
        # upload holding its first 6 MiB.
        upload_monolithic(http, repo, image.blobs[config])
        upload_monolithic(http, repo, image.blobs[first])
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = patch(http, r.headers["location"], image.blobs[second][: 6 * MIB], 0)
    before = blob_keys(s3_service, replicas.bucket)
    assert set(before) - set(earlier) == {config, first}

    killable.kill()
    assert_not_ready(replicas, "blob_store")
    rest = image.blobs[second][6 * MIB :]
    for replica in replicas:
        with replica.http(timeout=BOUNDED) as http:
            r = http.patch(
                path_of(location),
                content=rest,
                headers={**OCTET, "Content-Range": f"{6 * MIB}-{6 * MIB + len(rest) - 1}"},
            )
            assert_unavailable(r)
    with replicas[1].http(timeout=BOUNDED) as http:
        r = http.put(path_of(location), params={"digest": second}, content=rest, headers=OCTET)
        assert_unavailable(r)
        assert_unavailable(http.get(path_of(location)))
        r = http.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": third},
            content=image.blobs[third],
            headers=OCTET,
        )
        assert_unavailable(r)
        # The manifest names blobs that never arrived: refused, never stored.
        r = http.put(
            f"/v2/{repo}/manifests/v1",
            content=image.manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code in (400, 503), explain(r)
        if r.status_code == 400:
            codes = {e["code"] for e in r.json()["errors"]}
            assert codes == {"MANIFEST_BLOB_UNKNOWN"}, explain(r)
        else:
            assert_unavailable(r)
    for replica in replicas:
        with replica.http(timeout=BOUNDED) as http:
            for digest in (second, third):
                r = http.head(f"/v2/{repo}/blobs/{digest}")
                assert r.status_code in (404, 503), explain(r)
            r = http.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert r.status_code in (404, 503), explain(r)

    killable.start()
    wait_ready(replicas)  # the same processes: nothing was restarted
    assert blob_keys(s3_service, replicas.bucket) == before
    for replica in replicas:
        with replica.http() as http:
            for digest in (second, third):
                r = http.head(f"/v2/{repo}/blobs/{digest}")
                assert r.status_code == 404, explain(r)
            r = http.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert r.status_code == 404, explain(r)
            assert http.head(f"/v2/{repo}/blobs/{first}").status_code == 200
    with replicas[2].http() as http:
        # The interrupted upload resumes from what it had acknowledged.
        assert upload_status(http, location) == 6 * MIB
        location = patch(http, location, image.blobs[second][6 * MIB :], 6 * MIB)
        r = http.put(httpx.URL(path_of(location)).copy_merge_params({"digest": second}))
        assert r.status_code == 201, explain(r)
        assert fetch_blob(http, repo, second) == image.blobs[second]

    push_redo_and_pull(clients, replicas, image, repo)
    for digest, size in blob_keys(s3_service, replicas.bucket).items():
        if digest not in earlier:
            assert size == len(image.blobs[digest]), digest
    with replicas[0].http() as http:
        r = http.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200, explain(r)
        assert r.content == image.manifest
        for digest in json.loads(r.content)["layers"]:
            assert fetch_blob(http, repo, digest["digest"]) == image.blobs[digest["digest"]]


def test_object_store_killed_under_a_streamed_patch(
    replicas: ReplicaSet, killable: RadosGateway
) -> None:
    """radosgw dies while a replica streams a PATCH into it (parts uploading): the PATCH gets
    503, and the upload later resumes on another replica from a consistent offset."""
    repo = f"{NAMESPACE}/s3-dies-{secrets.token_hex(3)}"
    data = secrets.token_bytes(40 * MIB + 3)
    first = 6 * MIB
    kill_after = first + 17 * MIB
    reached, killed = threading.Event(), threading.Event()
    sent = first

    def body() -> Iterator[bytes]:
        nonlocal sent
        for start in range(first, len(data), 256 * 1024):
            if sent >= kill_after and not reached.is_set():
                reached.set()
                killed.wait(30)
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
            killable.kill()
        finally:
            killed.set()
            sender.join(2 * BOUNDED)
    assert not sender.is_alive()
    answer = answers[0]
    assert isinstance(answer, httpx.Response), f"no answer to the PATCH: {answer!r}"
    assert_unavailable(answer)

    killable.start()
    wait_ready(replicas)
    with replicas[1].http() as http:
        offset = upload_status(http, location)
        assert first <= offset <= sent, f"offset {offset}, acknowledged {first}, sent {sent}"
        location = patch(http, location, data[offset:], offset)
    with replicas[2].http() as http:
        r = http.put(httpx.URL(path_of(location)).copy_merge_params({"digest": digest_of(data)}))
        assert r.status_code == 201, explain(r)
        assert fetch_blob(http, repo, digest_of(data)) == data
