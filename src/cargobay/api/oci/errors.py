"""The OCI error table: every domain error's code and status, rendered in one place.

distribution-spec, "Error Codes": ``{"errors": [{"code", "message", "detail"}]}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cargobay import errors

#: domain error -> (OCI code, HTTP status). Looked up along the exception's MRO.
ERROR_TABLE: dict[type[errors.CargobayError], tuple[str, int]] = {
    errors.NameInvalid: ("NAME_INVALID", 400),
    errors.NameUnknown: ("NAME_UNKNOWN", 404),
    errors.DigestInvalid: ("DIGEST_INVALID", 400),
    errors.Unsupported: ("UNSUPPORTED", 400),
    errors.BlobUnknown: ("BLOB_UNKNOWN", 404),
    errors.BlobUploadUnknown: ("BLOB_UPLOAD_UNKNOWN", 404),
    errors.BlobUploadInvalid: ("BLOB_UPLOAD_INVALID", 400),
    errors.UploadOffsetMismatch: ("RANGE_INVALID", 416),
    errors.RangeInvalid: ("RANGE_INVALID", 416),
    errors.SizeInvalid: ("SIZE_INVALID", 400),
    errors.TooLarge: ("SIZE_INVALID", 413),
    errors.ManifestInvalid: ("MANIFEST_INVALID", 400),
    errors.ManifestBlobUnknown: ("MANIFEST_BLOB_UNKNOWN", 400),
    errors.ManifestChildUnknown: ("MANIFEST_UNKNOWN", 400),
    errors.ManifestUnknown: ("MANIFEST_UNKNOWN", 404),
    errors.TagInvalid: ("TAG_INVALID", 400),
    errors.PaginationInvalid: ("PAGINATION_NUMBER_INVALID", 400),
    errors.Conflict: ("DENIED", 409),
    errors.DeletionRefused: ("DENIED", 403),
    errors.Unauthenticated: ("UNAUTHORIZED", 401),
    errors.Denied: ("DENIED", 403),
    errors.Unavailable: ("UNAVAILABLE", 503),
    errors.InsufficientStorage: ("UNKNOWN", 507),  # no OCI code fits; the message says it
    errors.TooManyRequests: ("TOOMANYREQUESTS", 429),
}

log = logging.getLogger("cargobay.storage")


def log_out_of_storage(exc: errors.InsufficientStorage) -> None:
    """The one log line of a request refused for lack of space: which store, what is left."""
    log.error("request refused, out of storage: %s", exc.where or exc.message)


API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


def lookup(exc: errors.CargobayError) -> tuple[str, int]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return ("UNKNOWN", 500)


def error_response(
    code: str, status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]})
    all_headers = {API_VERSION_HEADER[0]: API_VERSION_HEADER[1], **(headers or {})}
    return Response(body, status_code=status, media_type="application/json", headers=all_headers)


def _extra_headers(exc: errors.CargobayError) -> dict[str, str]:
    if isinstance(exc, errors.UploadOffsetMismatch):
        return {"Range": f"0-{max(exc.size - 1, 0)}"}
    if isinstance(exc, errors.RangeInvalid):
        return {"Content-Range": f"bytes */{exc.size}"}
    if isinstance(exc, errors.Unavailable):
        return {"Retry-After": "5"}
    if isinstance(exc, errors.TooManyUploads):
        return {"Retry-After": str(exc.retry_after)}
    return {}


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.CargobayError)
    if isinstance(exc, errors.InsufficientStorage):
        log_out_of_storage(exc)
    code, status = lookup(exc)
    headers = _extra_headers(exc)
    challenge = getattr(exc, "challenge", None)
    if challenge:
        headers["WWW-Authenticate"] = challenge
    return error_response(code, status, exc.message, exc.detail, headers)
