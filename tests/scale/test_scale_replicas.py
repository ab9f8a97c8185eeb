"""Three replicas on one PostgreSQL database and one S3 bucket behave as one registry: push
through one and pull through another, chunked uploads hopping between replicas (also after the
replica holding one died), racing tag writes, read-your-writes across replicas, and blob GETs
answered with a redirect to the object store."""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
    ReplicaSet,
    build_layout,
    fetch_blob,
    parallel,
    patch,
    path_of,
    sign_in,
    small_manifest,
    upload_monolithic,
    upload_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def replicas(make_replicas: Callable[..., ReplicaSet]) -> ReplicaSet:
    return make_replicas(3)


@pytest.fixture(scope="module")
def clients(scale_clients: Clients, replicas: ReplicaSet) -> Clients:
    sign_in(scale_clients, replicas)
    return scale_clients


def repo_name(request: pytest.FixtureRequest) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    return f"{NAMESPACE}/{slug}-{secrets.token_hex(3)}"


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    return repo_name(request)


def list_tags(http: httpx.Client, repo: str) -> list[str]:
    tags: list[str] = []
    url: str | None = f"/v2/{repo}/tags/list"
    while url:
        r = http.get(url)
        assert r.status_code == 200, explain(r)
        tags += r.json().get("tags") or []
        link = re.match(r'<([^>]+)>;\s*rel="?next"?', r.headers.get("link", ""))
        url = link.group(1) if link else None
    return tags


def test_push_through_one_pull_through_another_rest_on_a_third(
    replicas: ReplicaSet, clients: Clients, repo: str, tmp_path: Path, s3_service: Any
) -> None:
    image = build_layout(tmp_path / "layout", "v1", [21 * MIB + 123, 300 * 1024, 4096])
    pushed_to = f"docker://{replicas[0].address}/{repo}:v1"
    clients.skopeo(
        "copy", "--dest-tls-verify=false", f"oci:{image.layout}:v1", pushed_to, timeout=300
    )
    pulled = tmp_path / "pulled"
    clients.skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{replicas[1].address}/{repo}:v1",
        f"dir:{pulled}",
        timeout=300,
    )
    assert_same_image(PulledDir(pulled), image.manifest, image.blobs)

    # Replica 2 answers a blob GET with a 307 to a presigned URL on the object store, which
    # needs none of the registry's credentials and serves the exact bytes.
    big = max(image.layers, key=lambda d: len(image.blobs[d]))
    with replicas[1].http() as http:
        r = http.get(f"/v2/{repo}/blobs/{big}")
        assert r.status_code == 307, explain(r)
        assert r.headers["docker-content-digest"] == big
        location = r.headers["location"]
        assert location.startswith(s3_service.endpoint + "/"), location
        direct = httpx.get(location, timeout=60)
        assert direct.status_code == 200
        assert direct.content == image.blobs[big]

    # The REST API on replica 3 shows the package and its version, with the tag.
    package = quote(repo.split("/", 1)[1], safe="")
    api = f"/api/v3/orgs/{NAMESPACE}/packages/container/{package}"
    headers = {"Authorization": f"Bearer {replicas.token}"}
    with httpx.Client(base_url=replicas[2].url, headers=headers, timeout=30) as rest:
        r = rest.get(api)
        assert r.status_code == 200, explain(r)
        assert r.json()["name"] == repo.split("/", 1)[1]
        assert r.json()["version_count"] == 1
        r = rest.get(f"{api}/versions")
        assert r.status_code == 200, explain(r)
        versions = r.json()
        assert [v["name"] for v in versions] == [image.digest]
        assert versions[0]["metadata"]["container"]["tags"] == ["v1"]
        assert versions[0]["metadata"]["container"]["size"] == len(image.manifest) + sum(
            len(b) for b in image.blobs.values()
        )


def test_registry_token_from_one_replica_works_on_the_others(
    replicas: ReplicaSet, repo: str
) -> None:
    """Registry tokens are signed with the key file every replica shares: a token from
    replica 1's ``/token`` pushes through replica 2 and pulls through replica 3, and its scope
    still holds there."""
    r = httpx.get(
        f"{replicas[0].url}/token",
        params={"service": "cargobay-scale", "scope": f"repository:{repo}:pull,push"},
        auth=(replicas.user, replicas.token),
        timeout=30,
    )
    assert r.status_code == 200, explain(r)
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    data = secrets.token_bytes(4096)
    with httpx.Client(base_url=replicas[1].url, headers=bearer, timeout=30) as http:
        digest = upload_monolithic(http, repo, data)
    with replicas[0].http() as http:
        other = upload_monolithic(http, f"{repo}-other", data)
    with httpx.Client(base_url=replicas[2].url, headers=bearer, timeout=30) as http:
        assert fetch_blob(http, repo, digest) == data
        r = http.get(f"/v2/{repo}-other/blobs/{other}")
        assert r.status_code == 401, explain(r)
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"], explain(r)


