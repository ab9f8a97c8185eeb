"""The authorization matrix against a real ``cargobay serve`` process.

One server for the module. The set-up (operator CLI + a few pushes) builds the world that
:mod:`authzrules` describes; then every cell (actor x visibility x action) is one cheap HTTP
request, compared with ``authzrules.expected``: exact status and OCI error code. See
``docs/permissions.md`` for the rules.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authzkit import (
    OCI_INDEX,
    PAT_RE,
    WORKFLOW_RE,
    Cli,
    basic,
    bearer,
    catalog,
    challenge_params,
    claims_of,
    client,
    describe,
    digest_of,
    error_code,
    find_signing_key,
    get_manifest,
    granted_actions,
    only_token,
    push_blob,
    push_image,
    put_manifest,
)
from authzrules import (
    ACTIONS,
    ACTOR_BY_ID,
    ACTORS,
    DELETE_ACTIONS,
    NAME_UNKNOWN,
    PULL_ACTIONS,
    PUSH_ACTIONS,
    UNAUTHORIZED,
    VISIBILITIES,
    Actor,
    Kind,
    Outcome,
    expected,
    expected_catalog,
    expected_create,
    expected_token_actions,
    expected_token_actions_when_missing,
    new_package_visibility,
    scope_allows,
)
from oidc_issuer import Issuer

pytestmark = pytest.mark.skipif(
    os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference",
    reason="the reference registry has no accounts",
)

#: visibility -> the matrix package of that visibility
PACKAGES = {
    "public": "acme/pub-matrix",
    "internal": "acme/int-matrix",
    "private": "acme/priv-matrix",
}
OCTO_PASSWORD = "correct horse battery staple"  # a password: never accepted on /v2 or /token
WORKFLOW_USERNAME = "github-actions"  # the username is not checked

#: users the set-up creates (site admin ``root``, ``collab`` a collaborator on acme/app)
USERS = ("member", "reader", "writer", "admin2", "outsider", "suspended", "root", "collab")
ORG_NAMES = ("acme", "beta", "gamma", "delta")
#: actor id -> (user, scopes) of the PAT it holds
PATS = {
    "octo": ("octo", "read:packages,write:packages,delete:packages"),
    "member": ("member", "read:packages,write:packages,delete:packages"),
    "team-read": ("reader", "read:packages,write:packages,delete:packages"),
    "team-write": ("writer", "read:packages,write:packages,delete:packages"),
    "team-admin": ("admin2", "read:packages,write:packages,delete:packages"),
    "outsider": ("outsider", "read:packages,write:packages,delete:packages"),
    "site-admin": ("root", "read:packages,write:packages,delete:packages"),
    "repo-collab": ("collab", "read:packages,write:packages,delete:packages"),
    "team-admin-r": ("admin2", "read:packages"),
    "team-admin-w": ("admin2", "write:packages"),
    "team-admin-rd": ("admin2", "read:packages,delete:packages"),
    "revoked": ("admin2", "read:packages,write:packages,delete:packages"),
    "suspended": ("suspended", "read:packages,write:packages,delete:packages"),
}
#: actor id -> (repository, permission) of the workflow token it holds
WORKFLOWS = {
    "wf-app": ("acme/app", "write"),
    "wf-app-read": ("acme/app", "read"),
    "wf-tools": ("acme/tools", "write"),
    "wf-unrelated": ("acme/unrelated", "write"),
}
#: actor id -> the repository whose trust policy its exchanged OIDC ID token satisfies
EXCHANGED = {"wf-app-oidc": "acme/app", "wf-tools-oidc": "acme/tools"}


@dataclass
class Published:
    """The image pushed into a matrix package under tag ``base``."""

    manifest: bytes
    digest: str
    config_digest: str


@dataclass
class World:
    url: str
    data_dir: Path
    cli: Cli
    secrets: dict[str, str]  # actor id -> token (or password)
    clients: dict[str, httpx.Client]  # actor id -> client sending its credentials
    images: dict[str, Published]  # visibility -> image
    service: str = ""
    skipped_orgs: dict[str, str] = field(default_factory=dict)  # org -> why its cells skip

    @property
    def octo(self) -> httpx.Client:
        return self.clients["octo"]


def exchange_id_token(url: str, id_token: str) -> str:
    """A workflow token for an OIDC ID token (RFC 8693 at ``/token``)."""
    resp = httpx.post(
        f"{url}/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": id_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        },
        timeout=30,
    )
    assert resp.status_code == 200, describe(resp)
    return only_token(resp.json()["access_token"], WORKFLOW_RE)


def _setup(server: Any, issuer: Issuer) -> World:
    cli = Cli(server.data_dir, server.env)
    secrets: dict[str, str] = {}

    # octo has a password (to show passwords never work): the real entry point, with stdin
    cli.ok(
        "user",
        "create",
        "octo",
        "--email",
        "octo@example.com",
        "--password-stdin",
        stdin=OCTO_PASSWORD + "\n",
    )
    # everything else in dependency order, in one interpreter (a CLI start-up costs ~1 s)
    all_scopes = "read:packages,write:packages,delete:packages"
    commands: list[list[str]] = [["user", "create", u] for u in USERS if u != "root"]
    commands += [["user", "create", "root", "--admin"]]
    commands += [
        [
            "token",
            "create",
            "--user",
            "admin2",
            "--scopes",
            all_scopes,
            "--expires",
            "1s",
            "--note",
            "expires at once",
        ]
    ]
    expiring_index = len(commands) - 1
    commands += [["org", "create", org, "--owner", "octo"] for org in ORG_NAMES]
    commands += [
        ["org", "add-member", "acme", u]
        for u in ("member", "reader", "writer", "admin2", "suspended")
    ]
    commands += [["org", "add-member", org, "member"] for org in ORG_NAMES[1:]]
    commands += [["team", "create", "acme", t] for t in ("readers", "writers", "admins")]
    commands += [
        ["team", "add-member", "acme", "readers", "reader"],
        ["team", "add-member", "acme", "writers", "writer"],
        ["team", "add-member", "acme", "writers", "suspended"],
        ["team", "add-member", "acme", "admins", "admin2"],
    ]
    commands += [["repo", "create", r] for r in ("acme/app", "acme/tools", "acme/unrelated")]
    commands += [["repo", "grant", "acme/app", "collab", "write"]]
    commands += [
        ["org", "set-policy", "beta", "--visibilities", "public"],
        ["org", "set-policy", "gamma", "--visibilities", "internal,public"],
        ["org", "set-policy", "delta", "--visibilities", ""],
    ]
    empty_policy_index = len(commands) - 1
    pat_index = len(commands)
    commands += [
        ["token", "create", "--user", user, "--scopes", scopes, "--note", f"authz {actor}"]
        for actor, (user, scopes) in PATS.items()
    ]
    workflow_index = len(commands)
    commands += [
        ["token", "workflow", "--repository", repo, "--permission", permission]
        for repo, permission in WORKFLOWS.values()
    ]
    commands += [
        ["repo", "trust", "add", repo, "--issuer", issuer.url, "--claim", f"repository={repo}"]
        for repo in EXCHANGED.values()
    ]
    results = cli.batch(commands, may_fail=[empty_policy_index])
    expiring_since = time.monotonic()  # the expiring token was made before this
    secrets["expired"] = only_token(results[expiring_index].stdout.strip(), PAT_RE)
    for i, actor in enumerate(PATS):
        secrets[actor] = only_token(results[pat_index + i].stdout.strip(), PAT_RE)
    for i, actor in enumerate(WORKFLOWS):
        secrets[actor] = only_token(results[workflow_index + i].stdout.strip(), WORKFLOW_RE)
    for actor, repo in EXCHANGED.items():
        secrets[actor] = exchange_id_token(server.url, issuer.mint(server.url, repository=repo))
    secrets["password"] = OCTO_PASSWORD
    skipped_orgs = {}
    empty = results[empty_policy_index]
    if empty.returncode != 0:
        skipped_orgs["delta"] = (
            "`org set-policy delta --visibilities ''` refused: "
            + (empty.stderr or empty.stdout).strip()[-300:]
        )

    clients = {"anonymous": client(server.url)}
    for actor in ACTORS:
        if actor.id in WORKFLOWS or actor.id in EXCHANGED:
            clients[actor.id] = client(server.url, basic(WORKFLOW_USERNAME, secrets[actor.id]))
        elif actor.user:
            clients[actor.id] = client(server.url, basic(actor.user, secrets[actor.id]))

    # the matrix packages: first pushed by acme/app's workflow (linked, inheriting, published)
    images = {}
    for visibility, name in PACKAGES.items():
        resp, blobs, manifest = push_image(clients["wf-app"], name, "base", uuid.uuid4().hex)
        assert resp.status_code == 201, f"set-up push by acme/app's workflow: {describe(resp)}"
        images[visibility] = Published(manifest, digest_of(manifest), next(iter(blobs)))
    commands = [["package", "set-visibility", name, vis] for vis, name in PACKAGES.items()]
    for name in PACKAGES.values():
        commands += [
            ["package", "grant", name, "acme/readers", "read"],
            ["package", "grant", name, "acme/writers", "write"],
            ["package", "grant", name, "acme/admins", "admin"],
            ["package", "grant-actions", name, "acme/tools", "write"],
        ]
    cli.batch(commands)

    # the revoked and the suspended credentials work until they are revoked / suspended
    # (also warms any cache the server keeps)
    for actor in ("revoked", "suspended"):
        resp = get_manifest(clients[actor], PACKAGES["private"], "base")
        assert resp.status_code == 200, f"{actor} before revocation: {describe(resp)}"
    cli.batch([["token", "revoke", secrets["revoked"]], ["user", "suspend", "suspended"]])
    time.sleep(max(0.0, 2.0 - (time.monotonic() - expiring_since)))

    challenge = challenge_params(
        clients["anonymous"].get(f"/v2/{PACKAGES['private']}/manifests/base")
    )
    world = World(
        server.url,
        server.data_dir,
        cli,
        secrets,
        clients,
        images,
        challenge.get("service", ""),
        skipped_orgs,
    )
    return world


@pytest.fixture(scope="module")
def world(server_factory: Any) -> Iterator[World]:
    # The matrix signs in with dead credentials on purpose (hundreds of times, all from
    # 127.0.0.1): lift the failed-sign-in limit so it never answers 429 instead of the rules.
    # A real OIDC issuer on 127.0.0.1: its ID tokens become the exchanged workflow tokens.
    issuer = Issuer.start()
    server = server_factory(sign_in_failures=1_000_000, oidc_issuers=issuer.url)
    try:
        w = _setup(server, issuer)
        yield w
    finally:
        issuer.stop()
    for c in w.clients.values():
        c.close()


# -- performing one action ----------------------------------------------------------------------


def perform(
    world: World, http: httpx.Client, actor: Actor, visibility: str, action: str, flavour: str = ""
) -> httpx.Response:
    """Do ``action`` on the matrix package of ``visibility`` with ``http``; checks nothing."""
    name = PACKAGES[visibility]
    published = world.images[visibility]
    tag = f"{action}-{actor.id}{flavour}"
    if action == "pull":
        return get_manifest(http, name, "base")
    if action == "blob":
        return http.get(f"/v2/{name}/blobs/{published.config_digest}")
    if action == "tags":
        return http.get(f"/v2/{name}/tags/list")
    if action == "referrers":
        return http.get(f"/v2/{name}/referrers/{published.digest}")
    if action == "push":
        return put_manifest(http, name, tag, published.manifest)
    if action == "upload":
        return http.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    if action == "delete":
        ready = put_manifest(world.octo, name, tag, published.manifest)
        assert ready.status_code == 201, f"octo prepares the tag to delete: {describe(ready)}"
        return http.delete(f"/v2/{name}/manifests/{tag}")
    raise ValueError(action)


def check(
    world: World,
    actor: Actor,
    visibility: str,
    action: str,
    resp: httpx.Response,
    flavour: str = "",
) -> None:
    """The response is exactly what the rules say, and its effect is visible to octo."""
    want = expected(actor, visibility, action)
    got = Outcome(resp.status_code, error_code(resp))
    assert got == want, (
        f"{actor.id} ({actor.about}) {action} on the {visibility} package: "
        f"expected {want}, got {got}\n  {describe(resp)}"
    )
    name = PACKAGES[visibility]
    if want == UNAUTHORIZED and actor.kind is Kind.ANONYMOUS:
        check_challenge(world, resp, name, action)
    tag = f"{action}-{actor.id}{flavour}"
    if action == "push":
        after = get_manifest(world.octo, name, tag)
        assert after.status_code == (200 if want.code is None else 404), (
            f"after the push, octo sees: {describe(after)}"
        )
    elif action == "delete":
        after = get_manifest(world.octo, name, tag)
        assert after.status_code == (404 if want.code is None else 200), (
            f"after the delete, octo sees: {describe(after)}"
        )
    elif action == "upload" and want.code is None:
        assert resp.headers.get("location"), describe(resp)
    elif action == "pull" and want.code is None:
        assert resp.content == world.images[visibility].manifest, describe(resp)
    elif action == "tags" and want.code is None:
        body = resp.json()
        assert body.get("name") == name and "base" in (body.get("tags") or []), describe(resp)
    elif action == "referrers" and want.code is None:
        assert resp.headers.get("content-type", "").startswith(OCI_INDEX), describe(resp)


def check_challenge(world: World, resp: httpx.Response, name: str, action: str) -> None:
    """``WWW-Authenticate: Bearer realm="<base>/token",service="..",scope="repository:N:A"``."""
    params = challenge_params(resp)
    assert params.get("realm") == f"{world.url}/token", describe(resp)
    assert params.get("service"), describe(resp)
    needed = "pull" if action in PULL_ACTIONS else "push" if action in PUSH_ACTIONS else "delete"
    scope = params.get("scope", "")
    prefix = f"repository:{name}:"
    assert scope.startswith(prefix), describe(resp)
    actions = set(scope[len(prefix) :].split(","))
    assert needed in actions and actions <= {"pull", "push", "delete", "*"}, describe(resp)


# -- the matrix ---------------------------------------------------------------------------------

CELLS = [
    pytest.param(actor, visibility, action, id=f"{actor.id}-{visibility}-{action}")
    for actor in ACTORS
    for visibility in VISIBILITIES
    for action in ACTIONS
]


@pytest.mark.parametrize(("actor", "visibility", "action"), CELLS)
def test_cell(world: World, actor: Actor, visibility: str, action: str) -> None:
    resp = perform(world, world.clients[actor.id], actor, visibility, action)
    check(world, actor, visibility, action, resp)


@pytest.mark.parametrize("actor", ACTORS, ids=[a.id for a in ACTORS])
def test_catalog(world: World, actor: Actor) -> None:
    """``/v2/_catalog`` lists exactly the matrix packages the caller can read."""
    resp, names = catalog(world.clients[actor.id])
    want = expected_catalog(actor)
    if want is None:
        got = Outcome(resp.status_code, error_code(resp))
        assert got == UNAUTHORIZED, f"{actor.id}: expected {UNAUTHORIZED}, got {got}\n" + (
            describe(resp)
        )
        return
    assert resp.status_code == 200, describe(resp)
    seen = {v for v, name in PACKAGES.items() if name in names}
    assert seen == want, f"{actor.id} sees {sorted(seen)}, expected {sorted(want)}"


# -- registry tokens (/token) -------------------------------------------------------------------

BEARER_ACTORS = [
    ACTOR_BY_ID[a]
    for a in (
        "anonymous",
        "octo",
        "member",
        "team-read",
        "team-write",
        "team-admin",
        "team-admin-r",
        "team-admin-w",
        "team-admin-rd",
        "outsider",
        "site-admin",
        "repo-collab",
        "wf-app",
        "wf-app-read",
        "wf-tools",
        "wf-unrelated",
        "wf-app-oidc",
        "wf-tools-oidc",
    )
]
BEARER_ACTIONS = ("pull", "blob", "tags", "referrers", "push", "upload", "delete")


def registry_token(http: httpx.Client, service: str, *scopes: str) -> httpx.Response:
    params = [("service", service)] + [("scope", s) for s in scopes]
    return http.get("/token", params=params)


def token_of(resp: httpx.Response) -> str:
    assert resp.status_code == 200, describe(resp)
    body = resp.json()
    for key in ("token", "access_token", "expires_in", "issued_at"):
        assert key in body, f"/token answer lacks {key}: {body}"
    assert body["token"] == body["access_token"], body
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0, body
    return str(body["token"])


@pytest.mark.parametrize(
    ("actor", "visibility"),
    [pytest.param(a, v, id=f"{a.id}-{v}") for a in BEARER_ACTORS for v in VISIBILITIES],
)
def test_bearer_same_as_basic(world: World, actor: Actor, visibility: str) -> None:
    """/token with the actor's credentials and ``pull,push,delete`` grants the intersection
    (asking for more is no error); that JWT then gets exactly the Basic answers."""
    name = PACKAGES[visibility]
    token = token_of(
        registry_token(
            world.clients[actor.id], world.service, f"repository:{name}:pull,push,delete"
        )
    )
    assert granted_actions(token, name) == expected_token_actions(actor, visibility), (
        f"{actor.id}: the token grants {claims_of(token).get('access')}"
    )
    with client(world.url, bearer(token)) as http:
        for action in BEARER_ACTIONS:
            resp = perform(world, http, actor, visibility, action, "-bearer")
            check(world, actor, visibility, action, resp, "-bearer")


def test_token_with_several_scopes(world: World) -> None:
    pub, priv = PACKAGES["public"], PACKAGES["private"]
    token = token_of(
        registry_token(
            world.clients["team-read"],
            world.service,
            f"repository:{pub}:pull,push",
            f"repository:{priv}:pull,push,delete",
        )
    )
    assert granted_actions(token, pub) == {"pull"}
    assert granted_actions(token, priv) == {"pull"}


def test_token_post_form(world: World) -> None:
    """The OAuth2 password grant (``POST /token``) takes a PAT as the password."""
    name = PACKAGES["private"]
    resp = httpx.post(
        f"{world.url}/token",
        data={
            "grant_type": "password",
            "username": "octo",
            "password": world.secrets["octo"],
            "scope": f"repository:{name}:pull,push",
            "service": world.service,
        },
    )
    token = token_of(resp)
    assert granted_actions(token, name) == {"pull", "push"}
    with client(world.url, bearer(token)) as http:
        pulled = get_manifest(http, name, "base")
        assert pulled.status_code == 200, describe(pulled)


@pytest.mark.parametrize("secret", ["password", "revoked", "expired", "suspended", "garbage"])
def test_token_post_form_refuses(world: World, secret: str) -> None:
    password = world.secrets.get(secret, "cbp_" + "x" * 36)
    resp = httpx.post(
        f"{world.url}/token",
        data={
            "grant_type": "password",
            "username": "octo",
            "password": password,
            "scope": f"repository:{PACKAGES['public']}:pull",
            "service": world.service,
        },
    )
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


@pytest.mark.parametrize("actor", ["password", "revoked", "expired", "suspended"])
def test_token_refuses_bad_credentials(world: World, actor: str) -> None:
    resp = registry_token(
        world.clients[actor], world.service, f"repository:{PACKAGES['public']}:pull"
    )
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


def test_anonymous_token_carries_public_pull_only(world: World) -> None:
    scopes = [f"repository:{n}:pull,push,delete" for n in PACKAGES.values()]
    token = token_of(registry_token(world.clients["anonymous"], world.service, *scopes))
    assert granted_actions(token, PACKAGES["public"]) == {"pull"}
    assert granted_actions(token, PACKAGES["internal"]) == set()
    assert granted_actions(token, PACKAGES["private"]) == set()


def test_challenge_realm_hands_out_tokens(world: World) -> None:
    """What docker does: follow the challenge of a 401 to the realm, come back with a JWT."""
    name = PACKAGES["private"]
    first = get_manifest(world.clients["anonymous"], name, "base")
    params = challenge_params(first)
    assert params, describe(first)
    resp = world.clients["team-read"].get(
        params["realm"], params={"service": params["service"], "scope": params["scope"]}
    )
    with client(world.url, bearer(token_of(resp))) as http:
        pulled = get_manifest(http, name, "base")
        assert pulled.status_code == 200, describe(pulled)


@pytest.mark.parametrize("action", ["pull", "push", "delete"])
def test_jwt_for_one_repository_is_refused_for_another(world: World, action: str) -> None:
    """octo's JWT for the public package grants nothing on the private one."""
    token = token_of(
        registry_token(
            world.clients["octo"],
            world.service,
            f"repository:{PACKAGES['public']}:pull,push,delete",
        )
    )
    actor = ACTOR_BY_ID["octo"]
    with client(world.url, bearer(token)) as http:
        resp = perform(world, http, actor, "private", action, "-otherrepo")
    got = Outcome(resp.status_code, error_code(resp))
    assert got in (UNAUTHORIZED, Outcome(403, "DENIED"), NAME_UNKNOWN), describe(resp)


