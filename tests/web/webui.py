"""Helpers for the web UI tests: the operator CLI with passwords on stdin, OCI image layouts
written byte by byte (multi-arch indexes with an attestation child, labels, annotations) and
pushed with skopeo, and what a real browser page needs (signing in through the form, console
and dialog watching, screenshots).

Test modules import it as ``from webui import ...``; the unique name keeps it from being
shadowed by a helper of another test folder (``tests/`` is not a package).
"""

from __future__ import annotations

import html
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kit import digest_of
from playwright.sync_api import ConsoleMessage, Dialog, Page

ROOT = Path(__file__).resolve().parents[2]
#: Screenshots of the key pages land here (kept by CI as test artifacts; ignored by git).
ARTIFACTS = ROOT / "test-artifacts" / "web"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
IN_TOTO = "application/vnd.in-toto+json"

DESCRIPTION = "org.opencontainers.image.description"
LICENSES = "org.opencontainers.image.licenses"
SOURCE = "org.opencontainers.image.source"
REF_NAME = "org.opencontainers.image.ref.name"

# -- OCI image layouts, written directly --------------------------------------------------------


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def tar_layer(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed tar of ``files`` (its size is a multiple of tarfile's 10,240-byte
    record: one small file makes exactly 10,240 bytes)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def as_json(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass
class Layout:
    """An OCI image layout directory being written: blobs, then tags in ``index.json``."""

    path: Path

    def __post_init__(self) -> None:
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self._write_index([])

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        (self.path / "index.json").write_text(json.dumps(index))

    def blob(self, data: bytes, media_type: str) -> Descriptor:
        digest = digest_of(data)
        (self.path / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def image(
        self,
        arch: str,
        *,
        os_name: str = "linux",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        layer: bytes | None = None,
    ) -> Descriptor:
        """A one-layer image (an uncompressed tar layer holding a random file, unless
        ``layer`` is given) whose config has ``labels``; its manifest has ``annotations``."""
        layer = layer if layer is not None else tar_layer({f"{arch}.bin": os.urandom(256)})
        layer_desc = self.blob(layer, OCI_LAYER_TAR)
        config = {
            "architecture": arch,
            "os": os_name,
            "created": "2024-05-01T12:00:00Z",
            "config": {"Labels": dict(labels or {})},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
        }
        config_desc = self.blob(_json(config), OCI_CONFIG)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc.as_json(),
            "layers": [layer_desc.as_json()],
        }
        if annotations:
            manifest["annotations"] = dict(annotations)
        return self.blob(_json(manifest), OCI_MANIFEST)

    def attestation(self) -> Descriptor:
        """An attestation manifest as docker buildx writes them (unknown/unknown config,
        one in-toto statement layer)."""
        statement = _json({"_type": "https://in-toto.io/Statement/v0.1", "n": os.urandom(8).hex()})
        config = {
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(statement)]},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(_json(config), OCI_CONFIG).as_json(),
            "layers": [self.blob(statement, IN_TOTO).as_json()],
        }
        return self.blob(_json(manifest), OCI_MANIFEST)

    def index(
        self,
        arches: Sequence[str] = ("amd64", "arm64"),
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        with_attestation: bool = True,
    ) -> tuple[Descriptor, dict[str, Descriptor]]:
        """A multi-arch index: one linux image per architecture (each with ``labels`` and
        ``annotations``), plus (``with_attestation``) an attestation child of the first one
        with platform unknown/unknown; the index carries ``annotations`` too. Returns the
        index's descriptor and the children's by architecture (``"attestation"`` included)."""
        children: dict[str, Descriptor] = {}
        entries: list[dict[str, Any]] = []
        for arch in arches:
            child = self.image(arch, labels=labels, annotations=annotations)
            children[arch] = child
            entries.append(child.as_json(platform={"architecture": arch, "os": "linux"}))
        if with_attestation:
            attestation = self.attestation()
            children["attestation"] = attestation
            entries.append(
                attestation.as_json(
                    platform={"architecture": "unknown", "os": "unknown"},
                    annotations={
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": children[arches[0]].digest,
                    },
                )
            )
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        if annotations:
            index["annotations"] = dict(annotations)
        return self.blob(_json(index), OCI_INDEX), children

    def tag(self, tag: str, descriptor: Descriptor) -> None:
        """Point ``tag`` (``org.opencontainers.image.ref.name``) at ``descriptor``."""
        current = json.loads((self.path / "index.json").read_text())["manifests"]
        kept = [d for d in current if (d.get("annotations") or {}).get(REF_NAME) != tag]
        self._write_index([*kept, descriptor.as_json(annotations={REF_NAME: tag})])


