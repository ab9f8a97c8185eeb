"""Helpers for the ``cargobay fsck`` and ``cargobay backup`` tests: push small images over raw
HTTP, pull them back byte for byte, and run the operator commands with a server's settings."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from images import OCI_MANIFEST
from kit import descriptor, digest_of, explain
from kit.postgres import fresh_database
from registry_http import canonical, put_manifest, upload_blob

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class Image:
    repo: str
    tag: str
    manifest: bytes
    #: Config and layers: digest -> bytes.
    blobs: dict[str, bytes]

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    def layers(self) -> list[str]:
        return [d["digest"] for d in json.loads(self.manifest)["layers"]]


def push_image(
    http: httpx.Client, repo: str, tag: str, base: bytes, size: int = 64 * 1024
) -> Image:
    """An image of a shared ``base`` layer and a layer of random bytes of its own."""
    config = canonical({"architecture": "amd64", "os": "linux", "tag": tag})
    own = secrets.token_bytes(size)
    blobs = {digest_of(data): data for data in (config, base, own)}
    for data in blobs.values():
        upload_blob(http, repo, data)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(LAYER, base), descriptor(LAYER, own)],
        }
    )
    put_manifest(http, repo, tag, manifest)
    return Image(repo, tag, manifest, blobs)


def pull_problems(http: httpx.Client, image: Image) -> list[str]:
    """What differs when ``image`` is pulled by tag: empty when it pulls byte for byte."""
    r = http.get(f"/v2/{image.repo}/manifests/{image.tag}", headers={"Accept": OCI_MANIFEST})
    if r.status_code != 200 or r.content != image.manifest:
        return [f"manifest {image.repo}:{image.tag}: {explain(r)}"]
    problems = []
    for digest, data in image.blobs.items():
        r = http.get(f"/v2/{image.repo}/blobs/{digest}", follow_redirects=True)
        if r.status_code != 200 or r.content != data:
            problems.append(f"blob {digest} of {image.repo}:{image.tag}: {r.status_code}")
    return problems


def run_cargobay(
    data_dir: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``cargobay ARGS --data-dir DATA_DIR`` with the settings ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "cargobay", *args, "--data-dir", str(data_dir)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cargobay(server: Any, *args: str) -> tuple[int, str]:
    """Run ``cargobay ARGS`` with ``server``'s data dir and settings: (exit status, stdout)."""
    done = run_cargobay(server.data_dir, server.env, *args)
    assert done.returncode in (0, 1), f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.returncode, done.stdout


def fsck(server: Any, *args: str) -> tuple[int, dict[str, Any]]:
    code, out = cargobay(server, "fsck", "--json", *args)
    return code, json.loads(out)


def blob_file(data_dir: Path, digest: str) -> Path:
    algorithm, encoded = digest.split(":", 1)
    return data_dir / "blobs" / algorithm / encoded[:2] / encoded


@contextlib.contextmanager
def fresh_postgres(scratch: Path) -> Iterator[str]:
    """A new database on the machine's PostgreSQL, migrated; its URL; dropped afterwards."""
    with fresh_database("cargobay_fsck") as url:
        done = subprocess.run(
            [sys.executable, "-m", "cargobay", "migrate", "--data-dir", str(scratch)],
            env={**os.environ, "CARGOBAY_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        yield url
