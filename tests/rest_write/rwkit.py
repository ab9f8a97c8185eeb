"""Plumbing for the REST write tests (``tests/rest_write``): a world of users, teams, repositories
and tokens on one server, REST and /v2 clients, image and index pushes, response checks.

The world (built by :func:`world_commands` with one operator-CLI process):

- ``tester``, the conftest's site administrator (actor ``admin``);
- org ``acme`` owned by ``boss`` (actor ``owner``; ``owner_ro``/``_rw``/``_rd``/``_wo`` are his
  tokens with fewer scopes); members ``reader``, ``writer``, ``teamadmin`` (in the teams
  ``readers``, ``writers``, ``admins``), ``member`` (no team) and ``collab`` (read collaborator
  on the repository ``acme/app``); ``outsider`` and ``victim`` belong to nothing;
- org ``strict`` (owned by ``boss``) whose packages may only be private or internal;
- repositories ``acme/app``, ``acme/other``, ``acme/tools``, each with a write workflow token
  (actors ``wf_app``, ``wf_other``, ``wf_tools``).

The module has a unique name on purpose: ``tests/`` is not a package, so a plain ``helpers.py``
could be shadowed by one in another test folder.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from kit import digest_of
from kit import image as build_image
from kit import index as build_index

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"

ALL_SCOPES = "read:packages,write:packages,delete:packages"
PAT_RE = re.compile(r"cbp_[0-9A-Za-z]+")
WORKFLOW_RE = re.compile(r"cbw_[0-9A-Za-z]+")

#: The organization most tests work in, and its owner.
ORG = "acme"
OWNER = "boss"
#: ``protected_downloads`` of the shared server.
PROTECTED_DOWNLOADS = 2
#: An organization whose policy allows private and internal packages only.
STRICT_ORG = "strict"

# Personal access tokens: actor -> (user, scopes). ``admin`` is the conftest's site administrator.
PATS: dict[str, tuple[str, str]] = {
    "owner": (OWNER, ALL_SCOPES),
    "owner_rw": (OWNER, "read:packages,write:packages"),
    "owner_rd": (OWNER, "read:packages,delete:packages"),
    "owner_ro": (OWNER, "read:packages"),
    "owner_wo": (OWNER, "write:packages"),
    "reader": ("reader", ALL_SCOPES),
    "writer": ("writer", ALL_SCOPES),
    "team_admin": ("teamadmin", ALL_SCOPES),
    "member": ("member", ALL_SCOPES),
    "outsider": ("outsider", ALL_SCOPES),
    "collab": ("collab", ALL_SCOPES),
    "victim": ("victim", ALL_SCOPES),
}
#: Workflow tokens: actor -> source repository (permission write).
WORKFLOWS: dict[str, str] = {
    "wf_app": f"{ORG}/app",
    "wf_other": f"{ORG}/other",
    "wf_tools": f"{ORG}/tools",
}
USERS = sorted({user for user, _ in PATS.values()})
#: Teams of ORG and their members.
TEAMS = {"readers": ["reader"], "writers": ["writer"], "admins": ["teamadmin"]}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def describe(resp: httpx.Response) -> str:
    """One request/response pair, for assertion messages (credentials elided)."""
    req = resp.request
    auth = req.headers.get("authorization", "")
    shown = auth.split(" ")[0] + " …" if auth else "(none)"
    body = "" if req.method == "HEAD" else resp.text[:500]
    path = req.url.raw_path.decode()
    return f"{req.method} {path} [auth {shown}] -> {resp.status_code} {body!r}"


def expect(resp: httpx.Response, status: int) -> httpx.Response:
    assert resp.status_code == status, describe(resp)
    return resp


def message(resp: httpx.Response) -> str:
    """The GitHub-style error message of a REST error response."""
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str), describe(resp)
    assert body.get("documentation_url"), describe(resp)
    return str(body["message"])


def oci_code(resp: httpx.Response) -> str | None:
    """The first OCI error code of a /v2 error response."""
    if resp.status_code < 400 or resp.request.method == "HEAD":
        return None
    errors = resp.json().get("errors")
    assert isinstance(errors, list) and errors, describe(resp)
    return str(errors[0].get("code"))


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def package_path(owner: str, package_name: str, scope: str = "orgs") -> str:
    """The REST path of a package: ``scope`` is ``orgs``, ``users`` or ``user`` (the caller)."""
    encoded = quote(package_name, safe="")
    if scope == "user":
        return f"/api/v3/user/packages/container/{encoded}"
    return f"/api/v3/{scope}/{owner}/packages/container/{encoded}"


@dataclass
class Image:
    """A pushed image: its manifest digest and bytes, and its blobs."""

    digest: str
    manifest: bytes
    blobs: dict[str, bytes]

    def descriptor(self, architecture: str) -> dict[str, Any]:
        return {
            "mediaType": OCI_MANIFEST,
            "digest": self.digest,
            "size": len(self.manifest),
            "platform": {"architecture": architecture, "os": "linux"},
        }


@dataclass
class Pkg:
    """A package of the world: ``owner/name`` on the registry, ``name`` in the REST API."""

    owner: str
    name: str
    scope: str = "orgs"

    @property
    def full(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def path(self) -> str:
        return package_path(self.owner, self.name, self.scope)

    def version_path(self, version_id: int) -> str:
        return f"{self.path}/versions/{version_id}"


@dataclass
class World:
    """One server with the world of this module's docstring; ``client(actor)`` talks to it as
    that actor (None: anonymous)."""

    url: str
    secrets: dict[str, str]
    admin: str
    #: The actor of the helpers below when none is named.
    me: str = "owner"
    clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    def client(self, actor: str | None) -> httpx.Client:
        """A client sending ``actor``'s token as Basic credentials (what registry clients and
        ``curl -u`` send; the REST API takes them too)."""
        if actor not in self.clients:
            headers = {}
            if actor is not None:
                headers["Authorization"] = basic(self.user_of(actor), self.secrets[actor])
            self.clients[actor] = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)
        return self.clients[actor]

    def user_of(self, actor: str) -> str:
        if actor == "admin":
            return self.admin
        if actor in PATS:
            return PATS[actor][0]
        return "workflow"

    def close(self) -> None:
        for c in self.clients.values():
            c.close()

    # -- REST ---------------------------------------------------------------------------------

    def rest(
        self, actor: str | None, method: str, path: str, json_body: Any = None
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {}
        if json_body is not None:
            kwargs["json"] = json_body
        return self.client(actor).request(method, path, **kwargs)

    def versions(self, pkg: Pkg, state: str = "active", actor: str | None = None) -> list[Any]:
        resp = expect(
            self.client(actor or self.me).get(
                f"{pkg.path}/versions", params={"state": state, "per_page": 100}
            ),
            200,
        )
        body: list[Any] = resp.json()
        return body

    def version_id(self, pkg: Pkg, digest: str, state: str = "active") -> int:
        for v in self.versions(pkg, state):
            if v["name"] == digest:
                return int(v["id"])
        raise AssertionError(f"{digest} is not among the {state} versions of {pkg.full}")

    def grant(self, pkg: Pkg, kind: str, grantee: str, role: str, actor: str = "owner") -> None:
        expect(self.rest(actor, "PUT", f"{pkg.path}/access/{kind}/{grantee}", {"role": role}), 204)

    # -- /v2 ----------------------------------------------------------------------------------

    def push_blob(self, actor: str, name: str, data: bytes) -> None:
        http = self.client(actor)
        start = expect(
            http.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"}), 202
        )
        location = httpx.URL(self.url).join(start.headers["location"])
        url = location.copy_merge_params({"digest": digest_of(data)})
        expect(
            http.put(url, content=data, headers={"Content-Type": "application/octet-stream"}), 201
        )

    def put_manifest(
        self, actor: str, name: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
    ) -> httpx.Response:
        return self.client(actor).put(
            f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
        )

    def push_image(self, actor: str, name: str, tag: str | None = None) -> Image:
        """Push a small unique image (config + one layer + manifest), by ``tag`` or by digest."""
        built = build_image(layer_size=300)
        for data in built.blobs.values():
            self.push_blob(actor, name, data)
        expect(self.put_manifest(actor, name, tag or built.digest, built.manifest), 201)
        return Image(built.digest, built.manifest, built.blobs)

    def push_index(
        self, actor: str, name: str, children: list[Image], tag: str | None = None
    ) -> Image:
        arches = ["amd64", "arm64", "s390x", "ppc64le"]
        built = build_index([c.descriptor(arches[i % 4]) for i, c in enumerate(children)])
        expect(self.put_manifest(actor, name, tag or built.digest, built.manifest, OCI_INDEX), 201)
        return Image(built.digest, built.manifest, {})

    def pull(self, actor: str | None, name: str, reference: str) -> httpx.Response:
        return self.client(actor).get(
            f"/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT}
        )

    def assert_pulls(self, actor: str | None, name: str, image: Image, tag: str | None) -> None:
        """The image is pullable, byte for byte: by digest, by ``tag``, and its blobs."""
        for ref in [image.digest, *([tag] if tag else [])]:
            resp = expect(self.pull(actor, name, ref), 200)
            assert resp.content == image.manifest, describe(resp)
            assert resp.headers["docker-content-digest"] == image.digest, describe(resp)
        for digest, data in image.blobs.items():
            blob = expect(self.client(actor).get(f"/v2/{name}/blobs/{digest}"), 200)
            assert blob.content == data, describe(blob)

    def assert_not_pullable(
        self, actor: str, name: str, image: Image, tag: str | None, codes: tuple[str, ...]
    ) -> None:
        for ref in [image.digest, *([tag] if tag else [])]:
            resp = self.pull(actor, name, ref)
            assert resp.status_code == 404, describe(resp)
            assert oci_code(resp) in codes, describe(resp)

    def tags(self, actor: str, name: str) -> list[str]:
        resp = expect(self.client(actor).get(f"/v2/{name}/tags/list"), 200)
        return list(resp.json().get("tags") or [])


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = 15.0, step: float = 0.1
) -> None:
    """Poll ``condition`` until it holds (the deadline only bounds a broken server)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(step)