def test_chunked_upload_hopping_between_replicas(replicas: ReplicaSet, repo: str) -> None:
    """PATCHes of 6, 1, 7, 5, 0.5, 9 MiB and 1 byte (below and above S3's 5 MiB part minimum),
    each on the next replica, the status read on yet another, the PUT on a fourth."""
    sizes = [6 * MIB, 1 * MIB, 7 * MIB, 5 * MIB, MIB // 2, 9 * MIB, 1]
    data = secrets.token_bytes(sum(sizes))
    digest = digest_of(data)
    clients = [replica.http() for replica in replicas]
    try:
        r = clients[0].post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = r.headers["location"]
        start = 0
        for i, size in enumerate(sizes):
            location = patch(clients[(i + 1) % 3], location, data[start : start + size], start)
            start += size
            assert upload_status(clients[(i + 2) % 3], location) == start
        r = clients[(len(sizes) + 1) % 3].put(
            httpx.URL(path_of(location)).copy_merge_params({"digest": digest})
        )
        assert r.status_code == 201, explain(r)
        assert r.headers["docker-content-digest"] == digest
        for http in clients:
            r = http.head(f"/v2/{repo}/blobs/{digest}")
            assert r.status_code == 200, explain(r)
            assert int(r.headers["content-length"]) == len(data)
            assert fetch_blob(http, repo, digest) == data
        # The finished upload is gone on every replica.
        for http in clients:
            r = http.get(path_of(location))
            assert r.status_code == 404, explain(r)
    finally:
        for http in clients:
            http.close()


def test_kill_replica_between_chunks_then_finish_on_another(
    replicas: ReplicaSet, repo: str
) -> None:
    data = secrets.token_bytes(19 * MIB + 77)
    holder = replicas[0]
    with holder.http() as http:
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = patch(http, r.headers["location"], data[: 6 * MIB], 0)
        location = patch(http, location, data[6 * MIB : 9 * MIB], 6 * MIB)
    holder.crash()
    try:
        with replicas[1].http() as http:
            offset = upload_status(http, location)
            assert offset == 9 * MIB
            location = patch(http, location, data[offset:], offset)
            r = http.put(
                httpx.URL(path_of(location)).copy_merge_params({"digest": digest_of(data)})
            )
            assert r.status_code == 201, explain(r)
        with replicas[2].http() as http:
            assert fetch_blob(http, repo, digest_of(data)) == data
    finally:
        replicas.restart(0)
    with replicas[0].http() as http:
        assert fetch_blob(http, repo, digest_of(data)) == data


def test_kill_replica_during_streamed_patch_then_finish_on_another(
    replicas: ReplicaSet, repo: str
) -> None:
    """The replica dies while a long PATCH streams into it: another replica reports an offset
    between what was acknowledged and what was sent, and the upload finishes from there."""
    data = secrets.token_bytes(40 * MIB + 5)
    first = 6 * MIB
    kill_after = first + 20 * MIB
    reached, killed = threading.Event(), threading.Event()
    sent = first
    holder = replicas[1]

    def body() -> Iterator[bytes]:
        nonlocal sent
        for start in range(first, len(data), 256 * 1024):
            if sent >= kill_after and not reached.is_set():
                reached.set()
                killed.wait(30)
            piece = data[start : start + 256 * 1024]
            sent += len(piece)
            yield piece

    with holder.http() as http:
        r = http.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, explain(r)
        location = patch(http, r.headers["location"], data[:first], 0)
        failures: list[BaseException] = []

        def stream() -> None:
            try:
                r = http.patch(path_of(location), content=body(), headers=OCTET)
                failures.append(AssertionError(f"the PATCH was answered: {explain(r)}"))
            except httpx.HTTPError as e:  # the replica died under it: expected
                failures.append(e)

        sender = threading.Thread(target=stream)
        sender.start()
        try:
            assert reached.wait(60), "the streamed PATCH never got going"
            holder.crash()
        finally:
            killed.set()
            sender.join(60)
        assert isinstance(failures[0], httpx.HTTPError), failures
    assert sent < len(data)
    try:
        with replicas[2].http() as http:
            offset = upload_status(http, location)
            assert first <= offset <= sent, f"offset {offset}, acknowledged {first}, sent {sent}"
            location = patch(http, location, data[offset : offset + 3 * MIB], offset)
        with replicas[0].http() as http:
            offset += 3 * MIB
            location = patch(http, location, data[offset:], offset)
            r = http.put(
                httpx.URL(path_of(location)).copy_merge_params({"digest": digest_of(data)})
            )
            assert r.status_code == 201, explain(r)
            assert fetch_blob(http, repo, digest_of(data)) == data
    finally:
        replicas.restart(1)
    with replicas[1].http() as http:
        assert fetch_blob(http, repo, digest_of(data)) == data


def _base_blobs(http: httpx.Client, repo: str) -> tuple[str, int, tuple[str, int]]:
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = secrets.token_bytes(2048)
    return (
        upload_monolithic(http, repo, config),
        len(config),
        (upload_monolithic(http, repo, layer), len(layer)),
    )


def test_racing_pushes_to_one_tag_agree_everywhere(replicas: ReplicaSet, repo: str) -> None:
    """Two replicas take different manifests for the same tag at the same moment, round after
    round (an existing tag moving, and a new tag created by both at once): no errors, and
    afterwards every replica names the same winner, one of the two."""
    rounds = 25
    clients = [replica.http() for replica in replicas]
    try:
        config, config_size, layer = _base_blobs(clients[0], repo)
        statuses: list[int] = []
        pushed: dict[str, set[str]] = {}
        barrier = threading.Barrier(2)

        def push(http: httpx.Client, tag: str, body: bytes) -> None:
            barrier.wait(10)
            r = http.put(
                f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST}
            )
            statuses.append(r.status_code)
            assert r.status_code == 201, explain(r)
            assert r.headers["docker-content-digest"] == digest_of(body)

        for i in range(rounds):
            for tag in ("race", f"new-{i}"):
                bodies = [
                    small_manifest(config, config_size, layer, f"{tag}-{i}-{side}")
                    for side in ("a", "b")
                ]
                a, b = (i % 3, (i + 1) % 3)
                parallel(
                    [
                        partial(push, clients[a], tag, bodies[0]),
                        partial(push, clients[b], tag, bodies[1]),
                    ]
                )
                pushed[tag] = {digest_of(body) for body in bodies}
                answers = set()
                for http in clients:
                    r = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
                    assert r.status_code == 200, explain(r)
                    assert digest_of(r.content) == r.headers["docker-content-digest"]
                    answers.add(r.headers["docker-content-digest"])
                assert len(answers) == 1, f"round {i}, tag {tag}: replicas disagree: {answers}"
                assert answers <= pushed[tag], f"round {i}, tag {tag}: {answers} was not pushed"
        assert set(statuses) == {201}
        expected = sorted(pushed)
        for http in clients:
            tags = list_tags(http, repo)
            assert sorted(tags) == expected, tags
    finally:
        for http in clients:
            http.close()


