"""Small helpers over the registry's HTTP API, for checks the container clients can't make."""

from __future__ import annotations

import json
from typing import Any

import httpx
from images import OCI_MANIFEST
from kit import Oci, digest_of, explain

EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"


def with_params(location: str, **params: str) -> httpx.URL:
    """``location`` (an upload URL, maybe with its own query) plus ``params``.

    (httpx's ``params=`` argument would replace the query of ``location``, not extend it.)
    """
    return httpx.URL(location).copy_merge_params(params)


def upload_blob(http: httpx.Client, repo: str, data: bytes) -> str:
    """Push ``data`` as a blob with POST + PUT (the one upload every registry must support)."""
    return Oci(http).push_blob_in_steps(repo, data)


def put_manifest(
    http: httpx.Client, repo: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST
) -> httpx.Response:
    r = Oci(http).put_manifest(repo, reference, manifest, media_type)
    assert r.status_code == 201, explain(r)
    assert r.headers["docker-content-digest"] == digest_of(manifest), explain(r)
    return r


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
