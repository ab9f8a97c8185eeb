"""A client for raw OCI distribution calls (``/v2``) with httpx: blob uploads (monolithic,
POST then PUT, chunked), manifest puts and gets. The ``push_*`` methods assert that each step
succeeds, with the request and response in the message; the other methods return responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from kit.digests import digest_of
from kit.images import Image, descriptor
from kit.media import ACCEPT_MANIFESTS

OCTET_STREAM = {"Content-Type": "application/octet-stream"}


class HasAddress(Protocol):
    """A server as a client needs it: its URL and credentials (None: send none)."""

    @property
    def url(self) -> str: ...

    @property
    def auth(self) -> tuple[str, str] | None: ...


def explain(resp: httpx.Response) -> str:
    """One request and its response, for assertion messages (no credentials)."""
    head = f"{resp.request.method} {resp.request.url} -> {resp.status_code} {dict(resp.headers)}"
    return f"{head}\n{resp.text[:2000]}"


@dataclass(frozen=True)
class Pushed:
    """A manifest as pushed: its digest, exact bytes and media type."""

    digest: str
    body: bytes
    media_type: str

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return descriptor(self.media_type, self.body, **extra)


class Oci:
    """``/v2`` calls over an httpx client: ``Oci.of(server)`` (the test credentials),
    ``Oci.connect(url, auth=... | token=...)`` (``token`` for ``Authorization: Bearer``), or
    ``Oci(http)`` over a client the test already has. Use the first two as context managers."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        auth: tuple[str, str] | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> Oci:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return cls(httpx.Client(base_url=base_url, auth=auth, headers=headers, timeout=timeout))

    @classmethod
    def of(cls, server: HasAddress, **options: Any) -> Oci:
        """A client on ``server`` with its test credentials."""
        return cls.connect(server.url, auth=server.auth, **options)

    def __enter__(self) -> Oci:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- blobs ----------------------------------------------------------------------------------

    def push_blob(self, repo: str, data: bytes) -> str:
        """A monolithic upload (``POST ?digest=`` with the bytes); returns the digest."""
        digest = digest_of(data)
        resp = self.http.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest},
            content=data,
            headers=OCTET_STREAM,
        )
        assert resp.status_code == 201, explain(resp)
        return digest

    def start_upload(self, repo: str) -> str:
        """``POST`` an upload session; returns its absolute location."""
        resp = self.http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        assert resp.status_code == 202, explain(resp)
        return str(self.http.base_url.join(resp.headers["location"]))

    def push_blob_in_steps(self, repo: str, data: bytes) -> str:
        """``POST`` then one ``PUT ?digest=`` with the bytes (every registry takes this one)."""
        digest = digest_of(data)
        resp = self.http.put(
            httpx.URL(self.start_upload(repo)).copy_merge_params({"digest": digest}),
            content=data,
            headers=OCTET_STREAM,
        )
        assert resp.status_code == 201, explain(resp)
        return digest

    def push_blob_chunked(self, repo: str, data: bytes, chunk_size: int) -> str:
        """``POST``, one ``PATCH`` per chunk (with ``Content-Range``), then ``PUT ?digest=``."""
        digest = digest_of(data)
        location = self.start_upload(repo)
        for start in range(0, len(data), chunk_size):
            chunk = data[start : start + chunk_size]
            resp = self.http.patch(
                location,
                content=chunk,
                headers={
                    **OCTET_STREAM,
                    "Content-Range": f"{start}-{start + len(chunk) - 1}",
                },
            )
            assert resp.status_code == 202, explain(resp)
            location = str(self.http.base_url.join(resp.headers["location"]))
        resp = self.http.put(httpx.URL(location).copy_merge_params({"digest": digest}))
        assert resp.status_code == 201, explain(resp)
        return digest

    def get_blob(self, repo: str, digest: str) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)

    # -- manifests ------------------------------------------------------------------------------

    def put_manifest(
        self, repo: str, reference: str | None, body: bytes, media_type: str
    ) -> httpx.Response:
        """``PUT`` a manifest under ``reference`` (a tag, or None: its digest)."""
        return self.http.put(
            f"/v2/{repo}/manifests/{reference or digest_of(body)}",
            content=body,
            headers={"Content-Type": media_type},
        )

    def push_manifest(
        self, repo: str, reference: str | None, body: bytes, media_type: str
    ) -> Pushed:
        resp = self.put_manifest(repo, reference, body, media_type)
        assert resp.status_code == 201, explain(resp)
        assert resp.headers.get("docker-content-digest") == digest_of(body), explain(resp)
        return Pushed(digest_of(body), body, media_type)

    def put_image(self, repo: str, reference: str | None, image: Image) -> httpx.Response:
        """Every blob of ``image`` (monolithic uploads, which must succeed), then ``PUT`` its
        manifest; returns that response (for a test of what the registry refuses)."""
        for data in image.blobs.values():
            self.push_blob(repo, data)
        return self.put_manifest(repo, reference, image.manifest, image.media_type)

    def push_image(self, repo: str, reference: str | None, image: Image) -> Pushed:
        """Every blob of ``image`` (monolithic uploads), then its manifest."""
        resp = self.put_image(repo, reference, image)
        assert resp.status_code == 201, explain(resp)
        assert resp.headers.get("docker-content-digest") == image.digest, explain(resp)
        return Pushed(image.digest, image.manifest, image.media_type)

    def get_manifest(
        self, repo: str, reference: str, accept: str = ACCEPT_MANIFESTS
    ) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})

    def head_manifest(
        self, repo: str, reference: str, accept: str = ACCEPT_MANIFESTS
    ) -> httpx.Response:
        return self.http.head(f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})

    def delete_manifest(self, repo: str, reference: str) -> httpx.Response:
        return self.http.delete(f"/v2/{repo}/manifests/{reference}")