# -- forged registry tokens ---------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def real_jwt(world: World) -> str:
    """A genuine JWT of octo's for pull on the private package."""
    return token_of(
        registry_token(
            world.clients["octo"], world.service, f"repository:{PACKAGES['private']}:pull"
        )
    )


@pytest.fixture(scope="module")
def signing_key(world: World, real_jwt: str) -> bytes:
    alg = jwt.get_unverified_header(real_jwt).get("alg")
    if not str(alg).startswith("HS"):
        pytest.skip(f"registry tokens use {alg}: forging with the right key needs its private key")
    key = find_signing_key(world.data_dir, real_jwt)
    if key is None:
        pytest.fail(f"no file in {world.data_dir} holds the key that verifies the server's JWTs")
    return key


def _forge(real: str, key: bytes | None, **changes: Any) -> str:
    header = jwt.get_unverified_header(real)
    claims = {**claims_of(real), "jti": uuid.uuid4().hex, **changes}
    if key is None:  # alg none
        head = {**header, "alg": "none"}
        return f"{_b64url(json.dumps(head).encode())}.{_b64url(json.dumps(claims).encode())}."
    extra = {k: v for k, v in header.items() if k not in ("alg", "typ")}
    return jwt.encode(claims, key, algorithm=header["alg"], headers=extra)


