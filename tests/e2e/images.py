"""Build small test images without a daemon, and read them back from disk.

Images are built with ``umoci`` into an OCI image layout (a directory with ``index.json``,
``oci-layout`` and ``blobs/sha256/<hex>``); ``skopeo`` turns them into whatever the tests need
(Docker v2s2, multi-arch lists). Layer contents are random so every test run pushes blobs the
registry has never seen.

Pulled images are compared against what was pushed through :class:`PulledDir` (skopeo's
``dir:`` transport, which keeps the manifest bytes as served) or :func:`layout_manifest`
(an OCI layout written by ``skopeo copy ... oci:DIR:TAG``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import secrets
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)

DEFAULT_TIMEOUT = 120


class CommandFailed(AssertionError):
    """A client command exited non-zero; the message carries its full output."""


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with captured output; raise :class:`CommandFailed` (with output) if asked."""
    args = [str(a) for a in cmd]
    proc = subprocess.run(
        args,
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=timeout,
        check=False,
        input=input.decode() if input is not None else None,
        text=True,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(describe(proc))
    return proc


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """One readable block for an assertion message: command, exit code, stdout, stderr."""
    return (
        f"$ {' '.join(proc.args)}\nexit code {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def random_bytes(size: int) -> bytes:
    return secrets.token_bytes(size)


# --- OCI image layouts ----------------------------------------------------------------------


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hex_ = digest.partition(":")
    return layout / "blobs" / algo / hex_


def read_blob(layout: Path, digest: str) -> bytes:
    data = blob_path(layout, digest).read_bytes()
    assert digest_of(data) == digest, f"{layout}: blob file {digest} has other content"
    return data


def layout_index(layout: Path) -> dict[str, Any]:
    return json.loads((layout / "index.json").read_text())  # type: ignore[no-any-return]


def layout_descriptor(layout: Path, tag: str) -> dict[str, Any]:
    """The ``index.json`` descriptor whose ``org.opencontainers.image.ref.name`` is ``tag``."""
    for desc in layout_index(layout)["manifests"]:
        if (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag:
            return desc  # type: ignore[no-any-return]
    raise KeyError(f"{layout}: no manifest tagged {tag!r}")


def layout_manifest(layout: Path, tag: str) -> tuple[str, bytes]:
    """``(digest, raw bytes)`` of the manifest (or index) tagged ``tag`` in an OCI layout."""
    digest = layout_descriptor(layout, tag)["digest"]
    return digest, read_blob(layout, digest)


def referenced_blobs(manifest: bytes) -> list[str]:
    """Digests of the config and layers of an image manifest (not of an index)."""
    doc = json.loads(manifest)
    digests = [doc["config"]["digest"]] if "config" in doc else []
    return digests + [layer["digest"] for layer in doc.get("layers", [])]


def child_manifests(index: bytes) -> list[dict[str, Any]]:
    return list(json.loads(index).get("manifests", []))


def layout_contents(layout: Path, tag: str) -> dict[str, bytes]:
    """Every manifest and blob reachable from ``tag``: ``{digest: bytes}`` (digests verified)."""
    top, _ = layout_manifest(layout, tag)
    out: dict[str, bytes] = {}
    pending = [top]
    while pending:
        digest = pending.pop()
        data = read_blob(layout, digest)
        out[digest] = data
        doc = json.loads(data) if digest == top or _looks_like_manifest(data) else None
        if doc is None:
            continue
        if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            pending += [m["digest"] for m in doc["manifests"]]
        else:
            for blob in referenced_blobs(data):
                out[blob] = read_blob(layout, blob)
    return out


def _looks_like_manifest(data: bytes) -> bool:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("schemaVersion") == 2


def _umoci(*args: str | os.PathLike[str]) -> None:
    run(["umoci", *args], timeout=60)


def build_image(
    layout: Path,
    tag: str,
    *,
    arch: str = "amd64",
    labels: Mapping[str, str] | None = None,
    files: Mapping[str, bytes] | None = None,
    layer_size: int = 16 * 1024,
) -> str:
    """Build a one-layer linux image tagged ``tag`` into ``layout``; return its manifest digest.

    The layer holds ``files`` (path -> bytes) plus ``/data/random.bin`` with ``layer_size``
    random bytes, so the layer is unique to this call.
    """
    if not (layout / "index.json").exists():
        _umoci("init", "--layout", layout)
    image = f"{layout}:{tag}"
    _umoci("new", "--image", image)
    rootfs = layout.parent / f".rootfs-{tag}-{secrets.token_hex(4)}"
    contents = {"data/random.bin": random_bytes(layer_size), **(files or {})}
    for path, data in contents.items():
        target = rootfs / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    _umoci("insert", "--image", image, rootfs, "/")
    config_args: list[str] = ["--os", "linux", "--architecture", arch]
    for key, value in (labels or {}).items():
        config_args += ["--config.label", f"{key}={value}"]
    _umoci("config", "--image", image, *config_args)
    _umoci("gc", "--layout", layout)
    return str(layout_descriptor(layout, tag)["digest"])


def write_blob(layout: Path, data: bytes) -> str:
    digest = digest_of(data)
    path = blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def tag_in_layout(layout: Path, tag: str, descriptor: Mapping[str, Any]) -> None:
    """Point ``tag`` in ``index.json`` at ``descriptor`` (replacing an older entry)."""
    index = layout_index(layout)
    ref = "org.opencontainers.image.ref.name"
    index["manifests"] = [
        d for d in index["manifests"] if (d.get("annotations") or {}).get(ref) != tag
    ]
    index["manifests"].append({**descriptor, "annotations": {ref: tag}})
    (layout / "index.json").write_text(json.dumps(index))


@dataclass(frozen=True)
class MultiArch:
    """A two-platform OCI index tagged ``tag`` in ``layout``."""

    layout: Path
    tag: str
    digest: str
    children: dict[str, str]  # architecture -> manifest digest


def build_multiarch(
    layout: Path, tag: str, arches: Sequence[str] = ("amd64", "arm64")
) -> MultiArch:
    """Build one image per architecture and an OCI image index over them, tagged ``tag``."""
    children: dict[str, str] = {}
    descriptors = []
    for arch in arches:
        child_tag = f"{tag}-{arch}"
        digest = build_image(
            layout,
            child_tag,
            arch=arch,
            labels={"cargobay.test.arch": arch},
            files={f"etc/arch-{arch}": arch.encode()},
        )
        desc = layout_descriptor(layout, child_tag)
        children[arch] = digest
        descriptors.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": desc["size"],
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors},
        separators=(",", ":"),
    ).encode()
    digest = write_blob(layout, index)
    tag_in_layout(layout, tag, {"mediaType": OCI_INDEX, "digest": digest, "size": len(index)})
    return MultiArch(layout, tag, digest, children)


# --- skopeo dir: copies ---------------------------------------------------------------------


@dataclass(frozen=True)
class PulledDir:
    """What ``skopeo copy [--all] docker://... dir:PATH`` wrote: raw manifests and blobs."""

    path: Path

    def manifest(self, instance: str | None = None) -> bytes:
        """The top manifest, or (for ``--all`` copies) the child manifest ``instance``."""
        name = "manifest.json" if instance is None else f"{instance.split(':', 1)[1]}.manifest.json"
        return (self.path / name).read_bytes()

    def blob(self, digest: str) -> bytes:
        data = (self.path / digest.split(":", 1)[1]).read_bytes()
        assert digest_of(data) == digest, f"{self.path}: blob {digest} has other content"
        return data


def assert_same_image(pulled: PulledDir, manifest: bytes, blobs: Mapping[str, bytes]) -> None:
    """``pulled`` holds exactly ``manifest`` and, byte for byte, every blob it references."""
    got = pulled.manifest()
    assert digest_of(got) == digest_of(manifest), (
        f"pulled manifest differs from the pushed one:\npushed {manifest!r}\npulled {got!r}"
    )
    for digest in referenced_blobs(manifest):
        assert pulled.blob(digest) == blobs[digest], f"blob {digest} differs"


def layer_files(layer: bytes) -> dict[str, bytes]:
    """Regular files of a (gzip-compressed or plain) tar layer: ``{path: bytes}``."""
    if layer[:2] == b"\x1f\x8b":
        layer = gzip.decompress(layer)
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                out[member.name.lstrip("./")] = extracted.read()
    return out
