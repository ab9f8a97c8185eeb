"""Helpers for the REST API tests (``/api/v3``): the operator CLI in one process, a small OCI
pusher (blobs, images with labels and annotations, indexes with platform children and
attestations, referrers) and a REST client that sends a token.

Test modules import it as ``from resttest import ...``; the unique name keeps it from being
shadowed by a helper of another test folder (``tests/`` is not a package).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"

SOURCE = "org.opencontainers.image.source"
DESCRIPTION = "org.opencontainers.image.description"
LICENSES = "org.opencontainers.image.licenses"

T = TypeVar("T")

# -- the operator CLI ---------------------------------------------------------------------------

# Runs operator commands one after another in one interpreter (one start-up instead of one per
# command). argv: data dir, JSON list of argument lists. Prints a JSON list of the outputs.
_BATCH = """
import contextlib, io, json, sys
from cargobay.cli import cli
outputs = []
for args in json.loads(sys.argv[2]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli([*args, "--data-dir", sys.argv[1]], standalone_mode=False)
    if code:
        sys.exit(f"cargobay {' '.join(args)} exited {code}: {buf.getvalue()}")
    outputs.append(buf.getvalue().strip())
print(json.dumps(outputs))
"""


def operator(server: Any, commands: Sequence[Sequence[str]]) -> list[str]:
    """Run ``cargobay ARGS --data-dir D`` for each command, in order, in one process with the
    server's settings; returns each command's stdout, stripped. Fails on the first error."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _BATCH,
            str(server.data_dir),
            json.dumps([list(c) for c in commands]),
        ],
        env={**os.environ, **server.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"operator CLI failed: {done.stdout}\n{done.stderr[-3000:]}")
    outputs: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return outputs


