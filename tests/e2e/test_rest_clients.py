"""Real clients of the GitHub-compatible REST API (``/api/v3``), checked against ``/v2``.

* GitHub's own client, ``@octokit/rest`` (Node), with nothing changed but ``baseUrl``: lists,
  reads, deletes and restores packages and versions (``tests/e2e/octokit/rest.mjs``);
* skopeo pushes a two-platform OCI index, the REST API shows it (description, versions,
  platforms, sizes), deletes and restores it, and skopeo pulls it back byte for byte.

The npm dependencies are installed once with ``npm ci`` into ``tests/e2e/octokit/node_modules``
and kept across runs (reinstalled when ``package-lock.json`` changes); the octokit test is
skipped, saying why, only when node/npm are missing or npm cannot reach its registry.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import secrets
import select
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE, Clients
from images import (
    OCI_INDEX,
    OCI_MANIFEST,
    describe,
    layout_contents,
    layout_manifest,
    read_blob,
    tag_in_layout,
    write_blob,
)
from kit import descriptor, digest_of, explain
from registry_http import put_manifest, upload_blob

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no REST API"),
]

OCTOKIT_DIR = Path(__file__).parent / "octokit"
OCTOKIT_SCRIPT = OCTOKIT_DIR / "rest.mjs"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DESCRIPTION = "org.opencontainers.image.description"
ALL_MANIFESTS = f"{OCI_INDEX}, {OCI_MANIFEST}"
#: What npm prints when it cannot reach its registry (then the octokit test is skipped).
NPM_OFFLINE = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ERR_SOCKET_TIMEOUT",
    "network request",
    "request to https://",
)


# -- @octokit/rest --------------------------------------------------------------------------------


def _install_stamp() -> str:
    lock = (OCTOKIT_DIR / "package-lock.json").read_bytes()
    return hashlib.sha256(lock + (OCTOKIT_DIR / "package.json").read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def octokit_installed() -> Path:
    """``npm ci`` in ``tests/e2e/octokit`` unless ``node_modules`` already holds exactly what
    ``package-lock.json`` says (a stamp file records it); serialized between concurrent runs."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: needed to run @octokit/rest")
    stamp = OCTOKIT_DIR / "node_modules" / ".cargobay-installed"
    wanted = _install_stamp()
    key = hashlib.sha256(str(OCTOKIT_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"cargobay-octokit-{key}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == wanted:
            return OCTOKIT_DIR
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=OCTOKIT_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            output = done.stdout + done.stderr
            if any(sign in output for sign in NPM_OFFLINE):
                pytest.skip(f"npm could not reach its registry to install @octokit/rest:\n{output}")
            raise AssertionError(f"npm ci in {OCTOKIT_DIR} failed:\n{describe(done)}")
        stamp.write_text(wanted)
    return OCTOKIT_DIR


class Octokit:
    """``tests/e2e/octokit/rest.mjs`` in a running ``node``: one JSON line per request."""

    def __init__(self, base_url: str, token: str, log: Path) -> None:
        self.log = log
        self._stderr = log.open("w")
        self.process = subprocess.Popen(
            ["node", str(OCTOKIT_SCRIPT)],
            cwd=OCTOKIT_DIR,
            env={**os.environ, "OCTOKIT_BASE_URL": base_url, "OCTOKIT_TOKEN": token},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], 60)
        line = stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"octokit gave no answer to {request}:\n{self.log.read_text()}")
        answer: dict[str, Any] = json.loads(line)
        if answer["status"] == 0:  # not an HTTP error: a bug in the script or a failed request
            raise AssertionError(f"octokit failed on {request}: {answer['error']}")
        return answer

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """``octokit.rest.<method>(params)``: ``{"status", "data", "link"}`` (or ``"error"``)."""
        return self._ask({"call": method, "params": params})

    def ok(self, method: str, status: int = 200, **params: Any) -> Any:
        """The data of a call that must answer ``status``."""
        answer = self.call(method, **params)
        assert answer["status"] == status, (method, params, answer)
        return answer.get("data")

    def paginate(self, method: str, **params: Any) -> list[Any]:
        """Every page ``octokit.paginate.iterator`` fetched, following ``Link: rel="next"``."""
        answer = self._ask({"paginate": method, "params": params})
        assert answer["status"] == 200, (method, params, answer)
        pages: list[Any] = answer["pages"]
        return pages

    def request(self, route: str, **params: Any) -> dict[str, Any]:
        return self._ask({"request": route, "params": params})

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


