"""Manifest parsing and structural validation (image-spec manifest.md, image-index.md,
descriptor.md; Docker Image Manifest V2 Schema 2 and manifest list).

Parsing checks the document alone; whether referenced blobs and manifests exist is the
service's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cargobay.errors import CargobayError, ManifestInvalid
from cargobay.oci import jsondoc
from cargobay.oci import mediatypes as mt
from cargobay.oci.digest import Digest, parse_digest


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, Any] | None = None

    @property
    def foreign(self) -> bool:
        """A layer the registry need not hold: non-distributable, or fetched from ``urls``."""
        return mt.is_non_distributable(self.media_type) or bool(self.urls)


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str]

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @property
    def referrer_artifact_type(self) -> str | None:
        """What the referrers API reports: ``artifactType``, else the config's media type."""
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config else None


def _fail(message: str, **detail: object) -> ManifestInvalid:
    return ManifestInvalid(message, detail or None)


def _string_map(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _fail(f"{where} must be a map of strings")
    return dict(value)


def parse_descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _fail(f"{where} must be a descriptor object")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise _fail(f"{where}.mediaType must be a non-empty string")
    raw_digest = value.get("digest")
    if not isinstance(raw_digest, str):
        raise _fail(f"{where}.digest must be a string")
    try:
        digest = parse_digest(raw_digest)
    except CargobayError as exc:
        raise _fail(f"{where}.digest is invalid: {exc.message}", digest=raw_digest[:200]) from None
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _fail(f"{where}.size must be a non-negative integer")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _fail(f"{where}.urls must be a list of strings")
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _fail(f"{where}.artifactType must be a string")
    platform = value.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise _fail(f"{where}.platform must be an object")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        urls=tuple(urls),
        artifact_type=artifact_type,
        annotations=_string_map(value.get("annotations"), f"{where}.annotations"),
        platform=platform,
    )


def _media_type(doc: dict[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _fail("mediaType must be a string")
    header = (content_type or "").split(";", 1)[0].strip().lower() or None
    if declared and header and declared != header:
        raise _fail(
            "mediaType in the manifest does not match the Content-Type header",
            mediaType=declared,
            contentType=header,
        )
    media_type = declared or header
    if media_type is None:
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED):
        raise _fail("Docker schema 1 manifests are not supported", mediaType=media_type)
    if media_type not in mt.MANIFESTS:
        raise _fail("unsupported manifest media type", mediaType=media_type)
    return media_type


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Parse and validate a manifest or index as pushed. Raises ManifestInvalid, also for a
    document nested too deep or with a key twice in one object (see :mod:`jsondoc`)."""
    try:
        doc = jsondoc.loads(body)
    except jsondoc.JSONRejected as exc:
        raise _fail(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _fail("manifest must be a JSON object")
    if doc.get("schemaVersion") != 2:
        raise _fail("schemaVersion must be 2", schemaVersion=doc.get("schemaVersion"))
    media_type = _media_type(doc, content_type)
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _fail("artifactType must be a string")
    subject = parse_descriptor(doc["subject"], "subject") if doc.get("subject") else None
    annotations = _string_map(doc.get("annotations"), "annotations")

    if media_type in mt.INDEXES:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise _fail("an index must have a manifests list")
        return ParsedManifest(
            media_type=media_type,
            config=None,
            layers=(),
            manifests=tuple(parse_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )

    if "manifests" in doc:
        raise _fail("an image manifest must not have a manifests list")
    config = parse_descriptor(doc.get("config"), "config")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise _fail("layers must be a list")
    if media_type == mt.DOCKER_MANIFEST and (subject or artifact_type):
        raise _fail("Docker manifests cannot carry subject or artifactType")
    return ParsedManifest(
        media_type=media_type,
        config=config,
        layers=tuple(parse_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)),
        manifests=(),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