def _pull_with(world: World, token: str) -> httpx.Response:
    with client(world.url, bearer(token)) as http:
        return get_manifest(http, PACKAGES["private"], "base")


def test_forged_jwt_control(world: World, real_jwt: str, signing_key: bytes) -> None:
    """With the right key and valid claims a forged JWT works: the refusals below are real."""
    resp = _pull_with(world, _forge(real_jwt, signing_key))
    assert resp.status_code == 200, describe(resp)


def test_jwt_alg_none(world: World, real_jwt: str) -> None:
    resp = _pull_with(world, _forge(real_jwt, None))
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


def test_jwt_wrong_key(world: World, real_jwt: str) -> None:
    resp = _pull_with(world, _forge(real_jwt, os.urandom(32)))
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


def test_jwt_tampered_claims(world: World, real_jwt: str) -> None:
    """A real token whose access claim is rewritten (to the internal package) after signing."""
    head, _payload, sig = real_jwt.split(".")
    claims = claims_of(real_jwt)
    claims["access"] = [{"type": "repository", "name": PACKAGES["internal"], "actions": ["pull"]}]
    forged = f"{head}.{_b64url(json.dumps(claims).encode())}.{sig}"
    with client(world.url, bearer(forged)) as http:
        resp = get_manifest(http, PACKAGES["internal"], "base")
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


