"""Package metadata from ``org.opencontainers.image.*`` labels and annotations
(image-spec annotations.md): where the source lives, what it is, under which license.

Pure functions: the caller gathers the layers of metadata (index annotations, manifest
annotations, image config labels) and passes them most important first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cargobay.oci import jsondoc

SOURCE = "org.opencontainers.image.source"
DESCRIPTION = "org.opencontainers.image.description"
LICENSES = "org.opencontainers.image.licenses"

#: Longest description and license expression kept; longer values are cut.
MAX_DESCRIPTION = 512
MAX_LICENSES = 256
MAX_SOURCE = 2048


@dataclass(frozen=True, slots=True)
class PackageMetadata:
    source: str | None = None
    description: str | None = None
    licenses: str | None = None


def _first(key: str, layers: tuple[Mapping[str, str] | None, ...], limit: int) -> str | None:
    for layer in layers:
        if not layer:
            continue
        value = layer.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:limit]
    return None


def package_metadata(*layers: Mapping[str, str] | None) -> PackageMetadata:
    """Each field from the first layer that has it: pass index annotations first (they win for
    a multi-arch image), then manifest annotations, then the image config's labels."""
    return PackageMetadata(
        source=_first(SOURCE, layers, MAX_SOURCE),
        description=_first(DESCRIPTION, layers, MAX_DESCRIPTION),
        licenses=_first(LICENSES, layers, MAX_LICENSES),
    )


def config_labels(config: bytes) -> dict[str, str]:
    """The labels of an OCI or Docker image config (``config.Labels``); {} if there are none
    or the document is not an image config."""
    try:
        doc = jsondoc.loads(config)
    except jsondoc.JSONRejected:
        return {}
    inner = doc.get("config") if isinstance(doc, dict) else None
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    if not isinstance(labels, dict):
        return {}
    return {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}


#: Annotation docker buildx puts on the index entries of attestation manifests.
REFERENCE_TYPE = "vnd.docker.reference.type"
ATTESTATION = "attestation-manifest"


def platform_string(platform: Mapping[str, object] | None) -> str | None:
    """``os/architecture[/variant]`` of an image-spec ``platform`` object (or an image config,
    which has the same keys), or None when it doesn't say."""
    if not platform:
        return None
    os_name, arch = platform.get("os"), platform.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        return None
    variant = platform.get("variant")
    value = f"{os_name}/{arch}" + (f"/{variant}" if isinstance(variant, str) and variant else "")
    return value[:64]


def config_platform(config: bytes) -> str | None:
    """The platform an image config declares."""
    try:
        doc = jsondoc.loads(config)
    except jsondoc.JSONRejected:
        return None
    return platform_string(doc) if isinstance(doc, dict) else None