def world_commands() -> list[tuple[str | None, list[str]]]:
    """The operator commands that build the world: (actor whose token the output is, args)."""
    commands: list[tuple[str | None, list[str]]] = []
    for user in USERS:
        commands.append((None, ["user", "create", user]))
    commands += [
        (None, ["org", "create", ORG, "--owner", OWNER]),
        (None, ["org", "create", STRICT_ORG, "--owner", OWNER]),
        (None, ["org", "set-policy", STRICT_ORG, "--visibilities", "private,internal"]),
    ]
    for user in ("reader", "writer", "teamadmin", "member", "collab"):
        commands.append((None, ["org", "add-member", ORG, user]))
    for team, members in TEAMS.items():
        commands.append((None, ["team", "create", ORG, team]))
        for member in members:
            commands.append((None, ["team", "add-member", ORG, team, member]))
    for repository in WORKFLOWS.values():
        commands.append((None, ["repo", "create", repository]))
    commands.append((None, ["repo", "grant", f"{ORG}/app", "collab", "read"]))
    for actor, (user, scopes) in PATS.items():
        commands.append((actor, ["token", "create", "--user", user, "--scopes", scopes]))
    for actor, repository in WORKFLOWS.items():
        commands.append((actor, ["token", "workflow", "--repository", repository]))
    return commands
