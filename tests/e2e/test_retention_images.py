"""Retention policies from the outside: a multi-arch index with an attestation and a signature,
old untagged orphans and many tags; the dry run lists exactly what the cleanup then removes,
every kept tag still pulls with ``skopeo copy --all`` byte for byte, and what went is deleted
(not pullable) and restorable through the REST API.

"Old" versions are made old through the metadata layer (their push times moved back), not by
waiting."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from clients import Clients
from images import OCI_INDEX, OCI_MANIFEST, PulledDir, random_bytes
from kit import descriptor, digest_of
from registry_http import EMPTY_CONFIG, EMPTY_CONFIG_TYPE, canonical, upload_blob

from cargobay.metadata.engine import make_engine
from cargobay.metadata.schema import manifests, repositories, tags
from cargobay.settings import Settings

pytestmark = pytest.mark.e2e

LAYER = "application/vnd.oci.image.layer.v1.tar"
CONFIG = "application/vnd.oci.image.config.v1+json"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
ALL = f"{OCI_INDEX}, {OCI_MANIFEST}"


class Pushed:
    def __init__(self, manifest: bytes, blobs: dict[str, bytes], media_type: str = OCI_MANIFEST):
        self.manifest = manifest
        self.blobs = blobs
        self.media_type = media_type
        self.digest = digest_of(manifest)


def _put(http: httpx.Client, repo: str, ref: str, body: bytes, media_type: str) -> None:
    r = http.put(f"/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": media_type})
    assert r.status_code == 201, r.text


def push_image(
    http: httpx.Client,
    repo: str,
    ref: str | None,
    arch: str = "amd64",
    *,
    subject: Pushed | None = None,
    artifact_type: str | None = None,
) -> Pushed:
    layer = random_bytes(2048)
    config = (
        EMPTY_CONFIG
        if artifact_type
        else json.dumps(
            {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
    )
    blobs = {digest_of(layer): layer, digest_of(config): config}
    for data in blobs.values():
        upload_blob(http, repo, data)
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(EMPTY_CONFIG_TYPE if artifact_type else CONFIG, config),
        "layers": [descriptor(LAYER, layer)],
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject is not None:
        doc["subject"] = {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": len(subject.manifest),
        }
    pushed = Pushed(canonical(doc), blobs)
    _put(http, repo, ref or pushed.digest, pushed.manifest, OCI_MANIFEST)
    return pushed


def push_index(http: httpx.Client, repo: str, tag: str) -> tuple[Pushed, list[Pushed]]:
    """Two platform images and a BuildKit-style attestation manifest, in one index."""
    amd, arm = push_image(http, repo, None, "amd64"), push_image(http, repo, None, "arm64")
    attestation = push_image(http, repo, None, artifact_type="application/vnd.in-toto+json")
    entries = [
        descriptor(OCI_MANIFEST, amd.manifest, platform={"architecture": "amd64", "os": "linux"}),
        descriptor(OCI_MANIFEST, arm.manifest, platform={"architecture": "arm64", "os": "linux"}),
        descriptor(
            OCI_MANIFEST,
            attestation.manifest,
            platform={"architecture": "unknown", "os": "unknown"},
            annotations={
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": amd.digest,
            },
        ),
    ]
    body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    index = Pushed(body, {}, OCI_INDEX)
    _put(http, repo, tag, body, OCI_INDEX)
    return index, [amd, arm, attestation]


def age(data_dir: Path, repo: str, ages: dict[str, float], tag_ages: dict[str, float]) -> None:
    """Move versions' push times (by digest) and tags' times back by so many days."""
    engine = make_engine(Settings(data_dir=data_dir).resolved_database_url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as c:
            package_id = c.execute(
                sa.select(repositories.c.id).where(repositories.c.name == repo)
            ).scalar_one()
            for digest, days in ages.items():
                at = now - timedelta(days=days)
                c.execute(
                    sa.update(manifests)
                    .where(manifests.c.repository_id == package_id, manifests.c.digest == digest)
                    .values(created_at=at, updated_at=at)
                )
            for name, days in tag_ages.items():
                c.execute(
                    sa.update(tags)
                    .where(tags.c.repository_id == package_id, tags.c.name == name)
                    .values(updated_at=now - timedelta(days=days))
                )
    finally:
        engine.dispose()


def pull_all(clients: Clients, address: str, repo: str, tag: str, into: Path) -> PulledDir:
    pulled = PulledDir(into)
    clients.skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        f"docker://{address}/{repo}:{tag}",
        f"dir:{pulled.path}",
    )
    return pulled


def assert_pulls(pulled: PulledDir, image: Pushed, instance: str | None = None) -> None:
    assert pulled.manifest(instance) == image.manifest
    for digest, data in image.blobs.items():
        assert pulled.blob(digest) == data


def test_retention_keeps_whole_images_and_removes_restorably(
    registry: Any, clients: Clients, http: httpx.Client, tmp_path: Path
) -> None:
    package = f"retain-{secrets.token_hex(3)}"
    repo = f"e2e/{package}"
    api = f"/api/v3/orgs/e2e/packages/container/{package}"
    index, children = push_index(http, repo, "release-1")
    signature = push_image(http, repo, None, subject=index, artifact_type=SIG)
    stable = push_image(http, repo, "stable")
    numbered = {f"t{i}": push_image(http, repo, f"t{i}") for i in range(1, 7)}
    orphans = [push_image(http, repo, None) for _ in range(2)]
    young = push_image(http, repo, None)
    everything = [index, *children, signature, stable, *numbered.values(), *orphans]
    age(
        registry.data_dir,
        repo,
        {p.digest: 60 for p in everything},
        {"release-1": 60, "stable": 59, **{f"t{i}": 50 - i for i in range(1, 7)}},
    )

    # Bad policies are refused and change nothing.
    for bad in ({"untagged_days": 0}, {"tag_patterns": ["re:(a"]}, {"tag_patterns": ["a b"]}):
        r = http.put(f"{api}/retention", json=bad)
        assert r.status_code == 422, r.text
    assert http.get(f"{api}/retention").json() == {"policy": None, "source": "none"}

    # The organization's default applies to its packages without a policy of their own.
    r = http.put(
        "/api/v3/orgs/e2e/packages/retention",
        json={"untagged_days": 7, "keep_tags": 3, "tag_patterns": ["release-*", "re:^stab(le)?$"]},
    )
    assert r.status_code == 200, r.text
    assert http.get(f"{api}/retention").json()["source"] == "owner"
    r = http.put(f"{api}/immutable-tags", json={"patterns": ["t1"]})
    assert r.status_code == 200, r.text

    expected = {numbered["t2"].digest, numbered["t3"].digest, *(o.digest for o in orphans)}
    r = http.get(f"{api}/retention/preview")
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["dry_run"] is True
    assert {v["name"] for v in preview["versions"]} == expected
    cli = json.loads(registry.cli("retention", "apply", repo, "--dry-run", "--json"))
    assert {v["digest"] for v in cli["removed"][repo]} == expected
    # The dry runs changed nothing.
    for pushed in everything:
        r = http.get(f"/v2/{repo}/manifests/{pushed.digest}", headers={"Accept": ALL})
        assert r.status_code == 200, pushed.digest

    r = http.post(f"{api}/retention/apply")
    assert r.status_code == 200, r.text
    applied = r.json()
    assert applied["dry_run"] is False
    assert applied["versions"] == preview["versions"]

    # Every kept tag still pulls, whole, byte for byte.
    pulled = pull_all(clients, registry.address, repo, "release-1", tmp_path / "index")
    assert pulled.manifest() == index.manifest
    for child in children:
        assert_pulls(pulled, child, child.digest)
    for tag, image in [("stable", stable)] + [(f"t{i}", numbered[f"t{i}"]) for i in (1, 4, 5, 6)]:
        assert_pulls(pull_all(clients, registry.address, repo, tag, tmp_path / tag), image)
    r = http.get(f"/v2/{repo}/referrers/{index.digest}")
    assert [m["digest"] for m in r.json()["manifests"]] == [signature.digest]
    for kept in (signature, young):
        r = http.get(f"/v2/{repo}/manifests/{kept.digest}", headers={"Accept": ALL})
        assert r.status_code == 200

    # What went is deleted: not pullable, listed as deleted, restorable.
    for digest in expected:
        r = http.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ALL})
        assert r.status_code == 404, digest
    r = http.get(f"{api}/versions", params={"state": "deleted"})
    deleted = {v["name"]: v["id"] for v in r.json()}
    assert set(deleted) == expected
    r = http.post(f"{api}/versions/{deleted[numbered['t2'].digest]}/restore")
    assert r.status_code == 204, r.text
    assert_pulls(pull_all(clients, registry.address, repo, "t2", tmp_path / "t2"), numbered["t2"])

    # The restored tag counts as pushed now: it is among the 3 most recent tags again, and
    # the oldest of the others (t4) is the one the next run would remove.
    r = http.get(f"{api}/retention/preview")
    assert {v["name"] for v in r.json()["versions"]} == {numbered["t4"].digest}
    r = http.delete("/api/v3/orgs/e2e/packages/retention")
    assert r.status_code == 204
    assert http.get(f"{api}/retention/preview").json()["versions"] == []


def test_the_periodic_cleanup_applies_the_policy(server_factory: Any) -> None:
    """A server with the cleanup every second removes an old untagged orphan on its own, and
    keeps the tagged image."""
    server = server_factory(retention_interval=1)
    package = f"job-{secrets.token_hex(3)}"
    repo = f"e2e/{package}"
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as http:
        tagged = push_image(http, repo, "v1")
        orphan = push_image(http, repo, None)
        age(server.data_dir, repo, {tagged.digest: 90, orphan.digest: 90}, {"v1": 90})
        r = http.put(
            f"/api/v3/orgs/e2e/packages/container/{package}/retention", json={"untagged_days": 30}
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = http.get(f"/v2/{repo}/manifests/{orphan.digest}", headers={"Accept": ALL})
            if r.status_code == 404:
                break
            time.sleep(0.5)
        assert r.status_code == 404, "the periodic cleanup did not remove the orphan"
        r = http.get(f"/v2/{repo}/manifests/v1", headers={"Accept": ALL})
        assert r.status_code == 200 and r.content == tagged.manifest