def metadata(description: str, licenses: str, source: str) -> dict[str, str]:
    """The ``org.opencontainers.image.*`` keys a package page shows."""
    return {DESCRIPTION: description, LICENSES: licenses, SOURCE: source}


# -- skopeo ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skopeo:
    """skopeo with an isolated configuration (``clients.make_clients`` of the e2e suite) on one
    server; credentials are given per call (``creds=None``: anonymous)."""

    clients: Any
    address: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = self.clients.skopeo(
            *args, check=check, timeout=120
        )
        return result

    @staticmethod
    def _creds(flag: str, creds: tuple[str, str] | None) -> list[str]:
        return [f"--{flag}-creds", f"{creds[0]}:{creds[1]}"] if creds else [f"--{flag}-no-creds"]

    def push(
        self,
        layout: Layout,
        ref: str,
        name: str,
        creds: tuple[str, str],
        *,
        tag: str | None = None,
    ) -> None:
        """Copy ``ref`` of ``layout`` with every instance (``--all``) to ``name:tag`` (default:
        the same tag), byte for byte (``--preserve-digests``: skopeo would otherwise compress
        the tar layers)."""
        self.run(
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            *self._creds("dest", creds),
            f"oci:{layout.path}:{ref}",
            f"docker://{self.address}/{name}:{tag or ref}",
        )

    def inspect(
        self, reference: str, creds: tuple[str, str] | None
    ) -> subprocess.CompletedProcess[str]:
        """``skopeo inspect`` of ``name:tag`` (not checked: look at ``returncode``)."""
        auth = ["--creds", f"{creds[0]}:{creds[1]}"] if creds else ["--no-creds"]
        return self.run(
            "inspect",
            "--tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            "amd64",
            *auth,
            f"docker://{self.address}/{reference}",
            check=False,
        )

    def pull(
        self, reference: str, target: Path, creds: tuple[str, str] | None
    ) -> subprocess.CompletedProcess[str]:
        """``skopeo copy --all docker://... dir:TARGET`` (not checked)."""
        return self.run(
            "copy",
            "--all",
            "--src-tls-verify=false",
            *self._creds("src", creds),
            f"docker://{self.address}/{reference}",
            f"dir:{target}",
            check=False,
        )


# -- pages ----------------------------------------------------------------------------------------


@dataclass
class Watch:
    """What a page says on its own: console errors (CSP violations are reported there),
    uncaught exceptions and dialogs (``alert``...: none may ever open)."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    favicon: list[str] = field(default_factory=list)

    def attach(self, page: Page, timeout: float = 5000) -> Page:
        """Watch ``page``; its actions wait ``timeout`` ms at most (not Playwright's 30 s)."""
        page.set_default_timeout(timeout)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("dialog", self._dialog)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        if where.endswith("/favicon.ico"):
            # The browser asks for it by itself, whatever the page: checked once, on its own.
            self.favicon.append(f"{message.text} at {where}")
        else:
            self.errors.append(f"{message.text} at {where}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def take(self, *, allow_status: Iterable[int] = ()) -> list[str]:
        """Errors since the last call, less the browser's own "Failed to load resource: the
        server responded with a status of N" for the statuses a test expects."""
        allowed = tuple(f"status of {s} " for s in allow_status)
        found = [e for e in self.errors if not any(a in e for a in allowed)]
        self.errors.clear()
        return found


def sign_in(page: Page, base_url: str, login: str, password: str) -> None:
    """Sign in through the form on ``/login`` (whatever page it then lands on)."""
    page.goto(f"{base_url}/login")
    page.fill("#login", login)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def texts(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


# -- plain HTTP sessions ------------------------------------------------------------------------


class WebSession:
    """An httpx client signed in to the pages through ``/login`` (or anonymous), no redirects
    followed; ``csrf`` is the session's form token as the pages embed it."""

    def __init__(self, base_url: str, local_address: str | None = None) -> None:
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        self.http = httpx.Client(
            base_url=base_url, timeout=30.0, follow_redirects=False, transport=transport
        )
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def sign_in(self, login: str, password: str) -> httpx.Response:
        form = self.http.get("/login")
        token = hidden_field(form.text, "csrf")
        resp = self.http.post(
            "/login", data={"csrf": token, "next": "/", "login": login, "password": password}
        )
        if resp.status_code == 303:
            self.csrf = hidden_field(self.http.get("/settings/tokens").text, "csrf")
        return resp

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(self, path: str, data: Mapping[str, str] | None = None) -> httpx.Response:
        return self.http.post(path, data=dict(data or {}))


def hidden_field(page: str, name: str) -> str:
    """The value of the form field ``name`` (``name="..." value="..."``) in a page's HTML."""
    marker = f'name="{name}" value="'
    start = page.index(marker) + len(marker)
    return html.unescape(page[start : page.index('"', start)])
