"""Handlers of the OCI Distribution API v1.1 (distribution-spec ``spec.md``).

Each handler parses, authorizes through :func:`repository_access`, makes one service call and
responds. Access is declared at the route: the action follows from the HTTP method.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from cargobay.api.oci.body import Body
from cargobay.api.oci.dispatch import Route
from cargobay.api.oci.errors import API_VERSION_HEADER
from cargobay.api.oci.responses import BlobResponse, RawResponse, parse_range
from cargobay.api.oci.token import token
from cargobay.auth.access import Access
from cargobay.auth.principal import Principal
from cargobay.errors import (
    BlobUploadInvalid,
    DigestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    PaginationInvalid,
    SizeInvalid,
    TokenExpired,
    Unauthenticated,
)
from cargobay.oci import mediatypes as mt
from cargobay.oci.digest import Digest, is_digest, parse_digest
from cargobay.oci.names import RepositoryName, parse_name
from cargobay.oci.numbers import parse_unsigned
from cargobay.services.access import AccessService
from cargobay.services.events import bind_principal
from cargobay.services.manifests import parse_reference
from cargobay.services.packages import PackageService
from cargobay.services.quotas import WARNING_HEADER
from cargobay.services.registry import Registry

Handler = Callable[[Request], Awaitable[Response]]
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")


def registry(request: Request) -> Registry:
    reg: Registry = request.scope["cargobay"].registry
    return reg


def packages(request: Request) -> PackageService:
    service: PackageService = request.scope["cargobay"].packages
    return service


def access_service(request: Request) -> AccessService:
    service: AccessService = request.scope["cargobay"].access
    return service


async def principal(request: Request) -> Principal:
    """Who is asking (once per request; the result is kept in the request's state)."""
    known: Principal | None = request.scope.get("cargobay.principal")
    if known is None:
        client = request.client.host if request.client else ""
        known = await access_service(request).authenticate(
            request.headers.get("authorization"), client
        )
        request.scope["cargobay.principal"] = known
        bind_principal(known)
    return known


def request_line(request: Request) -> str:
    """Method, path and query: what a client sends again when it repeats a request."""
    query = request.url.query
    return f"{request.method} {request.url.path}" + (f"?{query}" if query else "")


def repository_access(handler: Callable[[Request, RepositoryName], Awaitable[Response]]) -> Handler:
    """Declare: this route acts on repository ``{name}``; the HTTP method names the action."""

    async def guarded(request: Request) -> Response:
        name = parse_name(request.path_params["name"])
        method = request.method
        if method == "DELETE" and "upload_id" in request.path_params:
            method = "PATCH"  # cancelling an upload is part of pushing, not a deletion
        access = Access.repository(name, method)
        attempt = request_line(request)
        try:
            who = await principal(request)
        except TokenExpired as exc:
            raise access_service(request).token_expired(exc, access, attempt) from None
        await access_service(request).authorize(who, access, attempt)
        return await handler(request, name)

    guarded.__doc__ = handler.__doc__
    guarded.__name__ = handler.__name__
    return guarded


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    length = parse_unsigned(value)
    if length is None:
        raise SizeInvalid("invalid Content-Length", {"content-length": value[:40]})
    return length


def upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
        "Content-Length": "0",
    }


def blob_created(name: str, digest: str) -> Response:
    return Response(
        status_code=201,
        headers={
            "Location": f"/v2/{name}/blobs/{digest}",
            "Docker-Content-Digest": digest,
            "Content-Length": "0",
        },
    )


async def quota_warned(request: Request, name: str, response: Response) -> Response:
    """A push's response, with the namespace's quota warning once it is past its threshold."""
    quotas = registry(request).quotas
    if quotas is not None and (warning := await quotas.warning(name)):
        response.headers[WARNING_HEADER] = warning
    return response


def page_size(request: Request, maximum: int) -> int:
    raw = request.query_params.get("n")
    if raw is None or raw == "":
        return maximum
    if not (raw.isascii() and raw.isdigit()):
        raise PaginationInvalid("n must be a non-negative integer", {"n": raw[:40]})
    n = parse_unsigned(raw.lstrip("0") or "0")
    return maximum if n is None else min(n, maximum)  # None: more digits than any page