@pytest.fixture
def octokit(octokit_installed: Path, registry: Any, tmp_path: Path) -> Iterator[Octokit]:
    client = Octokit(f"{registry.url}/api/v3", registry.token, tmp_path / "octokit.log")
    yield client
    client.close()


def push_image(http: httpx.Client, repo: str, tag: str) -> tuple[str, bytes]:
    """Push a small one-layer OCI image (unique content) tagged ``tag``; ``(digest, bytes)``."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": secrets.token_hex(8)})
    layer = secrets.token_bytes(512)
    upload_blob(http, repo, config.encode())
    upload_blob(http, repo, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config.encode()),
            "layers": [descriptor(OCI_LAYER, layer)],
        },
        separators=(",", ":"),
    ).encode()
    r = put_manifest(http, repo, tag, manifest)
    return r.headers["docker-content-digest"], manifest


def pull(http: httpx.Client, repo: str, reference: str) -> httpx.Response:
    return http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": ALL_MANIFESTS})


def test_octokit_lists_reads_deletes_and_restores_packages(
    octokit: Octokit, registry: Any, http: httpx.Client
) -> None:
    org = f"octokit-{secrets.token_hex(4)}"
    created = octokit.request("POST /admin/organizations", login=org, admin=registry.user)
    assert created["status"] == 201, created
    name = "team/app"  # a package name with a slash: octokit sends it as team%2Fapp
    repo = f"{org}/{name}"
    pushed = {tag: push_image(http, repo, tag) for tag in ("v1", "v2", "v3")}  # oldest first
    digests = {tag: digest for tag, (digest, _) in pushed.items()}
    manifests = {tag: manifest for tag, (_, manifest) in pushed.items()}
    mine = f"octokit-{secrets.token_hex(4)}"
    push_image(http, f"{registry.user}/{mine}", "latest")
    where = {"package_type": "container", "org": org, "package_name": name}

    # Packages of the organization, of the user, of the signed-in user; one package.
    listed = octokit.ok("packages.listPackagesForOrganization", package_type="container", org=org)
    assert [p["name"] for p in listed] == [name]
    package = listed[0]
    assert package["package_type"] == "container"
    assert package["version_count"] == 3
    assert package["visibility"] == "private"
    assert package["owner"]["login"] == org and package["owner"]["type"] == "Organization"
    assert package["url"] == f"{registry.url}/api/v3/orgs/{org}/packages/container/team%2Fapp"
    assert octokit.ok("packages.getPackageForOrganization", **where) == package

    for method, params in (
        ("packages.listPackagesForUser", {"username": registry.user}),
        ("packages.listPackagesForAuthenticatedUser", {}),
    ):
        pages = octokit.paginate(method, package_type="container", per_page=100, **params)
        names = [p["name"] for page in pages for p in page]
        assert mine in names and name not in names, (method, names)
        found = next(p for page in pages for p in page if p["name"] == mine)
        assert found["owner"]["login"] == registry.user and found["version_count"] == 1

    # Versions: newest first, each with its tag; one version; pages of one, by Link headers.
    versions = octokit.ok("packages.getAllPackageVersionsForPackageOwnedByOrg", **where)
    assert [v["name"] for v in versions] == [digests["v3"], digests["v2"], digests["v1"]]
    assert [v["metadata"]["container"]["tags"] for v in versions] == [["v3"], ["v2"], ["v1"]]
    assert all(v["metadata"]["package_type"] == "container" for v in versions)
    assert all(v["deleted_at"] is None for v in versions)
    ids = {tag: v["id"] for tag, v in zip(("v3", "v2", "v1"), versions, strict=True)}
    one = octokit.ok(
        "packages.getPackageVersionForOrganization", package_version_id=ids["v2"], **where
    )
    assert one == versions[1]
    first = octokit.call(
        "packages.getAllPackageVersionsForPackageOwnedByOrg", per_page=1, page=1, **where
    )
    assert 'rel="next"' in first["link"] and 'rel="last"' in first["link"], first
    assert "page=3" in first["link"], first["link"]
    pages = octokit.paginate(
        "packages.getAllPackageVersionsForPackageOwnedByOrg", per_page=1, **where
    )
    assert [[v["id"] for v in page] for page in pages] == [[ids["v3"]], [ids["v2"]], [ids["v1"]]]

    # Delete a version: it can no longer be pulled, by tag or digest; the others can.
    octokit.ok("packages.deletePackageVersionForOrg", 204, package_version_id=ids["v2"], **where)
    assert pull(http, repo, "v2").status_code == 404
    assert pull(http, repo, digests["v2"]).status_code == 404
    assert pull(http, repo, "v1").content == manifests["v1"]
    active = octokit.ok("packages.getAllPackageVersionsForPackageOwnedByOrg", **where)
    assert [v["id"] for v in active] == [ids["v3"], ids["v1"]]
    deleted = octokit.ok(
        "packages.getAllPackageVersionsForPackageOwnedByOrg", state="deleted", **where
    )
    assert [v["id"] for v in deleted] == [ids["v2"]]
    assert deleted[0]["deleted_at"] is not None
    assert deleted[0]["metadata"]["container"]["tags"] == ["v2"]
    assert octokit.ok("packages.getPackageForOrganization", **where)["version_count"] == 2
    again = octokit.call(
        "packages.deletePackageVersionForOrg", package_version_id=ids["v2"], **where
    )
    assert again["status"] == 404, again

    # Restore it: pullable again by its tag, the same bytes.
    octokit.ok("packages.restorePackageVersionForOrg", 204, package_version_id=ids["v2"], **where)
    r = pull(http, repo, "v2")
    assert r.status_code == 200 and r.content == manifests["v2"], explain(r)
    restored = octokit.ok("packages.getAllPackageVersionsForPackageOwnedByOrg", **where)
    assert [v["id"] for v in restored] == [ids["v3"], ids["v2"], ids["v1"]]
    assert restored[1]["metadata"]["container"]["tags"] == ["v2"]

    # Delete the package: gone from the REST API and from /v2 (manifests and blobs).
    layer = json.loads(manifests["v3"])["layers"][0]["digest"]
    octokit.ok("packages.deletePackageForOrg", 204, **where)
    for tag in ("v1", "v2", "v3"):
        assert pull(http, repo, tag).status_code == 404
    assert http.get(f"/v2/{repo}/blobs/{layer}").status_code == 404
    gone = octokit.call("packages.getPackageForOrganization", **where)
    assert gone["status"] == 404 and gone["data"]["message"] == "Package not found.", gone
    assert (
        octokit.ok("packages.listPackagesForOrganization", package_type="container", org=org) == []
    )

    # Restore it: everything is back, pullable by every tag, same bytes.
    octokit.ok("packages.restorePackageForOrg", 204, **where)
    for tag, manifest in manifests.items():
        r = pull(http, repo, tag)
        assert r.status_code == 200 and r.content == manifest, explain(r)
    assert http.get(f"/v2/{repo}/blobs/{layer}").status_code == 200
    back = octokit.ok("packages.getPackageForOrganization", **where)
    assert back["id"] == package["id"] and back["version_count"] == 3
    versions_back = octokit.ok("packages.getAllPackageVersionsForPackageOwnedByOrg", **where)
    assert [v["id"] for v in versions_back] == [ids["v3"], ids["v2"], ids["v1"]]
    # Restoring what is not deleted is a conflict, as for a version.
    assert octokit.call("packages.restorePackageForOrg", **where)["status"] == 409


# -- skopeo: a multi-arch package -----------------------------------------------------------------


def _layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def build_index_layout(
    layout: Path, tag: str, arches: tuple[str, ...], annotations: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """Write an OCI layout with one image per ``linux/<arch>`` and an index over them carrying
    ``annotations``, tagged ``tag``; ``(index digest, {arch: manifest digest})``."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    children: dict[str, str] = {}
    descriptors = []
    for arch in arches:
        layer = _layer({f"etc/arch-{arch}": arch.encode(), "data/random.bin": os.urandom(4096)})
        diff_id = digest_of(gzip.decompress(layer))
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, layer)],
            }
        ).encode()
        write_blob(layout, config)
        write_blob(layout, layer)
        children[arch] = write_blob(layout, manifest)
        descriptors.append(
            descriptor(OCI_MANIFEST, manifest, platform={"architecture": arch, "os": "linux"})
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": descriptors,
            "annotations": annotations,
        }
    ).encode()
    digest = write_blob(layout, index)
    tag_in_layout(layout, tag, descriptor(OCI_INDEX, index))
    return digest, children


