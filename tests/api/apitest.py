"""Helpers for the /v2 API tests: digests, manifest builders, a thin registry client, assertions.

Test modules import this module (``from apitest import ...``); the fixtures live in
``tests/api/conftest.py``. The module has a unique name on purpose: ``tests/`` is not a package,
so a plain ``helpers.py`` or ``conftest.py`` could be shadowed by one in another test folder.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kit import digest_of

#: ``cargobay`` (default) or ``reference`` (Debian's docker-registry, CNCF Distribution 2.8.2).
TARGET = os.environ.get("CARGOBAY_TEST_TARGET", "cargobay")
IS_REFERENCE = TARGET == "reference"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_FOREIGN_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

#: The manifest media type of an image and the config/layer media types that go with it.
IMAGE_TYPES = {
    OCI_MANIFEST: (OCI_CONFIG, OCI_LAYER),
    DOCKER_MANIFEST: (DOCKER_CONFIG, DOCKER_LAYER),
}
#: The index media type and the image manifest media type of its children.
INDEX_TYPES = {OCI_INDEX: OCI_MANIFEST, DOCKER_LIST: DOCKER_MANIFEST}

EMPTY_JSON = b"{}"

MIB = 1024 * 1024
#: ``max_blob_size`` and ``max_manifest_size`` of the ``limited`` server fixture.
MAX_BLOB = MIB
MAX_MANIFEST = 2048


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def encode(document: dict[str, Any]) -> bytes:
    """Serialize a manifest the way a picky client might: indented, with a trailing newline.

    The registry must store and serve these exact bytes (and the digest is over them).
    """
    return (json.dumps(document, indent=3) + "\n").encode()


def image_manifest(
    config: dict[str, Any],
    layers: list[dict[str, Any]],
    media_type: str = OCI_MANIFEST,
    **extra: Any,
) -> bytes:
    return encode(
        {"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layers, **extra}
    )


def index_manifest(
    manifests: list[dict[str, Any]], media_type: str = OCI_INDEX, **extra: Any
) -> bytes:
    return encode({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests, **extra})


def random_config() -> bytes:
    """A small, unique, valid-looking image config."""
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"nonce": os.urandom(8).hex()}},
        }
    ).encode()


def describe(resp: httpx.Response) -> str:
    """One request/response pair, for assertion messages."""
    req = resp.request
    body = "" if req.method == "HEAD" else resp.text[:600]
    interesting = {
        k: v
        for k, v in resp.headers.items()
        if k.lower()
        in {
            "content-type",
            "content-length",
            "location",
            "range",
            "content-range",
            "docker-content-digest",
            "docker-upload-uuid",
            "link",
            "etag",
            "oci-subject",
            "oci-filters-applied",
            "accept-ranges",
        }
    }
    return f"{req.method} {req.url} -> {resp.status_code} {interesting} {body!r}"


def error_codes(resp: httpx.Response) -> list[str]:
    return [e.get("code") for e in resp.json().get("errors", [])]


def assert_error(resp: httpx.Response, status: int, *codes: str) -> None:
    """The response is an OCI error: ``status`` and (for non-HEAD requests) a JSON error body
    whose first error's code is one of ``codes`` (any code when none are given).
    cargobay always includes ``detail``."""
    assert resp.status_code == status, describe(resp)
    if resp.request.method == "HEAD":
        return
    content_type = resp.headers.get("content-type", "")
    assert content_type.startswith("application/json"), describe(resp)
    body = resp.json()
    assert isinstance(body.get("errors"), list), describe(resp)
    assert body["errors"], describe(resp)
    for err in body["errors"]:
        assert "code" in err, describe(resp)
        assert "message" in err, describe(resp)
        if not IS_REFERENCE:
            assert "detail" in err, describe(resp)
    if codes:
        assert body["errors"][0]["code"] in codes, describe(resp)


def dir_bytes(path: Path) -> int:
    """Total size of the regular files under ``path`` (0 if it doesn't exist)."""
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def paths_containing(root: Path, text: str) -> list[Path]:
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if text in str(p.relative_to(root))]


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class Registry:
    """A thin synchronous client for one registry process.

    ``auth`` is ``(user, token)``: sent as HTTP Basic with every request (``http`` and ``raw``);
    None for a registry without accounts (the reference)."""

    def __init__(self, base_url: str, auth: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0, auth=auth)

    def close(self) -> None:
        self.http.close()

    # -- plumbing -------------------------------------------------------------------------

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, self.resolve(url), **kwargs)

    def resolve(self, location: str) -> str:
        """A ``Location`` (relative or absolute) as an absolute URL."""
        return str(httpx.URL(self.base_url + "/").join(location))

    def path_of(self, location: str) -> str:
        return httpx.URL(self.resolve(location)).path

    def with_params(self, location: str, **params: str) -> str:
        return str(httpx.URL(self.resolve(location)).copy_merge_params(params))

    def raw(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> RawResponse:
        """Send ``path`` byte for byte (no dot-segment normalisation, no re-encoding)."""
        url = httpx.URL(self.base_url)
        conn = http.client.HTTPConnection(url.host, url.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            all_headers = {"Content-Length": str(len(body)), **(headers or {})}
            if self.auth is not None:
                basic = base64.b64encode(":".join(self.auth).encode()).decode()
                all_headers.setdefault("Authorization", f"Basic {basic}")
            for k, v in all_headers.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    # -- blobs ----------------------------------------------------------------------------

    def start_upload(self, repo: str) -> httpx.Response:
        resp = self.http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        assert resp.status_code == 202, describe(resp)
        assert resp.headers.get("location"), describe(resp)
        return resp

    def upload_location(self, repo: str) -> str:
        return self.start_upload(repo).headers["location"]

    def push_blob(self, repo: str, data: bytes, algorithm: str = "sha256") -> str:
        """POST then PUT (the one upload flow every registry supports); returns the digest."""
        digest = digest_of(data, algorithm)
        location = self.upload_location(repo)
        resp = self.http.put(
            self.with_params(location, digest=digest),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert resp.status_code == 201, describe(resp)
        return digest

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self.http.head(f"/v2/{repo}/blobs/{digest}")
        assert resp.status_code in (200, 404), describe(resp)
        return resp.status_code == 200

    # -- manifests ------------------------------------------------------------------------

    def put_manifest(
        self, repo: str, reference: str, body: bytes, media_type: str
    ) -> httpx.Response:
        return self.http.put(
            f"/v2/{repo}/manifests/{reference}",
            content=body,
            headers={"Content-Type": media_type},
        )

    def push_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        resp = self.put_manifest(repo, reference, body, media_type)
        assert resp.status_code == 201, describe(resp)
        return digest_of(body)

    def get_manifest(self, repo: str, reference: str, accept: str | None = None) -> httpx.Response:
        accept = accept or ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
        return self.http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})

    def push_image(
        self,
        repo: str,
        reference: str | None = None,
        *,
        media_type: str = OCI_MANIFEST,
        config_media_type: str | None = None,
        layers: int = 1,
        **extra: Any,
    ) -> tuple[str, bytes]:
        """Push a config, ``layers`` random layers and a manifest (by digest when ``reference``
        is None). Returns the manifest digest and its exact bytes."""
        default_config, layer_type = IMAGE_TYPES[media_type]
        config = random_config()
        self.push_blob(repo, config)
        layer_descs = []
        for _ in range(layers):
            layer = os.urandom(512)
            self.push_blob(repo, layer)
            layer_descs.append(descriptor(layer_type, layer))
        body = image_manifest(
            descriptor(config_media_type or default_config, config),
            layer_descs,
            media_type,
            **extra,
        )
        digest = digest_of(body)
        self.push_manifest(repo, reference or digest, body, media_type)
        return digest, body

    def push_index(
        self,
        repo: str,
        reference: str | None = None,
        *,
        media_type: str = OCI_INDEX,
        children: int = 2,
        **extra: Any,
    ) -> tuple[str, bytes]:
        """Push ``children`` images and an index over them. Returns the index digest and bytes."""
        child_type = INDEX_TYPES[media_type]
        descs = []
        for i in range(children):
            digest, body = self.push_image(repo, media_type=child_type)
            platform = {"architecture": ["arm64", "ppc64le", "s390x"][i % 3], "os": "linux"}
            descs.append(
                {"mediaType": child_type, "digest": digest, "size": len(body), "platform": platform}
            )
        body = index_manifest(descs, media_type, **extra)
        digest = digest_of(body)
        self.push_manifest(repo, reference or digest, body, media_type)
        return digest, body

    def tags(self, repo: str) -> list[str]:
        resp = self.http.get(f"/v2/{repo}/tags/list")
        assert resp.status_code == 200, describe(resp)
        return list(resp.json().get("tags") or [])
