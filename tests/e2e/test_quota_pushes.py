"""Namespace quotas from the outside: a real ``cargobay serve`` (two workers), raw HTTP and
skopeo. Under the quota pushes work; over it monolithic, chunked and streamed pushes are refused
with 403 DENIED and a message saying what is used, what the push adds and the limit, and nothing
becomes visible; blobs the namespace has already don't count twice; deleting (and the purge)
frees quota; racing pushers can't jointly pass it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE, Clients
from images import build_image, random_bytes
from kit import digest_of, explain
from registry_http import EMPTY_CONFIG, EMPTY_CONFIG_TYPE, canonical, with_params

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(ON_REFERENCE, reason="quotas are cargobay's"),
]

WARNING = "x-cargobay-quota-warning"


@pytest.fixture(scope="module")
def server(server_factory: Any) -> Any:
    # Deleted content is purged a second after its deletion.
    return server_factory(workers=2, restore_window=1, purge_interval=1)


@pytest.fixture(scope="module")
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60, auth=server.auth) as client:
        yield client


def namespace(server: Any, name: str, quota: str, *more: str) -> str:
    server.create_namespace(name)
    server.cli("quota", "set", name, quota, *more)
    return name


def used(server: Any, name: str) -> int:
    """The namespace's usage counter, as a site administrator reads it."""
    r = httpx.get(
        f"{server.url}/api/v3/admin/namespaces/{name}/quota", auth=server.auth, timeout=30
    )
    assert r.status_code == 200, explain(r)
    return int(r.json()["used"])


def refused(r: httpx.Response, *phrases: str) -> None:
    assert r.status_code == 403, explain(r)
    error = r.json()["errors"][0]
    assert error["code"] == "DENIED", explain(r)
    for phrase in phrases:
        assert phrase in error["message"], explain(r)


def monolithic(http: httpx.Client, repo: str, data: bytes) -> httpx.Response:
    return http.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest_of(data)},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def manifest_for(layers: list[bytes]) -> bytes:
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": EMPTY_CONFIG_TYPE,
                "digest": digest_of(EMPTY_CONFIG),
                "size": len(EMPTY_CONFIG),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
                for layer in layers
            ],
        }
    )


def push_image(http: httpx.Client, repo: str, tag: str, layers: list[bytes]) -> httpx.Response:
    for blob in [EMPTY_CONFIG, *layers]:
        r = monolithic(http, repo, blob)
        assert r.status_code == 201, explain(r)
    return http.put(
        f"/v2/{repo}/manifests/{tag}",
        content=manifest_for(layers),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )


def visible(http: httpx.Client, repo: str, digest: str) -> dict[str, Any]:
    """What another client sees of the namespace: catalog, tags, the blob."""
    catalog = http.get("/v2/_catalog", params={"n": 1000}).json()["repositories"]
    tags = http.get(f"/v2/{repo}/tags/list")
    return {
        "catalog": sorted(n for n in catalog if n.startswith(repo.split("/")[0] + "/")),
        "tags": tags.json().get("tags") if tags.status_code == 200 else tags.status_code,
        "blob": http.head(f"/v2/{repo}/blobs/{digest}").status_code,
    }


