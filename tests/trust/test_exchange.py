"""The token exchange at ``/token`` (RFC 8693) against a real server and real OIDC issuers:
what a CI job gets, and every refusal (400, the RFC 6749 ``error``, nothing changed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from oidc_issuer import Issuer, new_key
from trustkit import ACCESS_TOKEN_TYPE, REFRESH, Trust

APP_SCOPE = "repository:octo/app:push,pull"


def exchanged(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token


def refused(trust: Trust, resp: httpx.Response, error: str, before: tuple[int, int]) -> str:
    """A 400 with ``error``; no token was made and no ID token recorded. The description."""
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["error"] == error, body
    assert set(body) == {"error", "error_description"}, body
    assert trust.counts() == before
    description: str = body["error_description"]
    return description


# -- what a CI job gets --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_an_id_token_becomes_a_workflow_token(trust: Trust, alg: str) -> None:
    id_token = trust.listed.mint(trust.audience, alg=alg, repository="octo/app")
    resp = trust.exchange(id_token, scope=APP_SCOPE)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"access_token", "issued_token_type", "token_type", "expires_in"}
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("cbw_")
    # ID token: 300 s left; workflow tokens: 3600 s; never more than an hour
    assert 0 < body["expires_in"] <= min(3600, 300 + 3600)
    assert resp.headers["cache-control"] == "no-store"
    v2 = httpx.get(
        f"{trust.server.url}/v2/", auth=("x-access-token", body["access_token"]), timeout=10
    )
    assert v2.status_code == 200


def test_without_a_scope_the_one_matching_repository_is_chosen(trust: Trust) -> None:
    token = exchanged(trust.exchange(trust.listed.mint(trust.audience, repository="octo/app")))
    # it is octo/app's: it may create octo/app-image (owner octo), and the package is linked
    created = httpx.post(
        f"{trust.server.url}/v2/octo/noscope-{int(time.time())}/blobs/uploads/",
        auth=("x-access-token", token),
        timeout=10,
    )
    assert created.status_code == 202, created.text


def test_private_repositories_exchange_like_public_ones(trust: Trust) -> None:
    id_token = trust.listed.mint(trust.audience, repository="octo/secret")
    exchanged(trust.exchange(id_token, scope="repository:octo/secret:push,pull"))
    exchanged(trust.exchange(trust.listed.mint(trust.audience, repository="octo/secret")))


@pytest.mark.parametrize("protected", ["true", True])
def test_gitlab_claims_match_as_json_spells_them(trust: Trust, protected: object) -> None:
    """GitLab's ``ref_protected`` is the string "true"; a boolean true matches it too."""
    id_token = trust.listed.mint(
        trust.audience, repository=None, project_path="octo/gl", ref_protected=protected
    )
    exchanged(trust.exchange(id_token, scope="repository:octo/gl:push,pull"))


def test_a_rotated_key_is_fetched_once(trust: Trust) -> None:
    """A key id the registry hasn't seen makes it fetch the keys again (once), so an issuer's
    key rotation needs no restart."""
    rotated = new_key("ES256")
    trust.listed.keys.append(rotated)
    time.sleep(REFRESH + 0.5)  # since any earlier fetch
    fetches = trust.listed.key_fetches()
    id_token = trust.listed.mint(trust.audience, key=rotated, repository="octo/app")
    exchanged(trust.exchange(id_token, scope=APP_SCOPE))
    assert trust.listed.key_fetches() == fetches + 1


# -- refusals ----------------------------------------------------------------------------------


def test_issuer_not_listed_is_refused_and_never_contacted(trust: Trust) -> None:
    before = trust.counts()
    id_token = trust.unlisted.mint(trust.audience, repository="octo/app")
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert "not trusted" in description
    refused(trust, trust.exchange(trust.unlisted.mint(trust.audience)), "invalid_grant", before)
    assert trust.unlisted.requests == []


def test_wrong_issuer(trust: Trust) -> None:
    """octo/app trusts ``listed``; a token of ``other`` (also listed) for octo/app is refused."""
    before = trust.counts()
    id_token = trust.other.mint(trust.audience, repository="octo/app")
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert description == f"no trust policy of octo/app trusts the issuer {trust.other.url}"


def test_an_issuer_impersonating_a_listed_one_is_refused(trust: Trust) -> None:
    """Claims ``iss`` of a listed issuer but is signed with another key: the signature fails."""
    before = trust.counts()
    id_token = trust.unlisted.mint(trust.audience, iss=trust.listed.url, repository="octo/app")
    kid = trust.unlisted.key().kid
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert kid in description


def test_wrong_audience(trust: Trust) -> None:
    before = trust.counts()
    id_token = trust.listed.mint("https://registry.example.com", repository="octo/app")
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert description == (
        "no trust policy of octo/app matches: aud is https://registry.example.com,"
        f" the policy wants {trust.audience}"
    )


def test_expired(trust: Trust) -> None:
    before = trust.counts()
    now = int(time.time())
    id_token = trust.listed.mint(
        trust.audience, repository="octo/app", iat=now - 900, nbf=now - 900, exp=now - 300
    )
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert "expired" in description


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_valid_yet(trust: Trust, claim: str) -> None:
    before = trust.counts()
    later = int(time.time()) + 600
    id_token = trust.listed.mint(trust.audience, repository="octo/app", **{claim: later})
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert "not valid yet" in description


