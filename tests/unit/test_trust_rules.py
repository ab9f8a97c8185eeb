"""Trusted publishing in process: the rules of claim conditions, the issuer allow-list, and the
exchange service against a real (loopback) OIDC issuer and a SQLite database: what it logs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oidc_issuer import Issuer

from cargobay.auth.oidc import IdTokenVerifier
from cargobay.auth.oidc_keys import IssuerKeys, parse_issuers
from cargobay.metadata.engine import make_engine, migrate
from cargobay.metadata.sql import SqlMetadata
from cargobay.services.accounts import AccountService
from cargobay.services.administration import Administration
from cargobay.services.trust_policies import InvalidPolicy, check_conditions, matches
from cargobay.services.trusted_publishing import (
    ID_TOKEN_TYPE,
    ExchangeRefused,
    TrustedPublishing,
)

pytestmark = pytest.mark.anyio
AUDIENCE = "https://cr.example.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("text", "pattern", "matched"),
    [
        ("refs/heads/main", "refs/heads/main", True),
        ("refs/heads/main2", "refs/heads/main", False),
        ("refs/tags/v1.2", "refs/tags/v*", True),
        ("refs/heads/v1", "refs/tags/v*", False),
        ("acme/app", "acme/*", True),
        ("acme/app/sub", "acme/*", True),  # * also matches /
        ("Acme/app", "acme/app", False),  # case matters, as in the claims
        ("a[1]", "a[1]", False),  # [...] is a glob class: write a?1? for brackets
    ],
)
def test_patterns(text: str, pattern: str, matched: bool) -> None:
    assert matches(text, pattern) is matched


@pytest.mark.parametrize(
    "conditions",
    [{}, {"repository": "*"}, {"a": "*", "b": "?"}, {"iss": "x"}, {"1a": "x"}, {"a": ""}],
)
def test_conditions_refused(conditions: dict[str, str]) -> None:
    with pytest.raises(InvalidPolicy):
        check_conditions(conditions)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://token.actions.githubusercontent.com", True),
        ("https://gitlab.com, https://codeberg.org/api/actions", True),
        ("http://127.0.0.1:8080", True),
        ("http://10.1.2.3", True),
        ("http://localhost:9000/issuer", True),
        ("http://gitlab.example.com", False),  # plain http off the local network
        ("ftp://example.com", False),
        ("https://example.com/?x=1", False),
        ("https://user:pw@example.com", False),
        ("gitlab.com", False),
    ],
)
def test_issuer_list(value: str, ok: bool) -> None:
    if ok:
        assert parse_issuers(value)
    else:
        with pytest.raises(ValueError):
            parse_issuers(value)


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    started = Issuer.start()
    yield started
    started.stop()


@pytest.fixture
def service(tmp_path: Path, issuer: Issuer) -> Iterator[TrustedPublishing]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    metadata = SqlMetadata(engine)
    accounts = AccountService(metadata, workflow_token_ttl=7200)
    keys = IssuerKeys(parse_issuers(issuer.url))
    yield TrustedPublishing(
        metadata.trust,
        accounts,
        Administration(accounts),
        IdTokenVerifier(keys),
        default_audience=AUDIENCE,
    )
    metadata.close()


async def test_the_exchange_is_logged_without_the_tokens(
    service: TrustedPublishing, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    await service.accounts.create_org("acme", await _user(service))
    await service.accounts.create_repository("acme/app", private=False)
    policy = await service.add("acme/app", issuer.url, None, {"repository": "acme/app"})
    id_token = issuer.mint(AUDIENCE, repository="acme/app")
    with caplog.at_level(logging.INFO, logger="cargobay.services.trusted_publishing"):
        done = await service.exchange(id_token, ID_TOKEN_TYPE, None, [])
        with pytest.raises(ExchangeRefused):
            await service.exchange(id_token, ID_TOKEN_TYPE, None, [])  # replayed
    assert done.repository == "acme/app" and done.policy_id == policy.id
    assert done.expires_in == 3600  # the 7200 s setting, capped at an hour
    logged = caplog.text
    assert f"issuer={issuer.url}" in logged
    assert "subject=repo:acme/app:ref:refs/heads/main" in logged
    assert f"repository=acme/app policy={policy.id}" in logged
    assert "replayed" in logged
    assert done.token not in logged and id_token not in logged
    assert id_token.split(".")[2] not in logged


async def _user(service: TrustedPublishing) -> str:
    await service.accounts.create_user("octo", email=None, password=None, site_admin=False)
    return "octo"


async def test_an_issuer_that_does_not_answer_is_503_then_not_hammered(
    service: TrustedPublishing, issuer: Issuer
) -> None:
    id_token = issuer.mint(AUDIENCE, repository="acme/app")
    issuer.stop()
    for _ in range(2):
        with pytest.raises(ExchangeRefused) as refused:
            await service.exchange(id_token, ID_TOKEN_TYPE, None, [])
        assert refused.value.status == 503
        assert refused.value.error == "temporarily_unavailable"


async def test_keys_come_only_from_the_issuers_origin() -> None:
    """A discovery document naming a JWKS elsewhere (or another issuer) is refused: only the
    listed issuer's own origin is ever contacted."""
    from cargobay.auth.oidc_keys import IssuerUnavailable

    fetched: list[str] = []
    documents = {
        "https://ci.example.com/.well-known/openid-configuration": {
            "issuer": "https://ci.example.com",
            "jwks_uri": "https://169.254.169.254/latest/keys",
        },
        "https://other.example.com/.well-known/openid-configuration": {
            "issuer": "https://evil.example.com",
            "jwks_uri": "https://other.example.com/keys",
        },
    }

    def fetch(url: str) -> object:
        fetched.append(url)
        return documents[url]

    keys = IssuerKeys(("https://ci.example.com", "https://other.example.com"), fetch=fetch)
    for issuer in keys.issuers:
        with pytest.raises(IssuerUnavailable):
            await keys.candidates(issuer, "k1")
    assert fetched == [
        "https://ci.example.com/.well-known/openid-configuration",
        "https://other.example.com/.well-known/openid-configuration",
    ]
