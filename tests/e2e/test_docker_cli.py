"""``docker manifest inspect --insecure`` (the docker CLI without an engine).

The CLI first tries HTTPS; it falls back to plain HTTP only if the TLS handshake fails with
"server gave HTTP response to HTTPS client", i.e. the registry answers a TLS ClientHello on its
plain-HTTP port with a response starting ``HTTP/`` (e.g. ``400 Bad Request``). It prints the
manifest re-indented (not the raw bytes); ``-v`` adds each image's raw manifest (base64).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from clients import Clients
from images import build_image, build_multiarch, describe, layout_contents, layout_manifest

pytestmark = pytest.mark.e2e


def inspect(clients: Clients, ref: str, *flags: str) -> object:
    proc = clients.docker("manifest", "inspect", "--insecure", *flags, ref, check=False)
    assert proc.returncode == 0, describe(proc)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_manifest_inspect_image(
    clients: Clients, registry, repo: str, tmp_path: Path, fmt: str
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1")
    ref = f"{registry.address}/{repo}:v1"
    clients.skopeo(
        "copy", "--dest-tls-verify=false", "--format", fmt, f"oci:{layout}:v1", f"docker://{ref}"
    )
    pushed = clients.skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout

    assert inspect(clients, ref) == json.loads(pushed)


def test_manifest_inspect_multiarch_index(
    clients: Clients, registry, repo: str, tmp_path: Path
) -> None:
    multi = build_multiarch(tmp_path / "src", "multi")
    _, index = layout_manifest(multi.layout, "multi")
    expected = layout_contents(multi.layout, "multi")
    ref = f"{registry.address}/{repo}:multi"
    clients.skopeo(
        "copy", "--all", "--dest-tls-verify=false", f"oci:{multi.layout}:multi", f"docker://{ref}"
    )

    assert inspect(clients, ref) == json.loads(index)
    verbose = inspect(clients, ref, "-v")
    assert isinstance(verbose, list)
    by_digest = {entry["Descriptor"]["digest"]: entry for entry in verbose}
    assert set(by_digest) == set(multi.children.values())
    for arch, child in multi.children.items():
        entry = by_digest[child]
        assert entry["Descriptor"]["platform"]["architecture"] == arch
        assert base64.b64decode(entry["Raw"]) == expected[child]
        assert entry["Ref"] == f"{ref}@{child}"
