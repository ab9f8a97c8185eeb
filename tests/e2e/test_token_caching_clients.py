"""Clients that keep registry tokens for a session, imitated over HTTP.

Two ways of reacting to a refusal, as real clients do (``docs/permissions.md`` names where in
each client's source):

* ``refresh-on-401``: fetch a new token with the challenge's scope after a 401 carrying a
  Bearer challenge, and give up on a 403 (the docker CLI and daemon, containerd,
  containers/image, Distribution's client, the OCI conformance suite);
* ``refresh-on-403``: after a 401 or 403 send the same token once more, and fetch a new one
  only if that answer is a 403 (the ORAS Python SDK 0.2.x, ``Registry.do_request``).

Both keep one token per repository and kind of request, like the conformance suite: the token
fetched by the first GET is used for every later GET and HEAD of that repository.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE
from images import OCI_MANIFEST
from kit import descriptor, digest_of, explain
from registry_http import EMPTY_CONFIG, EMPTY_CONFIG_TYPE, with_params

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no token service"),
]

STYLES = ("refresh-on-401", "refresh-on-403")
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def challenge_of(resp: httpx.Response) -> dict[str, str]:
    header = resp.headers.get("www-authenticate", "")
    if not header.lower().startswith("bearer "):
        return {}
    return dict(_PARAM.findall(header))


def kind_of(method: str) -> str:
    return {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "push")


@dataclass
class CachingClient:
    """A registry client keeping one token per (repository, kind of request)."""

    http: httpx.Client
    credentials: tuple[str, str]
    style: str
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    #: every /token request: the scope asked for
    fetched: list[str] = field(default_factory=list)
    #: every /v2 answer: (method, path, status)
    answers: list[tuple[str, str, int]] = field(default_factory=list)

    def fetch_token(self, challenge: dict[str, str]) -> str:
        scope = challenge.get("scope", "")
        self.fetched.append(scope)
        r = self.http.get(
            challenge["realm"],
            params={"service": challenge.get("service", ""), "scope": scope},
            auth=self.credentials,
        )
        assert r.status_code == 200, explain(r)
        return str(r.json()["token"])

    def send(
        self, method: str, url: str, repo: str, token: str | None, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        r = self.http.request(method, url, headers=headers, **kw)
        self.answers.append((method, str(httpx.URL(url).path), r.status_code))
        return r

    def request(self, method: str, url: str, repo: str, **kw: Any) -> httpx.Response:
        key = (repo, kind_of(method))
        token = self.tokens.get(key)
        r = self.send(method, url, repo, token, **kw)
        if r.status_code not in (401, 403) or not challenge_of(r):
            return r
        if self.style == "refresh-on-401" or token is None:
            if r.status_code != 401:
                return r
        else:  # refresh-on-403: the same token once more; a new one only after a 403
            r = self.send(method, url, repo, token, **kw)
            if r.status_code != 403 or not challenge_of(r):
                return r
        token = self.tokens[key] = self.fetch_token(challenge_of(r))
        return self.send(method, url, repo, token, **kw)

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = digest_of(data)
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", repo)
        assert r.status_code == 202, explain(r)
        r = self.request(
            "PUT",
            str(with_params(r.headers["location"], digest=digest)),
            repo,
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, explain(r)
        return digest

    def push_image(self, repo: str, tag: str) -> bytes:
        layer = os.urandom(256)
        self.push_blob(repo, EMPTY_CONFIG)
        self.push_blob(repo, layer)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(EMPTY_CONFIG_TYPE, EMPTY_CONFIG),
                "layers": [descriptor("application/octet-stream", layer)],
            }
        ).encode()
        r = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            repo,
            content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code == 201, explain(r)
        return manifest


@pytest.fixture(scope="module")
def user(registry: Any) -> tuple[str, str]:
    """A plain user (no site admin) with a read/write/delete token: ``(login, token)``."""
    login = f"cache{secrets.token_hex(3)}"
    registry.cli("user", "create", login)
    token = registry.cli(
        "token",
        "create",
        "--user",
        login,
        "--scopes",
        "read:packages,write:packages,delete:packages",
    ).strip()
    return login, token


@pytest.fixture(params=STYLES)
def client(
    request: pytest.FixtureRequest, registry: Any, user: tuple[str, str]
) -> Iterator[CachingClient]:
    with httpx.Client(base_url=registry.url, timeout=30) as http:
        yield CachingClient(http, user, request.param)


def test_token_fetched_before_the_repository_existed(client: CachingClient) -> None:
    """The conformance suite's flow: the first GET (the repository does not exist yet) fetches
    a pull token; a push fetches a push token; later GETs and HEADs reuse the first token."""
    repo = f"{client.credentials[0]}/new-{secrets.token_hex(3)}"
    r = client.request("GET", f"/v2/{repo}/manifests/v1", repo)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN", explain(r)
    assert client.fetched == [f"repository:{repo}:pull"]
    manifest = client.push_image(repo, "v1")
    fetched = len(client.fetched)
    for method in ("GET", "HEAD"):
        r = client.request(
            method, f"/v2/{repo}/manifests/v1", repo, headers={"Accept": OCI_MANIFEST}
        )
        assert r.status_code == 200, explain(r)
        assert r.headers["docker-content-digest"] == digest_of(manifest)
        assert r.content == (manifest if method == "GET" else b"")
    tags = client.request("GET", f"/v2/{repo}/tags/list", repo)
    assert tags.status_code == 200 and tags.json()["tags"] == ["v1"], explain(tags)
    unknown = digest_of(os.urandom(8))
    refs = client.request("GET", f"/v2/{repo}/referrers/{unknown}", repo)
    assert refs.status_code == 200, explain(refs)
    assert refs.headers["content-type"] == "application/vnd.oci.image.index.v1+json"
    assert refs.json()["manifests"] == [], explain(refs)
    assert len(client.fetched) == fetched, f"the first token stopped working: {client.answers}"


def test_a_narrower_token_is_widened(client: CachingClient) -> None:
    """One token for everything (like the ORAS SDK): a pull token, then a push. The registry
    asks for a wider token in the way each kind of client understands: 401 with
    ``error="insufficient_scope"`` first, 403 when the same token comes back."""
    repo = f"{client.credentials[0]}/narrow-{secrets.token_hex(3)}"
    client.push_image(repo, "v1")
    client.tokens = {}
    pull = client.request("GET", f"/v2/{repo}/tags/list", repo)
    assert pull.status_code == 200, explain(pull)
    client.tokens[(repo, "push")] = client.tokens[(repo, "pull")]  # reuse the pull token
    client.answers.clear()
    start = client.request("POST", f"/v2/{repo}/blobs/uploads/", repo)
    assert start.status_code == 202, f"{explain(start)}\n{client.answers}"
    statuses = [status for _, _, status in client.answers]
    expected = [401, 202] if client.style == "refresh-on-401" else [401, 403, 202]
    assert statuses == expected, client.answers
    assert client.fetched[-1] == f"repository:{repo}:pull,push"


def test_the_refusals_carry_the_scope_to_ask_for(registry: Any, user: tuple[str, str]) -> None:
    """The 401 and the 403 both name the scope that is missing, with insufficient_scope; the
    403 only for the same request sent again with the same token."""
    repo = f"{user[0]}/refusals-{secrets.token_hex(3)}"
    with httpx.Client(base_url=registry.url, timeout=30) as http:
        CachingClient(http, user, "refresh-on-401").push_image(repo, "v1")
        r = http.get(
            "/token",
            params={"service": registry.address, "scope": f"repository:{repo}:pull"},
            auth=user,
        )
        bearer = {"Authorization": f"Bearer {r.json()['token']}"}
        first = http.post(f"/v2/{repo}/blobs/uploads/", headers=bearer)
        # another request with the same token (like a concurrent one): a 401 of its own
        other = http.put(
            f"/v2/{repo}/manifests/v2",
            headers={**bearer, "Content-Type": OCI_MANIFEST},
            content=b"{}",
        )
        again = http.post(f"/v2/{repo}/blobs/uploads/", headers=bearer)
    assert (first.status_code, other.status_code, again.status_code) == (401, 401, 403), (
        explain(first),
        explain(other),
        explain(again),
    )
    assert again.json()["errors"][0]["code"] == "DENIED", explain(again)
    for resp in (first, other, again):
        params = challenge_of(resp)
        assert params["error"] == "insufficient_scope", explain(resp)
        assert params["scope"] == f"repository:{repo}:pull,push", explain(resp)
        assert params["realm"] == f"{registry.url}/token", explain(resp)


def test_mount_with_a_token_for_the_target_only(client: CachingClient, registry: Any) -> None:
    """A mount ``from`` a repository the caller can read, with a push token for the target
    only: the registry asks for a token that names both, and then mounts."""
    login = client.credentials[0]
    source, target = f"{login}/src-{secrets.token_hex(3)}", f"{login}/dst-{secrets.token_hex(3)}"
    digest = client.push_blob(source, os.urandom(512))
    client.push_blob(target, os.urandom(64))  # a push token for the target
    client.answers.clear()
    r = client.request("POST", f"/v2/{target}/blobs/uploads/?mount={digest}&from={source}", target)
    assert r.status_code == 201, f"{explain(r)}\n{client.answers}"
    assert r.headers["docker-content-digest"] == digest
    assert client.fetched[-1] == f"repository:{target}:pull,push repository:{source}:pull"
    blob = client.request("GET", f"/v2/{target}/blobs/{digest}", target)
    assert blob.status_code == 200 and digest_of(blob.content) == digest, explain(blob)


def test_mount_from_a_repository_the_caller_cannot_read(
    registry: Any, http: httpx.Client, user: tuple[str, str], repo: str
) -> None:
    """Someone else's private blob, with ``from`` naming its repository or without ``from``:
    an upload session (202), exactly as for a blob that exists nowhere; nothing mounted, and
    no challenge for the other repository."""
    data = os.urandom(300)
    digest = digest_of(data)
    r = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, explain(r)  # the test user's private package
    target = f"{user[0]}/mount-{secrets.token_hex(3)}"
    with httpx.Client(base_url=registry.url, timeout=30) as other:
        caching = CachingClient(other, user, "refresh-on-401")
        answers: list[tuple[int, list[str]]] = []
        missing = digest_of(os.urandom(8))
        for query in (f"&from={repo}", ""):  # with and without ``from``
            for source_digest in (digest, missing):
                resp = caching.request(
                    "POST", f"/v2/{target}/blobs/uploads/?mount={source_digest}{query}", target
                )
                answers.append((resp.status_code, sorted(challenge_of(resp))))
                assert resp.status_code == 202 and resp.headers.get("location"), explain(resp)
                probe = caching.request("HEAD", f"/v2/{target}/blobs/{source_digest}", target)
                assert probe.status_code == 404, explain(probe)
    assert len(set(map(str, answers))) == 1, answers
    assert not any(repo in scope for scope in caching.fetched), caching.fetched


@pytest.fixture(scope="module")
def short_lived(server_factory: Any) -> Any:
    """A registry whose registry tokens live 10 seconds (the least it allows)."""
    return server_factory(token_ttl=10)


@pytest.mark.parametrize("style", STYLES)
def test_an_expired_token_is_replaced(short_lived: Any, style: str) -> None:
    """A token kept past its expiry: 401 with ``error="invalid_token"`` and the scope to ask
    for, then 403 if the same token comes back; either kind of client gets a new token."""
    repo = f"e2e/expiry-{secrets.token_hex(3)}"
    with httpx.Client(base_url=short_lived.url, timeout=30) as http:
        client = CachingClient(http, short_lived.auth, style)
        client.push_image(repo, "v1")
        assert client.request("GET", f"/v2/{repo}/tags/list", repo).status_code == 200
        time.sleep(11)
        client.answers.clear()
        r = client.request("GET", f"/v2/{repo}/tags/list", repo)
        assert r.status_code == 200, f"{explain(r)}\n{client.answers}"
    statuses = [status for _, _, status in client.answers]
    assert statuses == ([401, 200] if style == "refresh-on-401" else [401, 403, 200])
    assert client.fetched[-1] == f"repository:{repo}:pull"