def _image_size(layout: Path, digest: str) -> int:
    """Bytes of an image manifest plus its config and layers."""
    manifest = read_blob(layout, digest)
    doc = json.loads(manifest)
    return len(manifest) + doc["config"]["size"] + sum(x["size"] for x in doc["layers"])


def test_skopeo_multiarch_package_deleted_and_restored_through_rest(
    clients: Clients, registry: Any, tmp_path: Path
) -> None:
    text = f"A two-platform test image ({secrets.token_hex(4)})"
    layout = tmp_path / "src"
    index_digest, children = build_index_layout(
        layout, "multi", ("amd64", "arm64"), {DESCRIPTION: text}
    )
    _, index = layout_manifest(layout, "multi")
    expected = layout_contents(layout, "multi")
    name = f"multi-rest-{secrets.token_hex(3)}"
    ref = f"docker://{registry.address}/e2e/{name}:multi"
    clients.skopeo(
        "copy", "--all", "--retry-times", "0", "--dest-tls-verify=false", f"oci:{layout}:multi", ref
    )

    api = f"/api/v3/orgs/e2e/packages/container/{name}"
    bearer = {"Authorization": f"Bearer {registry.token}"}
    with httpx.Client(base_url=registry.url, headers=bearer, timeout=30) as rest:
        r = rest.get(api)
        assert r.status_code == 200, explain(r)
        package = r.json()
        assert package["description"] == text
        assert package["version_count"] == 3  # the index and its two platform images
        r = rest.get(f"{api}/versions")
        assert r.status_code == 200, explain(r)
        versions = {v["name"]: v for v in r.json()}
        assert set(versions) == {index_digest, *children.values()}
        top = versions[index_digest]
        assert top["description"] == text
        assert top["metadata"]["container"] | {"download_count": 0} == {
            "tags": ["multi"],
            "kind": "index",
            "media_type": OCI_INDEX,
            "platform": None,
            "is_child": False,
            "attestation": False,
            "parents": [],
            "subject": None,
            "artifact_type": None,
            "size": len(index) + sum(_image_size(layout, d) for d in children.values()),
            "download_count": 0,
        }
        for arch, digest in children.items():
            child = versions[digest]["metadata"]["container"]
            assert child["platform"] == f"linux/{arch}", child
            assert child["is_child"] is True and child["tags"] == [], child
            assert child["parents"] == [index_digest], child
            assert child["media_type"] == OCI_MANIFEST and child["kind"] == "image", child
            assert child["size"] == _image_size(layout, digest), child

        r = rest.delete(api)
        assert r.status_code == 204, explain(r)
        for args in (
            ("inspect", "--raw", "--tls-verify=false", ref),
            ("copy", "--all", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'gone'}:multi"),
        ):
            proc = clients.skopeo(*args, check=False)
            assert proc.returncode != 0, describe(proc)
            assert "unknown" in proc.stderr.lower(), describe(proc)  # name/manifest unknown
        assert rest.get(api).status_code == 404

        r = rest.post(f"{api}/restore")
        assert r.status_code == 204, explain(r)
        assert rest.get(api).json()["version_count"] == 3

    back = tmp_path / "back"
    clients.skopeo("copy", "--all", "--src-tls-verify=false", ref, f"oci:{back}:multi")
    assert layout_manifest(back, "multi") == (index_digest, index)
    assert layout_contents(back, "multi") == expected