def test_jwt_wrong_audience(world: World, real_jwt: str, signing_key: bytes) -> None:
    resp = _pull_with(world, _forge(real_jwt, signing_key, aud="another-registry.example"))
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


def test_jwt_expired(world: World, real_jwt: str, signing_key: bytes) -> None:
    now = int(time.time())
    resp = _pull_with(
        world, _forge(real_jwt, signing_key, iat=now - 3600, nbf=now - 3600, exp=now - 60)
    )
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


# -- authentication edge cases ------------------------------------------------------------------

MALFORMED = {
    "basic-not-base64": "Basic %%%not-base64%%%",
    "basic-no-colon": "Basic " + base64.b64encode(b"octo").decode(),
    "basic-unknown-token": basic("octo", "cbp_" + "A" * 36),
    "basic-not-a-token": basic("octo", "hunter2"),
    "bearer-not-a-jwt": "Bearer not-a-jwt",
    "bearer-three-dots": "Bearer a.b.c",
    "unknown-scheme": "Digest username=octo",
    "basic-only": "Basic",
    "bearer-only": "Bearer",
}


@pytest.mark.parametrize("header", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_authorization_is_401(world: World, header: str) -> None:
    """Even on a public pull, which needs no credentials at all."""
    with client(world.url, header) as http:
        resp = get_manifest(http, PACKAGES["public"], "base")
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


def test_mangled_token_is_401(world: World) -> None:
    """octo's PAT with its last character changed (the checksum no longer matches)."""
    token = world.secrets["octo"]
    mangled = token[:-1] + ("A" if token[-1] != "A" else "B")
    with client(world.url, basic("octo", mangled)) as http:
        resp = get_manifest(http, PACKAGES["public"], "base")
    assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


@pytest.mark.parametrize(
    ("actor", "username"), [("team-read", "someone-else"), ("wf-app", "octo"), ("octo", "")]
)
def test_basic_username_is_not_checked(world: World, actor: str, username: str) -> None:
    with client(world.url, basic(username, world.secrets[actor])) as http:
        resp = get_manifest(http, PACKAGES["private"], "base")
    assert resp.status_code == 200, describe(resp)


def test_valid_token_on_base_endpoint(world: World) -> None:
    """``docker login`` checks credentials with ``GET /v2/``."""
    good = world.clients["outsider"].get("/v2/")
    assert good.status_code == 200, describe(good)
    bad = world.clients["revoked"].get("/v2/")
    assert Outcome(bad.status_code, error_code(bad)) == UNAUTHORIZED, describe(bad)


def test_rejected_credentials_get_a_challenge(world: World) -> None:
    """RFC 7235: a 401 carries ``WWW-Authenticate``, so clients know where to get a token."""
    for actor in ("revoked", "expired", "suspended", "password"):
        resp = get_manifest(world.clients[actor], PACKAGES["public"], "base")
        assert challenge_params(resp).get("realm") == f"{world.url}/token", describe(resp)


# -- creating packages by pushing ---------------------------------------------------------------

CREATORS = [
    ACTOR_BY_ID[a]
    for a in (
        "anonymous",
        "octo",
        "member",
        "team-read",
        "outsider",
        "team-admin-r",
        "team-admin-w",
        "suspended",
        "wf-app",
        "wf-app-read",
        "wf-tools",
        "wf-unrelated",
        "wf-app-oidc",
        "wf-tools-oidc",
    )
]
NAMESPACES = ("acme", "octo", "beta", "gamma", "delta")


@pytest.mark.parametrize(
    ("actor", "namespace"),
    [pytest.param(a, ns, id=f"{a.id}-{ns}") for a in CREATORS for ns in NAMESPACES],
)
def test_create_package(world: World, actor: Actor, namespace: str) -> None:
    if namespace in world.skipped_orgs:
        pytest.skip(world.skipped_orgs[namespace])
    name = f"{namespace}/new-{actor.id}"
    http = world.clients[actor.id]
    want = expected_create(actor, namespace)
    if want.code is not None:
        resp = push_blob(http, name, os.urandom(64))
        got = Outcome(resp.status_code, error_code(resp))
        assert got == want, f"{actor.id} creates {name}: expected {want}, got {got}\n" + (
            describe(resp)
        )
        after = world.clients["site-admin"].get(f"/v2/{name}/tags/list")
        assert Outcome(after.status_code, error_code(after)) == NAME_UNKNOWN, (
            f"a refused push must not create the package: {describe(after)}"
        )
        return
    resp, _, _ = push_image(http, name, "v1", uuid.uuid4().hex)
    got = Outcome(resp.status_code, error_code(resp))
    assert got == want, f"{actor.id} creates {name}: expected {want}, got {got}\n{describe(resp)}"
    # its visibility follows the org policy ...
    visibility = new_package_visibility(namespace)
    anonymous = get_manifest(world.clients["anonymous"], name, "v1")
    assert anonymous.status_code == (200 if visibility == "public" else 401), (
        f"{name} should be {visibility}: {describe(anonymous)}"
    )
    outsider = get_manifest(world.clients["outsider"], name, "v1")
    assert outsider.status_code == (404 if visibility == "private" else 200), (
        f"{name} should be {visibility}: {describe(outsider)}"
    )
    # ... and the publisher is its admin (it may delete, scopes permitting)
    ready = put_manifest(
        world.clients["site-admin"], name, "to-delete", get_manifest(http, name, "v1").content
    )
    assert ready.status_code == 201, describe(ready)
    deleted = http.delete(f"/v2/{name}/manifests/to-delete")
    assert deleted.status_code == (202 if scope_allows(actor, "delete") else 403), (
        f"the publisher of {name} is its admin: {describe(deleted)}"
    )


def test_workflow_created_package_inherits_repository_access(world: World) -> None:
    """A package acme/app's workflow creates is linked to acme/app and inherits its access:
    collab (write on acme/app) may push, the acme/tools workflow can't see it."""
    name = "acme/wf-inherits"
    resp, _, manifest = push_image(world.clients["wf-app"], name, "v1", uuid.uuid4().hex)
    assert resp.status_code == 201, describe(resp)
    pushed = put_manifest(world.clients["repo-collab"], name, "by-collab", manifest)
    assert pushed.status_code == 201, describe(pushed)
    hidden = get_manifest(world.clients["wf-tools"], name, "v1")
    assert Outcome(hidden.status_code, error_code(hidden)) == NAME_UNKNOWN, describe(hidden)


@pytest.mark.parametrize(
    ("actor", "namespace"),
    [pytest.param(a, ns, id=f"{a.id}-{ns}") for a in CREATORS for ns in NAMESPACES],
)
def test_token_for_a_package_that_does_not_exist_yet(
    world: World, actor: Actor, namespace: str
) -> None:
    """Where the actor may create packages, a token asked for before the first push grants
    what the actor will have once the push created the package; elsewhere nothing (the same
    as for a package the actor cannot see). Nothing is created by asking."""
    if namespace in world.skipped_orgs:
        pytest.skip(world.skipped_orgs[namespace])
    name = f"{namespace}/not-yet-{actor.id}"
    resp = registry_token(world.clients[actor.id], world.service, f"repository:{name}:*")
    if actor.kind is Kind.REJECTED:
        assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)
        return
    token = token_of(resp)
    want = expected_token_actions_when_missing(actor, namespace)
    assert granted_actions(token, name) == want, (
        f"{actor.id}: the token grants {claims_of(token).get('access')}, expected {want}"
    )
    after = world.clients["site-admin"].get(f"/v2/{name}/tags/list")
    assert Outcome(after.status_code, error_code(after)) == NAME_UNKNOWN, describe(after)
    if "push" not in want:
        return
    # The token works once the package exists: push with it, then pull with it.
    with client(world.url, bearer(token)) as http:
        pushed, _, manifest = push_image(http, name, "v1", uuid.uuid4().hex)
        assert pushed.status_code == 201, describe(pushed)
        pulled = get_manifest(http, name, "v1")
        assert pulled.status_code == 200 and pulled.content == manifest, describe(pulled)


