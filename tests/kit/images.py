"""Image builders: random layers, configs, OCI and Docker image manifests and indexes, as bytes
ready to push (no daemon, no external tool). Every config carries a random nonce label and every
layer is random, so each built image is one the registry has never seen."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.digests import digest_of
from kit.media import IMAGE_PARTS, INDEX_OF, OCI_MANIFEST


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def encode(document: Mapping[str, Any]) -> bytes:
    """A manifest's bytes as a client might write them (indented): the registry must keep them."""
    return json.dumps(document, indent=2).encode()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def config(
    platform: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None
) -> bytes:
    """An image config for ``platform`` (default linux/amd64; ``{}`` for a config that declares
    none) with ``labels`` and a nonce label."""
    document: dict[str, Any] = dict(
        {"architecture": "amd64", "os": "linux"} if platform is None else platform
    )
    document["rootfs"] = {"type": "layers", "diff_ids": []}
    document["config"] = {"Labels": {"nonce": os.urandom(8).hex(), **(labels or {})}}
    return json.dumps(document).encode()


@dataclass(frozen=True)
class Image:
    """A manifest (an image's or an index's) and the blobs it needs (``{digest: bytes}``)."""

    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """This manifest as an index entry or a ``subject`` (``platform=...``, ...)."""
        return descriptor(self.media_type, self.manifest, **extra)

    def on(self, os_name: str, architecture: str, variant: str = "") -> dict[str, Any]:
        """This manifest as an index entry for the platform ``os_name/architecture``."""
        platform = {"os": os_name, "architecture": architecture}
        if variant:
            platform["variant"] = variant
        return self.descriptor(platform=platform)


def image(
    *,
    layers: int = 1,
    layer_size: int = 64,
    media_type: str = OCI_MANIFEST,
    platform: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    subject: Image | None = None,
    artifact_type: str | None = None,
) -> Image:
    """An image of ``layers`` random layers: an OCI manifest, or a Docker one with
    ``media_type=DOCKER_MANIFEST`` (then without annotations, subject or artifact type)."""
    config_type, layer_type = IMAGE_PARTS[media_type]
    config_blob = config(platform, labels)
    layer_blobs = [random_bytes(layer_size) for _ in range(layers)]
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type, config_blob),
        "layers": [descriptor(layer_type, blob) for blob in layer_blobs],
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = dict(annotations)
    if subject is not None:
        document["subject"] = subject.descriptor()
    blobs = {digest_of(blob): blob for blob in [config_blob, *layer_blobs]}
    return Image(encode(document), media_type, blobs)


def index(
    children: Sequence[Mapping[str, Any]],
    *,
    media_type: str = INDEX_OF[OCI_MANIFEST],
    annotations: Mapping[str, str] | None = None,
) -> Image:
    """An index over ``children`` (descriptors, e.g. ``child.on("linux", "arm64")``); push the
    children first."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [dict(c) for c in children],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return Image(encode(document), media_type)