def test_a_platform_image_an_index_uses_is_not_deleted_alone(
    registry: Any, http: httpx.Client
) -> None:
    """Through the REST API (409) or ``/v2`` (a 4xx with an OCI error code, which clients
    report instead of retrying), and nothing changes."""
    name = f"in-use-{secrets.token_hex(3)}"
    repo = f"e2e/{name}"
    child, manifest = push_image(http, repo, "amd64")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(
                    OCI_MANIFEST, manifest, platform={"architecture": "amd64", "os": "linux"}
                )
            ],
        }
    ).encode()
    put_manifest(http, repo, "multi", index, OCI_INDEX)
    api = f"/api/v3/orgs/e2e/packages/container/{name}"
    bearer = {"Authorization": f"Bearer {registry.token}"}
    with httpx.Client(base_url=registry.url, headers=bearer, timeout=30) as rest:
        versions = {v["name"]: v["id"] for v in rest.get(f"{api}/versions").json()}
        r = rest.delete(f"{api}/versions/{versions[child]}")
        assert r.status_code == 409, explain(r)
        r = http.delete(f"/v2/{repo}/manifests/{child}")
        assert 400 <= r.status_code < 500, explain(r)
        assert r.json()["errors"][0]["code"] != "UNKNOWN", explain(r)
        assert rest.get(api).json()["version_count"] == 2
    for reference in ("multi", child):
        assert pull(http, repo, reference).status_code == 200