def test_racing_first_pushes_to_a_new_package(replicas: ReplicaSet, repo: str) -> None:
    """Two replicas create the same package at the same moment (each pushing its blobs and a
    manifest): both pushes succeed and every replica lists both versions."""
    for i in range(8):
        name = f"{repo}-{i}"
        barrier = threading.Barrier(2)

        def push(index: int, note: str, name: str = name, barrier: Any = barrier) -> str:
            with replicas[index].http() as http:
                barrier.wait(10)
                config, config_size, layer = _base_blobs(http, name)
                body = small_manifest(config, config_size, layer, note)
                r = http.put(
                    f"/v2/{name}/manifests/{note}",
                    content=body,
                    headers={"Content-Type": OCI_MANIFEST},
                )
                assert r.status_code == 201, explain(r)
                return digest_of(body)

        digests = parallel([partial(push, i % 3, "a"), partial(push, (i + 1) % 3, "b")])
        for replica in replicas:
            with replica.http() as http:
                assert sorted(list_tags(http, name)) == ["a", "b"]
                for tag, digest in zip(("a", "b"), digests, strict=True):
                    r = http.head(f"/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
                    assert r.status_code == 200, explain(r)
                    assert r.headers["docker-content-digest"] == digest


def test_tag_writes_are_read_at_once_on_other_replicas(replicas: ReplicaSet, repo: str) -> None:
    """PUT a tag on one replica, and the very next request on another sees it: moved tags, new
    tags in the tag list, deleted manifests."""
    clients = [replica.http() for replica in replicas]
    try:
        config, config_size, layer = _base_blobs(clients[0], repo)
        for i in range(40):
            writer, reader, lister = clients[i % 3], clients[(i + 1) % 3], clients[(i + 2) % 3]
            body = small_manifest(config, config_size, layer, f"ryw-{i}")
            digest = digest_of(body)
            for tag in ("moving", f"t{i}"):
                r = writer.put(
                    f"/v2/{repo}/manifests/{tag}",
                    content=body,
                    headers={"Content-Type": OCI_MANIFEST},
                )
                assert r.status_code == 201, explain(r)
                r = reader.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
                assert r.status_code == 200, explain(r)
                assert r.headers["docker-content-digest"] == digest, f"round {i}: stale {tag}"
                assert r.content == body
            assert f"t{i}" in list_tags(lister, repo), f"round {i}: t{i} not listed"
            if i % 5 == 4:  # delete the version behind t{i-1}: gone everywhere at once
                old = digest_of(small_manifest(config, config_size, layer, f"ryw-{i - 1}"))
                r = writer.delete(f"/v2/{repo}/manifests/{old}")
                assert r.status_code == 202, explain(r)
                for http in (reader, lister):
                    r = http.get(f"/v2/{repo}/manifests/{old}", headers={"Accept": OCI_MANIFEST})
                    assert r.status_code == 404, explain(r)
                    r = http.get(f"/v2/{repo}/manifests/t{i - 1}", headers={"Accept": OCI_MANIFEST})
                    assert r.status_code == 404, explain(r)
    finally:
        for http in clients:
            http.close()
