"""Where an S3 store keeps things, and the state object of an upload session.

Layout under the store's prefix::

    blobs/<algorithm>/<encoded>          verified blobs, written once
    uploads/<id>/state                   JSON: UploadState (the session exists iff this does)
    uploads/<id>/data                    the S3 multipart upload's key (an object once completed)
    uploads/<id>/tail/<random>           tail segments: bytes not yet in a part (< 5 MiB in all)

The state object is the one commit point of a session: a request writes parts and tail segments
first (tail segments under fresh names, so nothing a concurrent request wrote is overwritten),
then replaces the state object with ``If-Match`` on the ETag it read. A state object that never
got written leaves nothing but unreferenced parts and segments, removed with the session.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from cargobay.oci.digest import Digest, algorithm_of, encoded_of

#: S3's smallest part (every part but the last).
MIN_PART = 5 * 1024 * 1024
#: S3's largest number of parts in one multipart upload.
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class Keys:
    """Object keys under ``prefix`` (empty, or ending with ``/``)."""

    prefix: str

    @property
    def blobs(self) -> str:
        return f"{self.prefix}blobs/"

    @property
    def uploads(self) -> str:
        return f"{self.prefix}uploads/"

    def blob(self, digest: Digest) -> str:
        return f"{self.prefix}blobs/{algorithm_of(digest)}/{encoded_of(digest)}"

    def upload(self, upload_id: str) -> str:
        """The prefix of everything a session owns."""
        return f"{self.prefix}uploads/{upload_id}/"

    def state(self, upload_id: str) -> str:
        return f"{self.prefix}uploads/{upload_id}/state"

    def data(self, upload_id: str) -> str:
        return f"{self.prefix}uploads/{upload_id}/data"

    def segment(self, upload_id: str, name: str) -> str:
        return f"{self.prefix}uploads/{upload_id}/tail/{name}"


@dataclass(slots=True)
class UploadState:
    """What a session has received: ``parts`` (ETag, size) of the multipart upload, numbered
    from 1, followed by the tail ``segments`` (name, size); ``size`` is their total.

    ``hash`` is the saved SHA-256 state (:mod:`cargobay.storage.hashing`) after ``size`` bytes, or
    None when the digest has to be computed by reading the content back. ``sealed``: the
    multipart upload was completed into the ``data`` object and nothing can be appended any
    more; the upload's bytes are the ``ranges`` (start, length) of that object, in order (empty:
    all of it). Ranges leave out parts that failed requests uploaded and S3 made part of it.
    """

    size: int = 0
    parts: list[tuple[str, int]] = field(default_factory=list)
    segments: list[tuple[str, int]] = field(default_factory=list)
    hash: bytes | None = None
    multipart: str | None = None
    sealed: bool = False
    ranges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def tail_size(self) -> int:
        return sum(size for _, size in self.segments)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "version": 1,
                "size": self.size,
                "parts": self.parts,
                "segments": self.segments,
                "hash": None if self.hash is None else base64.b64encode(self.hash).decode(),
                "multipart": self.multipart,
                "sealed": self.sealed,
                "ranges": self.ranges,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> UploadState:
        """Raises ValueError on anything but a state this module wrote."""
        try:
            doc = json.loads(raw)
            if doc.get("version") != 1:
                raise ValueError("unknown upload state version")
            state = cls(
                size=int(doc["size"]),
                parts=[(str(etag), int(size)) for etag, size in doc["parts"]],
                segments=[(str(name), int(size)) for name, size in doc["segments"]],
                hash=None if doc["hash"] is None else base64.b64decode(doc["hash"]),
                multipart=doc["multipart"],
                sealed=bool(doc["sealed"]),
                ranges=[(int(start), int(length)) for start, length in doc.get("ranges", [])],
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"malformed upload state: {e}") from None
        if not state.sealed and state.size != sum(s for _, s in state.parts) + state.tail_size:
            raise ValueError("upload state sizes do not add up")
        return state