# -- operator CLI rules -------------------------------------------------------------------------


def test_public_package_cannot_be_made_private_again(world: World) -> None:
    name = "acme/one-way"
    resp, _, _ = push_image(world.octo, name, "v1", uuid.uuid4().hex)
    assert resp.status_code == 201, describe(resp)
    world.cli.ok("package", "set-visibility", name, "public")
    refused = world.cli.run("package", "set-visibility", name, "private")
    assert refused.returncode != 0, f"made a public package private: {refused.stdout}"
    message = (refused.stderr + refused.stdout).lower()
    assert "public" in message and "private" in message, f"unclear message: {message!r}"
    still = get_manifest(world.clients["anonymous"], name, "v1")
    assert still.status_code == 200, describe(still)


def test_token_list_never_shows_secrets(world: World) -> None:
    listing = world.cli.ok("token", "list", "--user", "admin2")
    for actor in ("team-admin", "team-admin-r", "revoked", "expired"):
        assert world.secrets[actor] not in listing, f"token list shows {actor}'s token"
    assert "revoked" in listing.lower()


TOKEN_LIST_COLUMNS = ("id", "kind", "scopes", "note", "created", "expires", "last used", "revoked")


def _token_rows(listing: str) -> list[dict[str, str]]:
    """``token list`` as rows (a tab-separated table with a header line)."""
    lines = [line for line in listing.splitlines() if line.strip()]
    header = [h.strip().lower() for h in lines[0].split("\t")]
    return [
        dict(zip(header, (c.strip() for c in line.split("\t")), strict=False)) for line in lines[1:]
    ]


