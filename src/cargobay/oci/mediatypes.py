"""Media types the registry understands (image-spec media-types.md, Docker v2 schema 2)."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFESTS = IMAGE_MANIFESTS | INDEXES


def is_non_distributable(media_type: str) -> bool:
    """Foreign / non-distributable layers may be referenced without their blob being pushed."""
    return media_type == DOCKER_FOREIGN_LAYER or ".nondistributable." in media_type


def accepts(accept_header: str | None, media_type: str) -> bool:
    """Whether an ``Accept`` header admits ``media_type``. No header admits everything."""
    if not accept_header:
        return True
    for part in accept_header.split(","):
        candidate = part.split(";", 1)[0].strip().lower()
        if candidate in (media_type, "*/*", "application/*", ""):
            return True
    return False
