"""OCI artifacts with the ORAS Python SDK, and the referrers API.

oras-py pushes blobs with POST + PUT (or POST + PATCH... + PUT with ``do_chunked``; its
``Content-Range`` has no ``bytes=`` prefix), then PUTs an image manifest whose config media type
is the artifact's type. It retries failed requests with growing sleeps, so every test here has
a timeout.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import oras.client
import oras.oci
import pytest
from clients import ON_REFERENCE
from images import OCI_INDEX, OCI_MANIFEST, random_bytes
from kit import descriptor, digest_of, explain
from registry_http import EMPTY_CONFIG, EMPTY_CONFIG_TYPE, put_manifest, upload_blob

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

FILE_TYPE = "application/vnd.cargobay.test.file.v1+bin"
ARTIFACT_TYPE = "application/vnd.cargobay.test.artifact.v1+json"
SBOM_TYPE = "application/vnd.cargobay.test.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.cargobay.test.signature.v1"


@pytest.fixture
def oras_client(registry, tmp_path: Path) -> oras.client.OrasClient:
    """An ORAS client signed in with the test credentials (its config file in ``tmp_path``)."""
    client = oras.client.OrasClient(hostname=registry.address, insecure=True)
    if registry.auth is not None:
        user, token = registry.auth
        client.login(
            username=user,
            password=token,
            hostname=registry.address,
            config_path=str(tmp_path / "oras-config.json"),
        )
    return client


def push_artifact(
    client: oras.client.OrasClient,
    target: str,
    tmp_path: Path,
    *,
    config_type: str,
    payload: bytes,
    name: str = "payload.bin",
    **kwargs: object,
) -> None:
    work = tmp_path / f"push-{digest_of(payload)[7:19]}"
    work.mkdir()
    (work / name).write_bytes(payload)
    (work / "config.json").write_text(json.dumps({"cargobay": "e2e"}))
    response = client.push(
        target=target,
        files=[f"{work / name}:{FILE_TYPE}"],
        manifest_config=f"{work / 'config.json'}:{config_type}",
        disable_path_validation=True,
        quiet=True,
        **kwargs,  # type: ignore[arg-type]
    )
    assert response.status_code == 201, f"{response.status_code} {response.text}"


def manifest_of(http: httpx.Client, repo: str, reference: str) -> tuple[str, bytes]:
    r = http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, explain(r)
    assert r.headers["docker-content-digest"] == digest_of(r.content), explain(r)
    return r.headers["docker-content-digest"], r.content


@pytest.mark.parametrize("chunked", [False, True], ids=["put", "chunked"])
def test_push_and_pull_artifact(
    oras_client: oras.client.OrasClient,
    registry,
    repo: str,
    tmp_path: Path,
    http: httpx.Client,
    chunked: bool,
) -> None:
    payload = random_bytes(300 * 1024 if chunked else 5000)
    target = f"{registry.address}/{repo}:v1"

    push_artifact(
        oras_client,
        target,
        tmp_path,
        config_type=ARTIFACT_TYPE,
        payload=payload,
        manifest_annotations={"org.example.note": "hello"},
        do_chunked=chunked,
        chunk_size=64 * 1024,
    )

    out = tmp_path / "pulled"
    files = oras_client.pull(target=target, outdir=str(out))
    assert [Path(f).name for f in files] == ["payload.bin"]
    assert (out / "payload.bin").read_bytes() == payload
    digest, raw = manifest_of(http, repo, "v1")
    manifest = json.loads(raw)
    assert manifest["config"]["mediaType"] == ARTIFACT_TYPE
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == FILE_TYPE
    assert layer["digest"] == digest_of(payload)
    assert layer["size"] == len(payload)
    assert manifest["annotations"] == {"org.example.note": "hello"}
    assert oras_client.get_manifest(f"{registry.address}/{repo}@{digest}") == manifest
    r = http.get(f"/v2/{repo}/blobs/{layer['digest']}")
    assert r.status_code == 200, explain(r)
    assert r.content == payload


def test_one_client_across_actions_and_repositories(
    oras_client: oras.client.OrasClient, registry, repo: str, tmp_path: Path, http: httpx.Client
) -> None:
    """The SDK keeps one registry token for everything it does. Pulling first gets a token for
    ``pull`` on one repository; pushing there, pushing to another repository and pulling from
    the first again each need a wider or another token, which the SDK only fetches after a 403
    (it sends a refused token once more first): every step must still work."""
    other = f"{repo}-other"
    payload = random_bytes(1500)
    seeder = oras.client.OrasClient(hostname=registry.address, insecure=True)
    if registry.auth is not None:
        seeder.login(
            username=registry.auth[0],
            password=registry.auth[1],
            hostname=registry.address,
            config_path=str(tmp_path / "seeder.json"),
        )
    target = f"{registry.address}/{repo}:v1"
    push_artifact(seeder, target, tmp_path, config_type=ARTIFACT_TYPE, payload=payload)
    files = oras_client.pull(target=f"{registry.address}/{repo}:v1", outdir=str(tmp_path / "a"))
    assert Path(files[0]).read_bytes() == payload
    push_artifact(
        oras_client,
        f"{registry.address}/{repo}:v2",
        tmp_path,
        config_type=ARTIFACT_TYPE,
        payload=random_bytes(900),
    )
    push_artifact(
        oras_client,
        f"{registry.address}/{other}:v1",
        tmp_path,
        config_type=ARTIFACT_TYPE,
        payload=random_bytes(800),
    )
    files = oras_client.pull(target=f"{registry.address}/{repo}:v1", outdir=str(tmp_path / "b"))
    assert Path(files[0]).read_bytes() == payload
    assert sorted(http.get(f"/v2/{repo}/tags/list").json()["tags"]) == ["v1", "v2"]
    assert http.get(f"/v2/{other}/tags/list").json()["tags"] == ["v1"]


def test_referrers(
    oras_client: oras.client.OrasClient,
    registry,
    repo: str,
    tmp_path: Path,
    http: httpx.Client,
) -> None:
    target = f"{registry.address}/{repo}"
    push_artifact(
        oras_client,
        f"{target}:subject",
        tmp_path,
        config_type=ARTIFACT_TYPE,
        payload=random_bytes(2000),
    )
    subject_digest, subject_raw = manifest_of(http, repo, "subject")
    subject = oras.oci.Subject(OCI_MANIFEST, subject_digest, len(subject_raw))

    # Referrer 1, with oras: no artifactType field, so its type is its config media type.
    push_artifact(
        oras_client,
        f"{target}:sbom",
        tmp_path,
        config_type=SBOM_TYPE,
        payload=random_bytes(1000),
        name="sbom.json",
        subject=subject,
        manifest_annotations={"org.example.kind": "sbom"},
    )
    sbom_digest, sbom_raw = manifest_of(http, repo, "sbom")
    assert json.loads(sbom_raw)["subject"]["digest"] == subject_digest
    # Referrer 2, by hand: an explicit artifactType, the empty config, pushed by digest only.
    upload_blob(http, repo, EMPTY_CONFIG)
    signature = random_bytes(64)
    upload_blob(http, repo, signature)
    sig_manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGNATURE_TYPE,
            "config": descriptor(EMPTY_CONFIG_TYPE, EMPTY_CONFIG),
            "layers": [descriptor("application/octet-stream", signature)],
            "subject": descriptor(OCI_MANIFEST, subject_raw),
            "annotations": {"org.example.kind": "signature"},
        }
    ).encode()
    sig_digest = digest_of(sig_manifest)
    r = put_manifest(http, repo, sig_digest, sig_manifest)

    if ON_REFERENCE:
        pytest.skip("CNCF Distribution 2.8.2 has no referrers API")
    assert r.headers.get("oci-subject") == subject_digest, explain(r)

    r = http.get(f"/v2/{repo}/referrers/{subject_digest}")
    assert r.status_code == 200, explain(r)
    assert r.headers["content-type"].split(";")[0] == OCI_INDEX, explain(r)
    index = r.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    listed = {m["digest"]: m for m in index["manifests"]}
    assert listed == {
        sbom_digest: {
            "mediaType": OCI_MANIFEST,
            "digest": sbom_digest,
            "size": len(sbom_raw),
            "artifactType": SBOM_TYPE,
            "annotations": {"org.example.kind": "sbom"},
        },
        sig_digest: {
            "mediaType": OCI_MANIFEST,
            "digest": sig_digest,
            "size": len(sig_manifest),
            "artifactType": SIGNATURE_TYPE,
            "annotations": {"org.example.kind": "signature"},
        },
    }, explain(r)

    r = http.get(f"/v2/{repo}/referrers/{subject_digest}", params={"artifactType": SIGNATURE_TYPE})
    assert r.status_code == 200, explain(r)
    assert r.headers.get("oci-filters-applied") == "artifactType", explain(r)
    assert [m["digest"] for m in r.json()["manifests"]] == [sig_digest], explain(r)

    # The subject of nobody: an empty index, not a 404.
    r = http.get(f"/v2/{repo}/referrers/{sbom_digest}")
    assert r.status_code == 200, explain(r)
    assert r.json()["manifests"] == [], explain(r)
    r = http.get(f"/v2/{repo}/referrers/sha256:not-a-digest")
    assert r.status_code == 400, explain(r)
