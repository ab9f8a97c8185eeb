"""Plumbing for the authorization tests: the operator CLI, auth headers, a tiny OCI client and
response checks. No rules here (those are in :mod:`authzrules`)."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import jwt
from kit import digest_of, operator_batch
from kit import image as build_image

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"

PAT_RE = re.compile(r"cbp_[0-9A-Za-z]+")
WORKFLOW_RE = re.compile(r"cbw_[0-9A-Za-z]+")


# -- the operator CLI ---------------------------------------------------------------------------


class Cli:
    """The operator CLI, ``cargobay ... --data-dir D``, with the server's settings."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, **env}

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``python -m cargobay ARGS --data-dir D``: the real entry point, one process."""
        cmd = [sys.executable, "-m", "cargobay", *args, "--data-dir", str(self.data_dir)]
        return subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, env=self.env, timeout=120
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run a command that must succeed; returns its stdout, stripped."""
        done = self.run(*args, stdin=stdin)
        if done.returncode != 0:
            raise AssertionError(
                f"cargobay {' '.join(args)} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}"
            )
        return done.stdout.strip()

    def batch(
        self, commands: Sequence[Sequence[str]], may_fail: Iterable[int] = ()
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run commands in order in one interpreter. Each must exit 0, except those whose index
        is in ``may_fail``. Returns one result per command (stdout not stripped)."""
        results = operator_batch(self.data_dir, self.env, commands)
        allowed = set(may_fail)
        for i, result in enumerate(results):
            if result.returncode != 0 and i not in allowed:
                raise AssertionError(
                    f"cargobay {' '.join(result.args)} exited {result.returncode}\n"
                    f"stdout: {result.stdout}\nstderr: {result.stderr}"
                )
        return results


def only_token(output: str, pattern: re.Pattern[str]) -> str:
    """``token create``/``token workflow`` print only the token."""
    assert pattern.fullmatch(output), f"expected only a token, got {output!r}"
    return output


# -- credentials --------------------------------------------------------------------------------


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def bearer(token: str) -> str:
    return f"Bearer {token}"


def client(base_url: str, authorization: str | None = None) -> httpx.Client:
    headers = {"Authorization": authorization} if authorization else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30.0)


# -- a tiny OCI client --------------------------------------------------------------------------


def push_blob(http: httpx.Client, name: str, data: bytes) -> httpx.Response:
    """POST + PUT a blob. Returns the first response that is not a step's success."""
    start = http.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    if start.status_code != 202:
        return start
    location = str(httpx.URL(str(http.base_url)).join(start.headers["location"]))
    url = httpx.URL(location).copy_merge_params({"digest": digest_of(data)})
    return http.put(url, content=data, headers={"Content-Type": "application/octet-stream"})


def image(nonce: str) -> tuple[dict[str, bytes], bytes]:
    """A small unique image: its blobs (digest -> bytes) and its manifest bytes."""
    built = build_image(labels={"nonce": nonce}, layer_size=256)
    return built.blobs, built.manifest


def put_manifest(http: httpx.Client, name: str, reference: str, body: bytes) -> httpx.Response:
    return http.put(
        f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": OCI_MANIFEST}
    )


def push_image(
    http: httpx.Client, name: str, tag: str, nonce: str
) -> tuple[httpx.Response, dict[str, bytes], bytes]:
    """Push every blob then the manifest; stops at the first failing step. Returns that step's
    response (the manifest PUT's when everything worked), the blobs and the manifest."""
    blobs, manifest = image(nonce)
    for data in blobs.values():
        resp = push_blob(http, name, data)
        if resp.status_code != 201:
            return resp, blobs, manifest
    return put_manifest(http, name, tag, manifest), blobs, manifest


def get_manifest(http: httpx.Client, name: str, reference: str) -> httpx.Response:
    return http.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT})


def catalog(http: httpx.Client) -> tuple[httpx.Response, list[str]]:
    """Every repository in ``/v2/_catalog`` (following ``Link`` pages)."""
    names: list[str] = []
    url = "/v2/_catalog?n=1000"
    for _ in range(100):
        resp = http.get(url)
        if resp.status_code != 200:
            return resp, names
        names += resp.json().get("repositories") or []
        link = resp.headers.get("link")
        if not link:
            return resp, names
        url = link.split(";")[0].strip().strip("<>")
    raise AssertionError("catalog pagination does not end")


# -- checks -------------------------------------------------------------------------------------


def describe(resp: httpx.Response) -> str:
    req = resp.request
    auth = req.headers.get("authorization", "")
    shown = auth.split(" ")[0] + " …" if auth else "(none)"
    body = "" if req.method == "HEAD" else resp.text[:400]
    challenge = resp.headers.get("www-authenticate")
    extra = f" WWW-Authenticate: {challenge}" if challenge else ""
    path = req.url.raw_path.decode()
    return f"{req.method} {path} [auth {shown}] -> {resp.status_code}{extra} {body!r}"


def error_code(resp: httpx.Response) -> str | None:
    """The first OCI error code of a JSON error body (None for a success or a non-JSON body)."""
    if resp.status_code < 400 or resp.request.method == "HEAD":
        return None
    try:
        errors = resp.json().get("errors")
    except ValueError:
        return "<not JSON>"
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return "<no errors list>"
    return str(errors[0].get("code"))


def challenge_params(resp: httpx.Response) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer k="v",...`` challenge ({} if absent)."""
    header = resp.headers.get("www-authenticate", "")
    if not header.lower().startswith("bearer "):
        return {}
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


# -- registry tokens ----------------------------------------------------------------------------


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def granted_actions(token: str, name: str) -> set[str]:
    actions: set[str] = set()
    for entry in claims_of(token).get("access") or []:
        if entry.get("type") == "repository" and entry.get("name") == name:
            actions |= set(entry.get("actions") or [])
    return actions


def find_signing_key(data_dir: Path, token: str) -> bytes | None:
    """The key that verifies ``token`` (a server-issued HMAC JWT), found among the small files
    of the server's data directory (raw bytes, hex or base64 text)."""
    alg = jwt.get_unverified_header(token).get("alg", "")
    if not alg.startswith("HS"):
        return None
    known = data_dir / "registry-token.key"  # the default of the ``token_key_file`` setting
    for path in [known, *sorted(data_dir.rglob("*"))]:
        if not path.is_file() or path.stat().st_size > 4096 or path.suffix in (".db", ".log"):
            continue
        raw = path.read_bytes()
        candidates = [raw, raw.strip()]
        text = raw.decode(errors="ignore").strip()
        for decode in (bytes.fromhex, base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(ValueError):
                candidates.append(decode(text))
        for key in candidates:
            if not key:
                continue
            try:
                jwt.decode(token, key, algorithms=[alg], options={"verify_aud": False})
            except jwt.PyJWTError:
                continue
            return key
    return None