def test_a_claim_that_does_not_match(trust: Trust) -> None:
    before = trust.counts()
    id_token = trust.listed.mint(trust.audience, repository="octo/app", ref="refs/heads/dev")
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert description == (
        "no trust policy of octo/app matches: ref is refs/heads/dev, the policy wants"
        " refs/heads/main"
    )
    # without a scope: nothing matches, and the answer says how to learn why
    description = refused(trust, trust.exchange(id_token), "invalid_grant", before)
    assert "no trust policy matches" in description and "scope=" in description


def test_a_missing_claim(trust: Trust) -> None:
    before = trust.counts()
    id_token = trust.listed.mint(trust.audience, repository=None, project_path="octo/gl")
    description = refused(
        trust, trust.exchange(id_token, scope="repository:octo/gl:push"), "invalid_grant", before
    )
    assert "no ref_protected claim" in description


def test_alg_none(trust: Trust) -> None:
    before = trust.counts()
    id_token = trust.listed.unsigned(trust.audience, repository="octo/app")
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert "'none'" in description


def test_hs256_signed_with_the_public_key(trust: Trust) -> None:
    before = trust.counts()
    id_token = trust.listed.hs256_with_public_key(trust.audience, repository="octo/app")
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert "'HS256'" in description


def test_a_key_carried_in_the_token_is_never_used(trust: Trust) -> None:
    """``jwk``/``jku``/``x5u`` headers point at the forger's key: ignored, so the unknown kid
    is refused (and ``jku`` is not fetched: the forger's server sees nothing)."""
    before = trust.counts()
    forger = Issuer.start()
    try:
        key = forger.key()
        headers = {
            "jwk": key.public_jwk,
            "jku": forger.url + "/.well-known/jwks",
            "x5u": forger.url,
        }
        id_token = forger.mint(trust.audience, iss=trust.listed.url, key=key, headers=headers)
        description = refused(
            trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before
        )
        assert "no signing key" in description
        assert forger.requests == []
    finally:
        forger.stop()


def test_an_unknown_kid_refreshes_once_then_is_refused(trust: Trust) -> None:
    before = trust.counts()
    stranger = new_key("RS256")
    time.sleep(REFRESH + 0.5)  # since any earlier fetch
    fetches = trust.listed.key_fetches()
    for _ in range(3):
        id_token = trust.listed.mint(trust.audience, key=stranger, repository="octo/app")
        description = refused(
            trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before
        )
        assert stranger.kid in description
    # one refetch for the first; the others come within the interval: the cache answers
    assert trust.listed.key_fetches() == fetches + 1


def test_a_replayed_jti(trust: Trust) -> None:
    id_token = trust.listed.mint(trust.audience, repository="octo/app")
    exchanged(trust.exchange(id_token, scope=APP_SCOPE))
    before = trust.counts()
    description = refused(trust, trust.exchange(id_token, scope=APP_SCOPE), "invalid_grant", before)
    assert "already exchanged" in description
    # another token with the same jti too
    again = trust.listed.mint(
        trust.audience, repository="octo/app", jti=json.loads(_payload(id_token))["jti"]
    )
    refused(trust, trust.exchange(again, scope=APP_SCOPE), "invalid_grant", before)


def test_an_id_token_for_one_repository_used_for_another(trust: Trust) -> None:
    """octo/app's ID token asking for octo/lib, the private octo/secret, or a repository that
    does not exist: refused, private and missing alike; then it still works for octo/app."""
    id_token = trust.listed.mint(trust.audience, repository="octo/app")
    before = trust.counts()
    answers = {}
    for name in ("octo/lib", "octo/secret", "octo/missing", "octo/nopolicy"):
        answers[name] = refused(
            trust,
            trust.exchange(id_token, scope=f"repository:{name}:push,pull"),
            "invalid_grant",
            before,
        )
    generic = "no trust policy of {} matches this ID token (issuer {}, subject {})"
    subject = "repo:octo/app:ref:refs/heads/main"
    for name in ("octo/secret", "octo/missing"):
        assert answers[name] == generic.format(name, trust.listed.url, subject)
    exchanged(trust.exchange(id_token, scope=APP_SCOPE))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda form: form.pop("subject_token"), "invalid_request"),
        (lambda form: form.update(subject_token_type="urn:x"), "invalid_request"),
        (lambda form: form.update(requested_token_type="urn:x"), "invalid_request"),
        (lambda form: form.update(scope="registry:catalog:*"), "invalid_request"),
        (lambda form: form.update(scope="repository:octo/app/sub:push"), "invalid_request"),
        (
            lambda form: form.update(scope="repository:octo/a:push repository:octo/b:push"),
            "invalid_request",
        ),
        (lambda form: form.update(subject_token="not-a-jwt"), "invalid_grant"),
    ],
)
def test_malformed_requests(
    trust: Trust, change: Callable[[dict[str, str]], object], error: str
) -> None:
    before = trust.counts()
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": trust.listed.mint(trust.audience, repository="octo/app"),
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "scope": APP_SCOPE,
    }
    change(form)
    resp = httpx.post(f"{trust.server.url}/token", data=form, timeout=30)
    refused(trust, resp, error, before)


def _payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()
