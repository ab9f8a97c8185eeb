"""Helpers for the REST API tests (``/api/v3``): an OCI
pusher (blobs, images with labels and annotations, indexes with platform children and
attestations, referrers) and a REST client that sends a token.

Test modules import it as ``from resttest import ...``; the unique name keeps it from being
shadowed by a helper of another test folder (``tests/`` is not a package).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from kit import Image, Oci, Pushed, encode, image, index

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"

SOURCE = "org.opencontainers.image.source"
DESCRIPTION = "org.opencontainers.image.description"
LICENSES = "org.opencontainers.image.licenses"

T = TypeVar("T")

# -- describing responses -----------------------------------------------------------------------


def describe(resp: httpx.Response) -> str:
    """One request/response pair, for assertion messages."""
    req = resp.request
    auth = req.headers.get("authorization", "")
    shown = auth.split(" ")[0] + " …" if auth else "(none)"
    body = "" if req.method == "HEAD" else resp.text[:600]
    link = resp.headers.get("link")
    extra = f" Link: {link}" if link else ""
    return f"{req.method} {req.url} [auth {shown}] -> {resp.status_code}{extra} {body!r}"


def poll(check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Call ``check`` until it returns something other than None (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


# -- the REST API -------------------------------------------------------------------------------


def encoded(package_name: str) -> str:
    """A package name as GitHub clients put it in a path: ``/`` as ``%2F``."""
    return quote(package_name, safe="")


class Rest:
    """A client for ``/api/v3`` of one server. ``get(path, token)`` sends
    ``Authorization: Bearer <token>`` (``scheme="token"`` for GitHub's other form); no token,
    no header."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url + "/api/v3", timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        scheme: str = "Bearer",
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"{scheme} {token}"} if token else {}
        return self.http.request(
            method, path, headers=headers, params=dict(params) if params else None, json=json_body
        )

    def get(
        self,
        path: str,
        token: str | None = None,
        *,
        scheme: str = "Bearer",
        **params: str | int,
    ) -> httpx.Response:
        return self.request("GET", path, token, scheme=scheme, params=params)

    def get_url(self, url: str, token: str | None) -> httpx.Response:
        """GET an absolute URL the API returned (``url`` fields, ``Link`` targets)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(url, headers=headers)

    def ok(self, path: str, token: str | None, **params: str | int) -> Any:
        resp = self.request("GET", path, token, params=params)
        assert resp.status_code == 200, describe(resp)
        return resp.json()


def package_path(scope: str, package_name: str) -> str:
    """``scope`` is ``/user``, ``/users/NAME`` or ``/orgs/NAME``."""
    return f"{scope}/packages/container/{encoded(package_name)}"


def links(resp: httpx.Response) -> dict[str, str]:
    """The ``Link`` header as ``{rel: url}``."""
    found: dict[str, str] = {}
    header = resp.headers.get("link", "")
    for part in header.split(","):
        if not part.strip():
            continue
        url, _, rel = part.partition(";")
        rel_value = rel.strip().removeprefix("rel=").strip('"')
        found[rel_value] = url.strip().strip("<>")
    return found


def query_of(url: str) -> dict[str, str]:
    return dict(httpx.URL(url).params)


# -- a tiny OCI pusher --------------------------------------------------------------------------


class Pusher(Oci):
    """Pushes to ``/v2`` with one token (``Authorization: Bearer <token>``): the kit's client
    with the shapes the REST tests need (labelled images, referrers, attestations, indexes)."""

    def __init__(self, base_url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        super().__init__(httpx.Client(base_url=base_url, headers=headers, timeout=30.0))

    def blob(self, name: str, data: bytes) -> dict[str, Any]:
        """A monolithic upload; returns the blob's descriptor fields."""
        return {"digest": self.push_blob(name, data), "size": len(data)}

    def manifest(
        self, name: str, document: Mapping[str, Any], reference: str | None = None
    ) -> Pushed:
        return self.push_manifest(name, reference, encode(document), str(document["mediaType"]))

    def image(
        self,
        name: str,
        tag: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        platform: Mapping[str, str] | None = None,
        subject: Pushed | None = None,
        artifact_type: str | None = None,
    ) -> Pushed:
        """An image: a config (with ``labels`` and ``platform``, default linux/amd64; ``{}``
        for a config that declares none), one random layer, a manifest with ``annotations``
        (and a ``subject``: a referrer). Pushed under ``tag``, else by digest."""
        built = image(
            platform=platform,
            labels=labels,
            annotations=annotations,
            artifact_type=artifact_type,
            subject=Image(subject.body, subject.media_type) if subject else None,
        )
        return self.push_image(name, tag, built)

    def referrer(
        self, name: str, subject: Pushed, annotations: Mapping[str, str] | None = None
    ) -> Pushed:
        """An artifact (empty config, one blob) whose ``subject`` is ``subject``."""
        empty = {"mediaType": OCI_EMPTY, **self.blob(name, b"{}")}
        payload = {"mediaType": "application/json", **self.blob(name, os.urandom(32))}
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": empty,
            "layers": [payload],
            "subject": subject.descriptor(),
        }
        if annotations:
            document["annotations"] = dict(annotations)
        return self.manifest(name, document)

    def attestation(self, name: str) -> Pushed:
        """An attestation manifest as docker buildx makes them (unknown/unknown config,
        in-toto layers); put it in an index with :func:`attestation_entry`."""
        config = json.dumps(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode()
        statement = json.dumps(
            {"_type": "https://in-toto.io/Statement/v0.1", "n": os.urandom(8).hex()}
        )
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **self.blob(name, config)},
            "layers": [{"mediaType": IN_TOTO, **self.blob(name, statement.encode())}],
        }
        return self.manifest(name, document)

    def index(
        self,
        name: str,
        children: Sequence[Mapping[str, Any]],
        tag: str | None = None,
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> Pushed:
        """An OCI index over ``children`` (descriptors: see :func:`child_entry`)."""
        built = index(children, annotations=annotations)
        return self.push_manifest(name, tag, built.manifest, built.media_type)


def child_entry(
    child: Pushed, os_name: str, architecture: str, variant: str = ""
) -> dict[str, Any]:
    platform = {"os": os_name, "architecture": architecture}
    if variant:
        platform["variant"] = variant
    return child.descriptor(platform=platform)


def attestation_entry(attestation: Pushed, of: Pushed) -> dict[str, Any]:
    """The index entry docker buildx writes for the attestation of image ``of``."""
    return attestation.descriptor(
        platform={"os": "unknown", "architecture": "unknown"},
        annotations={
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": of.digest,
        },
    )