class Provision:
    """Collects operator commands, runs them in one process; ``token(...)`` commands return a
    key under which the printed token is found afterwards."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.token_keys: dict[str, int] = {}

    def add(self, *args: str) -> Provision:
        self.commands.append(list(args))
        return self

    def pat(self, key: str, user: str, scopes: str) -> Provision:
        self.token_keys[key] = len(self.commands)
        return self.add("token", "create", "--user", user, "--scopes", scopes)

    def workflow(self, key: str, repository: str, permission: str = "write") -> Provision:
        self.token_keys[key] = len(self.commands)
        return self.add("token", "workflow", "--repository", repository, "--permission", permission)

    def run(self, server: Any) -> dict[str, str]:
        outputs = operator(server, self.commands)
        tokens = {key: outputs[i] for key, i in self.token_keys.items()}
        for key, token in tokens.items():
            assert token.startswith(("cbp_", "cbw_")), (key, token)
        return tokens


# -- describing responses -----------------------------------------------------------------------


def describe(resp: httpx.Response) -> str:
    """One request/response pair, for assertion messages."""
    req = resp.request
    auth = req.headers.get("authorization", "")
    shown = auth.split(" ")[0] + " …" if auth else "(none)"
    body = "" if req.method == "HEAD" else resp.text[:600]
    link = resp.headers.get("link")
    extra = f" Link: {link}" if link else ""
    return f"{req.method} {req.url} [auth {shown}] -> {resp.status_code}{extra} {body!r}"


def poll(check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Call ``check`` until it returns something other than None (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


# -- the REST API -------------------------------------------------------------------------------


def encoded(package_name: str) -> str:
    """A package name as GitHub clients put it in a path: ``/`` as ``%2F``."""
    return quote(package_name, safe="")


class Rest:
    """A client for ``/api/v3`` of one server. ``get(path, token)`` sends
    ``Authorization: Bearer <token>`` (``scheme="token"`` for GitHub's other form); no token,
    no header."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url + "/api/v3", timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        scheme: str = "Bearer",
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"{scheme} {token}"} if token else {}
        return self.http.request(
            method, path, headers=headers, params=dict(params) if params else None, json=json_body
        )

    def get(
        self,
        path: str,
        token: str | None = None,
        *,
        scheme: str = "Bearer",
        **params: str | int,
    ) -> httpx.Response:
        return self.request("GET", path, token, scheme=scheme, params=params)

    def get_url(self, url: str, token: str | None) -> httpx.Response:
        """GET an absolute URL the API returned (``url`` fields, ``Link`` targets)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(url, headers=headers)

    def ok(self, path: str, token: str | None, **params: str | int) -> Any:
        resp = self.request("GET", path, token, params=params)
        assert resp.status_code == 200, describe(resp)
        return resp.json()


def package_path(scope: str, package_name: str) -> str:
    """``scope`` is ``/user``, ``/users/NAME`` or ``/orgs/NAME``."""
    return f"{scope}/packages/container/{encoded(package_name)}"


def links(resp: httpx.Response) -> dict[str, str]:
    """The ``Link`` header as ``{rel: url}``."""
    found: dict[str, str] = {}
    header = resp.headers.get("link", "")
    for part in header.split(","):
        if not part.strip():
            continue
        url, _, rel = part.partition(";")
        rel_value = rel.strip().removeprefix("rel=").strip('"')
        found[rel_value] = url.strip().strip("<>")
    return found


def query_of(url: str) -> dict[str, str]:
    return dict(httpx.URL(url).params)


# -- a tiny OCI pusher --------------------------------------------------------------------------


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()


@dataclass(frozen=True)
class Pushed:
    """A manifest as pushed: its digest, exact bytes and media type."""

    digest: str
    body: bytes
    media_type: str

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.body),
            **extra,
        }


class Pusher:
    """Pushes to ``/v2`` with one token (``Authorization: Bearer <token>``)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )

    def close(self) -> None:
        self.http.close()

    def blob(self, name: str, data: bytes) -> dict[str, Any]:
        """A monolithic upload (``POST ?digest=``); returns the blob's descriptor fields."""
        digest = digest_of(data)
        resp = self.http.post(
            f"/v2/{name}/blobs/uploads/",
            params={"digest": digest},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert resp.status_code == 201, describe(resp)
        return {"digest": digest, "size": len(data)}

    def manifest(
        self, name: str, document: Mapping[str, Any], reference: str | None = None
    ) -> Pushed:
        body = encode(document)
        media_type = str(document["mediaType"])
        digest = digest_of(body)
        resp = self.http.put(
            f"/v2/{name}/manifests/{reference or digest}",
            content=body,
            headers={"Content-Type": media_type},
        )
        assert resp.status_code == 201, describe(resp)
        assert resp.headers.get("docker-content-digest") == digest, describe(resp)
        return Pushed(digest, body, media_type)

    def image(
        self,
        name: str,
        tag: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        platform: Mapping[str, str] | None = None,
        subject: Pushed | None = None,
        artifact_type: str | None = None,
    ) -> Pushed:
        """An image: a config (with ``labels`` and ``platform``, default linux/amd64; ``{}``
        for a config that declares none), one random layer, a manifest with ``annotations``
        (and a ``subject``: a referrer). Pushed under ``tag``, else by digest."""
        config_doc: dict[str, Any] = dict(
            {"architecture": "amd64", "os": "linux"} if platform is None else platform
        )
        config_doc["rootfs"] = {"type": "layers", "diff_ids": []}
        config_doc["config"] = {"Labels": {"nonce": os.urandom(8).hex(), **(labels or {})}}
        config = json.dumps(config_doc).encode()
        layer = os.urandom(64)
        config_desc = {"mediaType": OCI_CONFIG, **self.blob(name, config)}
        layer_desc = {"mediaType": OCI_LAYER, **self.blob(name, layer)}
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc,
            "layers": [layer_desc],
        }
        if artifact_type:
            document["artifactType"] = artifact_type
        if annotations:
            document["annotations"] = dict(annotations)
        if subject is not None:
            document["subject"] = subject.descriptor()
        return self.manifest(name, document, tag)

    def referrer(
        self, name: str, subject: Pushed, annotations: Mapping[str, str] | None = None
    ) -> Pushed:
        """An artifact (empty config, one blob) whose ``subject`` is ``subject``."""
        empty = {"mediaType": OCI_EMPTY, **self.blob(name, b"{}")}
        payload = {"mediaType": "application/json", **self.blob(name, os.urandom(32))}
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": empty,
            "layers": [payload],
            "subject": subject.descriptor(),
        }
        if annotations:
            document["annotations"] = dict(annotations)
        return self.manifest(name, document)

    def attestation(self, name: str) -> Pushed:
        """An attestation manifest as docker buildx makes them (unknown/unknown config,
        in-toto layers); put it in an index with :func:`attestation_entry`."""
        config = json.dumps(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode()
        statement = json.dumps(
            {"_type": "https://in-toto.io/Statement/v0.1", "n": os.urandom(8).hex()}
        )
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **self.blob(name, config)},
            "layers": [{"mediaType": IN_TOTO, **self.blob(name, statement.encode())}],
        }
        return self.manifest(name, document)

    def index(
        self,
        name: str,
        children: Sequence[Mapping[str, Any]],
        tag: str | None = None,
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> Pushed:
        """An OCI index over ``children`` (descriptors: see :func:`child_entry`)."""
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": list(children),
        }
        if annotations:
            document["annotations"] = dict(annotations)
        return self.manifest(name, document, tag)

    def get_manifest(self, name: str, reference: str) -> httpx.Response:
        return self.http.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT})

    def head_manifest(self, name: str, reference: str) -> httpx.Response:
        return self.http.head(f"/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT})


def child_entry(
    child: Pushed, os_name: str, architecture: str, variant: str = ""
) -> dict[str, Any]:
    platform = {"os": os_name, "architecture": architecture}
    if variant:
        platform["variant"] = variant
    return child.descriptor(platform=platform)


def attestation_entry(attestation: Pushed, of: Pushed) -> dict[str, Any]:
    """The index entry docker buildx writes for the attestation of image ``of``."""
    return attestation.descriptor(
        platform={"os": "unknown", "architecture": "unknown"},
        annotations={
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": of.digest,
        },
    )