def test_pushes_under_the_quota_work_and_over_it_are_refused_with_nothing_visible(
    server: Any, http: httpx.Client
) -> None:
    ns = namespace(server, "quota-http", "100kB", "--warn", "50")
    repo = f"{ns}/app"
    base = random_bytes(40_000)
    r = push_image(http, repo, "v1", [base])
    assert r.status_code == 201, explain(r)
    assert WARNING not in r.headers, "41 kB of 100 kB: below the warning threshold"
    before = used(server, ns)
    assert 40_000 < before < 41_000
    shown = json.loads(server.cli("quota", "show", ns, "--json"))
    assert shown == {
        "namespace": ns,
        "used": before,
        "quota": 100_000,
        "warn_percent": 50,
        "percent_used": before / 1000,
    }

    big = random_bytes(80_000)
    digest = digest_of(big)
    seen = visible(http, repo, digest)
    assert seen["blob"] == 404
    message = (
        f"namespace {ns} uses {before / 1000:.3g} kB of its 100 kB quota; this push adds 80 kB"
    )

    # Monolithic, its size known from Content-Length: refused before anything is read.
    refused(monolithic(http, repo, big), message)
    # Chunked, with a declared size: refused at the PATCH; the session is gone.
    r = http.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, explain(r)
    location = r.headers["location"]
    r = http.patch(
        location,
        content=big,
        headers={"Content-Range": f"0-{len(big) - 1}", "Content-Type": "application/octet-stream"},
    )
    refused(r, "this push adds 80 kB")
    assert http.get(location).status_code == 404
    # Streamed (no size until the end): refused at the commit, the upload discarded.
    r = http.post(f"/v2/{repo}/blobs/uploads/")
    location = r.headers["location"]
    r = http.patch(location, content=iter([big[:50_000], big[50_000:]]))
    assert r.status_code == 202, explain(r)
    r = http.put(with_params(location, digest=digest))
    refused(r, message)
    assert http.get(location).status_code == 404
    assert visible(http, repo, digest) == seen
    assert used(server, ns) == before
    # A new package gets nothing either (the push that creates it is refused).
    refused(monolithic(http, f"{ns}/other", big), "this push adds 80 kB")
    assert http.head(f"/v2/{ns}/other/blobs/{digest}").status_code == 404
    assert used(server, ns) == before

    # A blob the namespace has already costs nothing: the same base in another package.
    r = push_image(http, f"{ns}/copy", "v1", [base])
    assert r.status_code == 201, explain(r)
    manifest_bytes = len(manifest_for([base]))
    assert used(server, ns) == before + manifest_bytes
    # Past 50 %: the push's response warns.
    r = push_image(http, f"{ns}/copy", "v2", [base, random_bytes(20_000)])
    assert r.status_code == 201, explain(r)
    assert f"namespace {ns} uses" in r.headers[WARNING], r.headers
    # The manifest's own bytes count: a manifest over the quota is refused, its tag not made.
    server.cli("quota", "set", ns, str(used(server, ns) + 100))
    layers = [base] + [random_bytes(10) for _ in range(1)]
    for blob in [EMPTY_CONFIG, *layers]:
        assert monolithic(http, f"{ns}/copy", blob).status_code == 201
    r = http.put(
        f"/v2/{ns}/copy/manifests/v3",
        content=manifest_for(layers),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    refused(r, "of its")
    assert http.get(f"/v2/{ns}/copy/manifests/v3").status_code == 404


def test_deleting_and_the_purge_free_quota(server: Any, http: httpx.Client) -> None:
    ns = namespace(server, "quota-free", "100kB")
    layer = random_bytes(70_000)
    assert push_image(http, f"{ns}/old", "v1", [layer]).status_code == 201
    fresh = random_bytes(70_000)
    refused(monolithic(http, f"{ns}/new", fresh), "this push adds 70 kB")

    r = http.delete(f"/api/v3/orgs/{ns}/packages/container/old")
    assert r.status_code == 204, explain(r)
    deadline = time.monotonic() + 30
    while used(server, ns) > 0 and time.monotonic() < deadline:
        time.sleep(0.5)  # the purge runs every second, for what was deleted a second ago
    assert used(server, ns) == 0
    r = monolithic(http, f"{ns}/new", fresh)
    assert r.status_code == 201, explain(r)
    assert used(server, ns) == 70_000
    # Unlinking a blob (DELETE) frees it too.
    assert http.delete(f"/v2/{ns}/new/blobs/{digest_of(fresh)}").status_code == 202
    assert used(server, ns) == 0
    # The garbage collector finds nothing counted that it removes.
    server.cli("gc", "--grace", "0s")
    assert used(server, ns) == 0
    assert "0 corrected" in server.cli("quota", "recount")


def test_racing_pushers_cannot_jointly_pass_the_quota(server: Any) -> None:
    """Rounds of four pushers, each committing a streamed 60 kB blob at the same moment into
    a namespace with room for one: exactly one gets in each round."""
    ns = namespace(server, "quota-race", "100kB")
    for round_ in range(4):
        barrier = threading.Barrier(4)
        outcomes: list[int] = []
        pushed = [""] * 4

        def push(
            n: int,
            round_: int = round_,
            barrier: threading.Barrier = barrier,
            outcomes: list[int] = outcomes,
            pushed: list[str] = pushed,
        ) -> None:
            with httpx.Client(base_url=server.url, timeout=60, auth=server.auth) as client:
                data = random_bytes(60_000)
                pushed[n] = digest_of(data)
                repo = f"{ns}/r{round_}-{n}"
                r = client.post(f"/v2/{repo}/blobs/uploads/")
                location = r.headers["location"]
                r = client.patch(location, content=iter([data]))
                assert r.status_code == 202, explain(r)
                barrier.wait()
                r = client.put(with_params(location, digest=digest_of(data)))
                outcomes.append(r.status_code)

        threads = [threading.Thread(target=push, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == [201, 403, 403, 403], outcomes
        assert used(server, ns) == 60_000
        # Free it for the next round: unlink the blob that got in (the packages, refused or
        # never given a version, show nowhere).
        with httpx.Client(base_url=server.url, timeout=60, auth=server.auth) as client:
            for n, digest in enumerate(pushed):
                client.delete(f"/v2/{ns}/r{round_}-{n}/blobs/{digest}")
        assert used(server, ns) == 0
    assert "0 corrected" in server.cli("quota", "recount", ns)


def test_skopeo_push_over_the_quota_is_refused_and_under_it_works(
    server: Any, clients: Clients, tmp_path: Path, http: httpx.Client
) -> None:
    ns = namespace(server, "quota-skopeo", "600kB")
    clients.store_credentials(server.address, *server.auth)
    layout = tmp_path / "layout"
    build_image(layout, "small", layer_size=64 * 1024)
    build_image(layout, "big", layer_size=1024 * 1024)
    target = f"docker://{server.address}/{ns}/app"
    clients.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:small", f"{target}:small")
    done = clients.skopeo(
        "copy", "--dest-tls-verify=false", f"oci:{layout}:big", f"{target}:big", check=False
    )
    assert done.returncode != 0
    assert f"namespace {ns} uses" in done.stderr and "600 kB quota" in done.stderr, done.stderr
    assert http.get(f"/v2/{ns}/app/tags/list").json()["tags"] == ["small"]
    server.cli("quota", "set", ns, "10MB")
    clients.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:big", f"{target}:big")
    assert sorted(http.get(f"/v2/{ns}/app/tags/list").json()["tags"]) == ["big", "small"]


def chunked(http: httpx.Client, repo: str, data: bytes) -> tuple[httpx.Response, str]:
    """Start an upload and send ``data`` as one chunk with a declared range: the PATCH's
    response and the session's location."""
    r = http.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, explain(r)
    location = r.headers["location"]
    r = http.patch(
        location,
        content=data,
        headers={"Content-Range": f"0-{len(data) - 1}", "Content-Type": "application/octet-stream"},
    )
    return r, r.headers.get("location", location)


def test_a_chunk_of_a_blob_the_namespace_has_is_not_counted_again(
    server: Any, http: httpx.Client
) -> None:
    ns = namespace(server, "quota-dedup", "100kB")
    base = random_bytes(80_000)
    assert push_image(http, f"{ns}/app", "v1", [base]).status_code == 201
    before = used(server, ns)

    # The same 80 kB, uploaded in chunks into another package: it is stored once, counted once.
    r, location = chunked(http, f"{ns}/copy", base)
    assert r.status_code == 202, explain(r)
    r = http.put(with_params(location, digest=digest_of(base)))
    assert r.status_code == 201, explain(r)
    assert http.head(f"/v2/{ns}/copy/blobs/{digest_of(base)}").status_code == 200
    assert used(server, ns) == before

    # New bytes larger than any blob of the namespace: refused at the PATCH.
    r, location = chunked(http, f"{ns}/copy", random_bytes(90_000))
    refused(r, "this push adds 90 kB")
    assert http.get(location).status_code == 404
    # New bytes that might have been a blob it has: refused at the commit, once the digest says.
    fresh = random_bytes(50_000)
    r, location = chunked(http, f"{ns}/copy", fresh)
    assert r.status_code == 202, explain(r)
    refused(http.put(with_params(location, digest=digest_of(fresh))), "this push adds 50 kB")
    assert http.head(f"/v2/{ns}/copy/blobs/{digest_of(fresh)}").status_code == 404
    assert used(server, ns) == before


def test_a_mount_over_the_quota_starts_an_upload_that_the_commit_refuses(
    server: Any, http: httpx.Client
) -> None:
    source = namespace(server, "quota-mount-src", "10MB")
    ns = namespace(server, "quota-mount", "100kB")
    layer = random_bytes(80_000)
    digest = digest_of(layer)
    assert monolithic(http, f"{source}/app", layer).status_code == 201
    assert push_image(http, f"{ns}/app", "v1", [random_bytes(40_000)]).status_code == 201
    before = used(server, ns)

    # No room: the mount is not made; the answer is an upload session (OCI spec: 202).
    r = http.post(f"/v2/{ns}/app/blobs/uploads/", params={"mount": digest, "from": f"{source}/app"})
    assert r.status_code == 202, explain(r)
    location = r.headers["location"]
    assert http.get(location).status_code == 204, "a live upload session"
    assert http.head(f"/v2/{ns}/app/blobs/{digest}").status_code == 404
    assert used(server, ns) == before
    # Uploading the bytes into that session instead: the quota holds at the commit.
    refused(http.put(with_params(location, digest=digest), content=layer), "this push adds 80 kB")
    assert http.head(f"/v2/{ns}/app/blobs/{digest}").status_code == 404
    assert used(server, ns) == before

    # With room, the same mount is made.
    server.cli("quota", "set", ns, "200kB")
    r = http.post(f"/v2/{ns}/app/blobs/uploads/", params={"mount": digest, "from": f"{source}/app"})
    assert r.status_code == 201, explain(r)
    assert used(server, ns) == before + 80_000


def test_skopeo_copies_between_namespaces_under_quotas(
    server: Any, clients: Clients, tmp_path: Path, http: httpx.Client
) -> None:
    """containers/image mounts a layer it pushed before from where it knows it is. Into a
    namespace without room, the mount answers with an upload session and the client uploads the
    layer instead: that upload's commit is refused with the quota's message. Inside one
    namespace a layer it has costs nothing."""
    source = namespace(server, "quota-copy-src", "10MB")
    ns = namespace(server, "quota-copy", "600kB")
    clients.store_credentials(server.address, *server.auth)
    layout = tmp_path / "layout"
    build_image(layout, "big", layer_size=1024 * 1024)
    build_image(layout, "small", layer_size=64 * 1024)
    tls = "--dest-tls-verify=false"
    registry = f"docker://{server.address}"
    clients.skopeo("copy", tls, f"oci:{layout}:big", f"{registry}/{source}/app:big")
    clients.skopeo("copy", tls, f"oci:{layout}:small", f"{registry}/{ns}/app:small")
    before = used(server, ns)

    done = clients.skopeo("copy", tls, f"oci:{layout}:big", f"{registry}/{ns}/app:big", check=False)
    assert done.returncode != 0
    assert f"namespace {ns} uses" in done.stderr and "600 kB quota" in done.stderr, done.stderr
    assert http.get(f"/v2/{ns}/app/tags/list").json()["tags"] == ["small"]
    assert used(server, ns) == before

    # Room for a manifest, not for the layers again: a copy inside the namespace mounts them.
    server.cli("quota", "set", ns, str(before + 5_000))
    clients.skopeo("copy", tls, f"oci:{layout}:small", f"{registry}/{ns}/other:small")
    assert http.get(f"/v2/{ns}/other/tags/list").json()["tags"] == ["small"]
    assert before < used(server, ns) < before + 5_000