def link_header(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'


# -- base -------------------------------------------------------------------------------------


async def base(request: Request) -> Response:
    """spec.md "Determining support": ``GET /v2/`` is 200 for a signed-in caller; anonymous
    callers get 401 with the challenge that tells clients where to get a token."""
    who = await principal(request)
    if who.anonymous and who.registry_grant is None:
        raise Unauthenticated(
            "authentication required", challenge=access_service(request).challenge(None)
        )
    return Response(b"{}", media_type="application/json", headers=dict([API_VERSION_HEADER]))


# -- blobs ------------------------------------------------------------------------------------


@repository_access
async def blob(request: Request, name: RepositoryName) -> Response:
    """spec.md "Pulling blobs" (GET/HEAD, with Range) and "Deleting blobs" (DELETE)."""
    reg = registry(request)
    digest = parse_digest(request.path_params["digest"])
    if request.method == "DELETE":
        await reg.blobs.delete(name, digest)
        return Response(status_code=202, headers={"Content-Length": "0"})
    info = await reg.blobs.info(name, digest)
    etag = f'"{digest}"'
    if request.headers.get("if-none-match") in (etag, digest):
        return Response(status_code=304, headers={"ETag": etag, "Docker-Content-Digest": digest})
    byte_range = parse_range(request.headers.get("range"), info.size)
    if request.method == "GET" and (url := await reg.blobs.redirect_url(digest)):
        # The store serves the bytes itself (Range included): a presigned URL.
        return Response(
            status_code=307,
            headers={"Location": url, "Docker-Content-Digest": digest, "Content-Length": "0"},
        )
    return BlobResponse(info, reg.blobs, byte_range, head=request.method == "HEAD")  # type: ignore[return-value]


# -- uploads ----------------------------------------------------------------------------------


@repository_access
async def upload_start(request: Request, name: RepositoryName) -> Response:
    """spec.md "Pushing blobs": POST starts a session, uploads monolithically (``?digest=``)
    or mounts a blob from another repository (``?mount=&from=``). A mount without ``from``
    (automatic content discovery, optional in the spec) always starts an upload session."""
    reg = registry(request)
    params = request.query_params
    mount, source = params.get("mount"), params.get("from")
    if mount and source:
        digest = parse_digest(mount)
        source_name = parse_name(source)
        readable = await access_service(request).may_mount_from(
            await principal(request),
            source_name,
            Access.repository(name, request.method),
            request_line(request),
        )
        # A source the caller can't read falls back to an upload session, like a missing blob.
        mounted = readable and await reg.blobs.mount(name, digest, source_name)
        if mounted:
            return await quota_warned(request, name, blob_created(name, digest))
    elif params.get("digest") is not None:
        body = Body(request)
        async with body.draining_on_error():
            digest = parse_digest(params["digest"])
            owner = (await principal(request)).key
            await reg.uploads.upload(name, digest, body, content_length(request), owner)
        return await quota_warned(request, name, blob_created(name, digest))
    status = await reg.uploads.start(name, (await principal(request)).key)
    return Response(status_code=202, headers=upload_headers(name, status.id, 0))


def _chunk_range(request: Request) -> tuple[int | None, int | None]:
    """``(start, length)`` from ``Content-Range``, or ``(None, None)`` for a streamed body."""
    header = request.headers.get("content-range")
    if not header:
        return None, None
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if not match:
        raise BlobUploadInvalid("invalid Content-Range", {"content-range": header[:80]})
    start, end = parse_unsigned(match.group(1)), parse_unsigned(match.group(2))
    if start is None or end is None or end < start:
        raise BlobUploadInvalid("invalid Content-Range", {"content-range": header[:80]})
    length = end - start + 1
    declared = content_length(request)
    if declared is not None and declared != length:
        raise SizeInvalid(
            "Content-Length does not match Content-Range",
            {"content-length": declared, "content-range": header[:80]},
        )
    return start, length


@repository_access
async def upload_session(request: Request, name: RepositoryName) -> Response:
    """spec.md "Pushing a blob in chunks" (PATCH), "upload status" (GET), closing the upload
    with ``PUT ?digest=`` (optionally with a last chunk) and cancelling it (DELETE)."""
    reg = registry(request)
    upload_id = request.path_params["upload_id"]
    method = request.method
    if method in ("GET", "HEAD"):
        status = await reg.uploads.status(name, upload_id)
        return Response(status_code=204, headers=upload_headers(name, upload_id, status.size))
    if method == "DELETE":
        await reg.uploads.cancel(name, upload_id)
        return Response(status_code=204)
    body = Body(request)
    async with body.draining_on_error():
        start, length = _chunk_range(request)
        if length is None:
            # A streamed chunk's declared size: one that would pass the limit is refused
            # before anything is read.
            length = content_length(request)
        if method == "PATCH":
            status = await reg.uploads.append(name, upload_id, body, start=start, length=length)
            return Response(status_code=202, headers=upload_headers(name, upload_id, status.size))
        # PUT: close the upload, with an optional last chunk
        raw_digest = request.query_params.get("digest")
        if not raw_digest:
            raise DigestInvalid("the digest query parameter is required")
        digest = parse_digest(raw_digest)
        chunks = None if length == 0 else body  # no Content-Length: a chunked body may follow
        await reg.uploads.finish(name, upload_id, digest, chunks, start=start, length=length)
    return await quota_warned(request, name, blob_created(name, digest))


# -- manifests --------------------------------------------------------------------------------


@repository_access
async def manifest(request: Request, name: RepositoryName) -> Response:
    """spec.md "Pulling manifests" (GET/HEAD), "Pushing manifests" (PUT), "Deleting tags" and
    "Deleting manifests" (DELETE)."""
    reg = registry(request)
    reference = request.path_params["reference"]
    method = request.method
    if method == "PUT":
        body = Body(request)
        async with body.draining_on_error():
            limit = reg.manifests.max_manifest_size
            content = await body.read(
                limit,
                lambda: ManifestTooLarge(
                    f"manifest exceeds the limit of {limit} bytes", limit=limit
                ),
            )
            pushed = await reg.manifests.put(
                name, reference, content, request.headers.get("content-type")
            )
        headers = {
            "Location": f"/v2/{name}/manifests/{pushed.digest}",
            "Docker-Content-Digest": pushed.digest,
            "Content-Length": "0",
        }
        if pushed.subject:
            headers["OCI-Subject"] = pushed.subject
        return await quota_warned(request, name, Response(status_code=201, headers=headers))
    if method == "DELETE":
        ref = parse_reference(reference)
        if is_digest(ref):
            # A version: deleted (restorable) by the package rules.
            if not await packages(request).delete_manifest(
                await principal(request), name, Digest(ref)
            ):
                raise ManifestUnknown(detail={"reference": reference})
        else:
            await reg.manifests.delete(name, reference)
        return Response(status_code=202, headers={"Content-Length": "0"})
    found = await reg.manifests.get(name, reference)
    if found.media_type in mt.INDEXES:
        accept = ",".join(request.headers.getlist("accept"))  # clients may repeat the header
        if not mt.accepts(accept, found.media_type):
            raise ManifestUnknown(
                "the manifest is an index, which the Accept header does not allow",
                {"mediaType": found.media_type, "accept": accept[:300]},
            )
    digest = found.digest.encode()
    raw = [
        (b"content-type", found.media_type.encode()),
        (b"content-length", str(found.size).encode()),
        (b"docker-content-digest", digest),
        (b"etag", b'"' + digest + b'"'),
        (b"x-content-type-options", b"nosniff"),
    ]
    if found.subject:
        raw.append((b"oci-subject", found.subject.encode()))
    if method == "GET":
        reg.downloads.add(name, found.digest)
    return RawResponse(200, raw, b"" if method == "HEAD" else found.content)


# -- listings ---------------------------------------------------------------------------------


@repository_access
async def tags_list(request: Request, name: RepositoryName) -> Response:
    """spec.md "Listing tags": lexical order, ``n`` and ``last``, ``Link`` to the next page."""
    reg = registry(request)
    n = page_size(request, reg.max_page_size)
    last = request.query_params.get("last")
    tags = (await reg.manifests.tags(name, last=last, limit=n + 1))[: n + 1 if n else 0]
    headers = {}
    if len(tags) > n:
        tags = tags[:n]
        headers["Link"] = link_header(f"/v2/{name}/tags/list", n, tags[-1])
    body = json.dumps({"name": name, "tags": tags})
    return Response(body, media_type="application/json", headers=headers)


async def catalog(request: Request) -> Response:
    """The ``/v2/_catalog`` extension: the repositories the caller may pull, paginated like
    tags. A registry token names no repositories for the catalog: what its holder may read is
    what the account behind it may read."""
    reg = registry(request)
    who = dataclasses.replace(await principal(request), registry_grant=None)
    access = access_service(request)
    n = page_size(request, reg.max_page_size)
    last = request.query_params.get("last")
    names: list[RepositoryName] = []
    while n and len(names) <= n:  # only what the caller can read; scan on in batches
        batch = await reg.manifests.catalog(last=last, limit=max(n + 1, 100))
        names += [name for name in batch if await access.can_read(who, name)]
        if len(batch) < max(n + 1, 100):
            break
        last = batch[-1]
    headers = {}
    if len(names) > n:
        names = names[:n]
        headers["Link"] = link_header("/v2/_catalog", n, names[-1])
    body = json.dumps({"repositories": names})
    return Response(body, media_type="application/json", headers=headers)


@repository_access
async def referrers(request: Request, name: RepositoryName) -> Response:
    """spec.md "Listing Referrers": an image index of the manifests whose subject is
    ``{digest}``, filtered by ``artifactType``; an unknown subject gives an empty index."""
    reg = registry(request)
    artifact_type = request.query_params.get("artifactType")
    found = await reg.manifests.referrers(name, request.path_params["digest"], artifact_type)
    manifests = []
    for r in found:
        descriptor: dict[str, object] = {
            "mediaType": r.media_type,
            "digest": r.digest,
            "size": r.size,
        }
        if r.artifact_type:
            descriptor["artifactType"] = r.artifact_type
        if r.annotations:
            descriptor["annotations"] = r.annotations
        manifests.append(descriptor)
    body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests})
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return Response(body, media_type=mt.OCI_INDEX, headers=headers)


ROUTES: dict[str, Route] = {
    "base": Route({"GET"}, base),
    "catalog": Route({"GET"}, catalog),
    "upload_start": Route({"POST"}, upload_start),
    "upload_session": Route({"GET", "PATCH", "PUT", "DELETE"}, upload_session),
    "blob": Route({"GET", "DELETE"}, blob),
    "manifest": Route({"GET", "PUT", "DELETE"}, manifest),
    "tags": Route({"GET"}, tags_list),
    "referrers": Route({"GET"}, referrers),
    "token": Route({"GET", "POST"}, token),
}
