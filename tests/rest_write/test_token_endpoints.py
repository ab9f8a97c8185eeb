"""Personal access tokens through ``/api/v3/user/tokens``: a token makes tokens with at most its
own scopes; the new token is shown once, works for ``docker login`` (the ``/token`` flow) and
stops working everywhere once revoked."""

from __future__ import annotations

import httpx
import pytest
from rwkit import ORG, PAT_RE, Pkg, World, basic, describe, expect, message, oci_code, unique


def registry_token(world: World, user: str, secret: str, scope: str) -> httpx.Response:
    """What ``docker login`` then a pull does first: ``GET /token`` with Basic credentials."""
    service = httpx.URL(world.url).netloc.decode()
    return httpx.get(
        f"{world.url}/token",
        params={"service": service, "scope": scope},
        headers={"Authorization": basic(user, secret)},
        timeout=30,
    )


def test_a_new_token_is_shown_once_works_for_docker_login_and_dies_when_revoked(
    world: World,
) -> None:
    pkg = Pkg(ORG, unique("login"))
    image = world.push_image("owner", pkg.full, "v1")
    world.grant(pkg, "users", "outsider", "read")

    body = {"scopes": ["read:packages"], "note": "laptop", "expires_in": "30d"}
    created = expect(world.rest("outsider", "POST", "/api/v3/user/tokens", body), 201).json()
    secret = created["token"]
    assert PAT_RE.fullmatch(secret), created
    assert created["scopes"] == ["read:packages"] and created["note"] == "laptop"
    assert created["expires_at"] is not None

    listed = expect(world.client("outsider").get("/api/v3/user/tokens"), 200).json()
    mine = [t for t in listed if t["id"] == created["id"]]
    assert len(mine) == 1 and mine[0]["token"] is None  # shown once
    assert secret not in world.client("outsider").get("/api/v3/user/tokens").text
    others = expect(world.client("owner").get("/api/v3/user/tokens"), 200).json()
    assert created["id"] not in {t["id"] for t in others}

    # docker login + pull: /token with Basic credentials, then the JWT on /v2.
    resp = expect(
        registry_token(world, "outsider", secret, f"repository:{pkg.full}:pull,push"), 200
    )
    jwt = resp.json()["token"]
    assert resp.json()["access_token"] == jwt
    bearer = {
        "Authorization": f"Bearer {jwt}",
        "Accept": "application/vnd.oci.image.manifest.v1+json",
    }
    pulled = expect(httpx.get(f"{world.url}/v2/{pkg.full}/manifests/v1", headers=bearer), 200)
    assert pulled.content == image.manifest
    # read:packages: the JWT does not grant push.
    push = httpx.post(f"{world.url}/v2/{pkg.full}/blobs/uploads/", headers=bearer)
    assert push.status_code in (401, 403), describe(push)
    with httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {secret}"}) as api:
        assert expect(api.get("/api/v3/user"), 200).json()["login"] == "outsider"

    expect(world.client("outsider").delete(f"/api/v3/user/tokens/{created['id']}"), 204)

    expect(registry_token(world, "outsider", secret, f"repository:{pkg.full}:pull"), 401)
    resp = httpx.get(f"{world.url}/v2/{pkg.full}/manifests/v1", headers=bearer)
    assert resp.status_code == 401 and oci_code(resp) == "UNAUTHORIZED", describe(resp)
    resp = httpx.get(
        f"{world.url}/v2/{pkg.full}/tags/list", headers={"Authorization": basic("x", secret)}
    )
    assert resp.status_code == 401, describe(resp)
    with httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {secret}"}) as api:
        expect(api.get("/api/v3/user"), 401)
    listed = expect(world.client("outsider").get("/api/v3/user/tokens"), 200).json()
    assert created["id"] not in {t["id"] for t in listed}
    expect(world.client("outsider").delete(f"/api/v3/user/tokens/{created['id']}"), 404)


@pytest.mark.parametrize(
    ("actor", "asked", "status"),
    [
        ("owner_ro", ["read:packages"], 201),
        ("owner_ro", ["read:packages", "write:packages"], 403),
        ("owner_ro", ["delete:packages"], 403),
        ("owner_rw", ["read:packages", "write:packages"], 201),
        ("owner_rw", ["delete:packages"], 403),
        ("owner_rd", ["read:packages", "delete:packages"], 201),
        ("owner_rd", ["write:packages"], 403),
        ("owner", ["read:packages", "write:packages", "delete:packages"], 201),
        # write:packages includes read:packages everywhere else (pulls, the REST reads).
        ("owner_wo", ["read:packages"], 201),
    ],
)
def test_a_token_makes_tokens_with_at_most_its_own_scopes(
    world: World, actor: str, asked: list[str], status: int
) -> None:
    resp = expect(world.rest(actor, "POST", "/api/v3/user/tokens", {"scopes": asked}), status)
    if status == 201:
        assert sorted(resp.json()["scopes"]) == sorted(asked)
        assert PAT_RE.fullmatch(resp.json()["token"])
    else:
        assert "scopes it lacks" in message(resp), describe(resp)


def test_who_may_make_and_revoke_tokens(world: World) -> None:
    expect(world.rest(None, "POST", "/api/v3/user/tokens", {"scopes": ["read:packages"]}), 401)
    expect(world.client(None).get("/api/v3/user/tokens"), 401)
    resp = world.rest("wf_app", "POST", "/api/v3/user/tokens", {"scopes": ["read:packages"]})
    assert "integration" in message(expect(resp, 403))
    expect(world.rest("owner", "POST", "/api/v3/user/tokens", {"scopes": []}), 422)
    expect(world.rest("owner", "POST", "/api/v3/user/tokens", {"scopes": ["admin:org"]}), 422)

    # Nobody revokes someone else's token, not even by guessing its id.
    theirs = expect(
        world.rest("owner", "POST", "/api/v3/user/tokens", {"scopes": ["read:packages"]}), 201
    ).json()
    expect(world.client("outsider").delete(f"/api/v3/user/tokens/{theirs['id']}"), 404)
    expect(world.client("admin").delete(f"/api/v3/user/tokens/{theirs['id']}"), 404)
    with httpx.Client(
        base_url=world.url, headers={"Authorization": f"token {theirs['token']}"}
    ) as api:
        expect(api.get("/api/v3/user"), 200)