def test_token_list_columns(world: World) -> None:
    listing = world.cli.ok("token", "list", "--user", "admin2")
    header = [h.strip().lower() for h in listing.splitlines()[0].split("\t")]
    missing = [c for c in TOKEN_LIST_COLUMNS if c not in header]
    assert not missing, f"token list lacks {missing}: {listing.splitlines()[0]!r}"


def test_revoke_by_id_and_last_used(world: World) -> None:
    """A token revoked by the id ``token list`` shows stops working at once; ``last used`` is
    filled in once it has been used."""
    note = f"revoke-by-id-{uuid.uuid4().hex[:8]}"
    token = only_token(
        world.cli.ok(
            "token", "create", "--user", "outsider", "--scopes", "read:packages", "--note", note
        ),
        PAT_RE,
    )
    with client(world.url, basic("outsider", token)) as http:
        assert http.get("/v2/").status_code == 200
        rows = [
            r
            for r in _token_rows(world.cli.ok("token", "list", "--user", "outsider"))
            if r.get("note") == note
        ]
        assert len(rows) == 1, rows
        assert rows[0].get("last used", "-") not in ("", "-"), rows[0]
        world.cli.ok("token", "revoke", rows[0]["id"])
        resp = get_manifest(http, PACKAGES["public"], "base")
        assert Outcome(resp.status_code, error_code(resp)) == UNAUTHORIZED, describe(resp)


def test_cell_count() -> None:
    """The matrix has what the brief asks for (a guard against a silently shrunk table)."""
    assert len(CELLS) == len(ACTORS) * len(VISIBILITIES) * len(ACTIONS) >= 300
    assert set(DELETE_ACTIONS) <= set(ACTIONS)
