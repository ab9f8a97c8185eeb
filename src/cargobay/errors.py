"""Domain errors. They carry no HTTP: the API layers map them to their own error tables."""

from __future__ import annotations


class CargobayError(Exception):
    """Base of every domain error. ``detail`` is optional structured context for the client."""

    def __init__(self, message: str = "", detail: object = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        self.message = message or (self.__class__.__doc__ or self.__class__.__name__).strip()
        self.detail = detail


class NameInvalid(CargobayError):
    """invalid repository name"""


class NameUnknown(CargobayError):
    """repository name not known to registry"""


class DigestInvalid(CargobayError):
    """provided digest did not match uploaded content"""


class Unsupported(CargobayError):
    """the operation is unsupported"""


class BlobUnknown(CargobayError):
    """blob unknown to registry"""


class BlobUploadUnknown(CargobayError):
    """blob upload unknown to registry"""


class BlobUploadInvalid(CargobayError):
    """blob upload invalid"""


class UploadOffsetMismatch(CargobayError):
    """the chunk does not start where the upload ends"""

    def __init__(self, message: str = "", *, size: int) -> None:
        super().__init__(message, {"size": size})
        self.size = size


class RangeInvalid(CargobayError):
    """the requested range cannot be satisfied"""

    def __init__(self, message: str = "", *, size: int) -> None:
        super().__init__(message, {"size": size})
        self.size = size


class SizeInvalid(CargobayError):
    """provided length did not match content length"""


class TooLarge(CargobayError):
    """content exceeds the configured size limit"""

    def __init__(self, message: str = "", *, limit: int) -> None:
        super().__init__(message, {"limit": limit})
        self.limit = limit


class ManifestInvalid(CargobayError):
    """manifest invalid"""


class ManifestTooLarge(TooLarge):
    """manifest exceeds the configured size limit"""


class ManifestBlobUnknown(CargobayError):
    """manifest references a manifest or blob unknown to registry"""


class ManifestUnknown(CargobayError):
    """manifest unknown to registry"""


class ManifestChildUnknown(ManifestUnknown):
    """an index references a manifest unknown to the repository"""


class TagInvalid(CargobayError):
    """invalid tag"""


class PaginationInvalid(CargobayError):
    """invalid number of results requested"""


class AlreadyExists(CargobayError):
    """the name is already taken"""


class NotFound(CargobayError):
    """not found"""


class Conflict(CargobayError):
    """the request conflicts with the current state"""


class VersionInUse(Conflict):
    """the version is referenced by an index that is not deleted"""


class TagImmutable(Conflict):
    """the tag is immutable"""


class DeletionRefused(CargobayError):
    """this package can't be deleted"""


class TooManyRequests(CargobayError):
    """too many failed attempts; try again later"""


class Unauthenticated(CargobayError):
    """authentication required"""

    def __init__(self, message: str = "", detail: object = None, *, challenge: str = "") -> None:
        super().__init__(message, detail)
        #: A ``WWW-Authenticate`` value telling the client how to sign in.
        self.challenge = challenge


class TokenExpired(Unauthenticated):
    """the registry token has expired"""

    def __init__(self, message: str = "", *, token: str, challenge: str = "") -> None:
        super().__init__(message, challenge=challenge)
        #: The expired token's id (its ``jti``): a genuine token, only too old.
        self.token = token


class Denied(CargobayError):
    """requested access to the resource is denied"""

    def __init__(self, message: str = "", detail: object = None, *, challenge: str = "") -> None:
        super().__init__(message, detail)
        self.challenge = challenge


def format_bytes(n: int) -> str:
    """A size as docker prints it (decimal units): ``9.5 GB``, ``800 MB``, ``512 B``."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            if unit == "B":
                return f"{n} B"
            digits = 0 if value >= 100 else 1 if value >= 10 else 2  # 3 significant digits
            text = f"{value:.{digits}f}"
            return f"{text.rstrip('0').rstrip('.') if digits else text} {unit}"
        value /= 1000
    return f"{n} B"


class QuotaExceeded(Denied):
    """the namespace's storage quota does not allow this push"""

    def __init__(self, namespace: str, *, used: int, limit: int, adds: int) -> None:
        super().__init__(
            f"storage quota exceeded: namespace {namespace} uses {format_bytes(used)} of its"
            f" {format_bytes(limit)} quota; this push adds {format_bytes(adds)}",
            {"namespace": namespace, "used": used, "quota": limit, "adds": adds},
        )
        self.namespace = namespace
        self.used = used
        self.limit = limit
        self.adds = adds


class Unavailable(CargobayError):
    """a backing service is unavailable"""


class InsufficientStorage(CargobayError):
    """the registry is out of storage"""

    def __init__(self, message: str = "", *, where: str = "") -> None:
        super().__init__(message)
        #: For the operator's log, never for clients: which store, and how much is left.
        self.where = where


class TooManyUploads(TooManyRequests):
    """too many open upload sessions; finish or cancel some first"""

    def __init__(self, message: str = "", *, limit: int, retry_after: int) -> None:
        super().__init__(message, {"limit": limit})
        self.limit = limit
        #: Seconds until an idle session of this principal may have expired.
        self.retry_after = retry_after
