"""Token formats, registry JWTs, scopes and roles, sign-in limiting."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from cargobay.auth.access import Action
from cargobay.auth.passwords import hash_password, verify_password
from cargobay.auth.policy import Role, Scope, parse_scopes, scope_allows, visibility_role
from cargobay.auth.registry_tokens import GrantedAccess, RegistryTokens, load_or_create_key
from cargobay.auth.scope_refusals import ScopeRefusals
from cargobay.auth.secrets import TokenKind, hash_token, new_token, token_kind
from cargobay.errors import Unauthenticated


def test_tokens_carry_a_prefix_and_a_checksum() -> None:
    pat, workflow = new_token(TokenKind.PAT), new_token(TokenKind.WORKFLOW)
    assert pat.startswith("cbp_") and len(pat) == 40
    assert workflow.startswith("cbw_")
    assert token_kind(pat) is TokenKind.PAT and token_kind(workflow) is TokenKind.WORKFLOW
    typo = pat[:-1] + ("A" if pat[-1] != "A" else "B")
    assert token_kind(typo) is None
    assert token_kind("cbp_short") is None and token_kind("hunter2") is None
    assert hash_token(pat) != pat and len(hash_token(pat)) == 64
    assert new_token(TokenKind.PAT) != pat


def test_passwords_are_hashed_with_argon2() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong")
    assert not verify_password(None, "anything")


@pytest.fixture
def tokens(tmp_path: Path) -> RegistryTokens:
    return RegistryTokens(load_or_create_key(tmp_path / "key"), service="reg.test", ttl=60)


def test_registry_token_round_trip(tokens: RegistryTokens) -> None:
    token, _, expires_in = tokens.issue(
        "octo", [GrantedAccess("repository", "acme/app", frozenset({"pull"}))], 7
    )
    claims = tokens.verify(token)
    assert expires_in == 60 and claims.subject == "octo" and claims.token_id == 7
    assert claims.actions_for("repository", "acme/app") == {"pull"}
    assert claims.actions_for("repository", "acme/other") == frozenset()


def test_the_key_survives_restarts(tmp_path: Path) -> None:
    assert load_or_create_key(tmp_path / "k") == load_or_create_key(tmp_path / "k")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "forge",
    [
        lambda key, kid: jwt.encode(_claims(), None, algorithm="none", headers={"kid": kid}),
        lambda key, kid: jwt.encode(_claims(), b"x" * 32, algorithm="HS256", headers={"kid": kid}),
        lambda key, kid: jwt.encode(
            _claims(aud="other"), key, algorithm="HS256", headers={"kid": kid}
        ),
        lambda key, kid: jwt.encode(_claims(exp=-10), key, algorithm="HS256", headers={"kid": kid}),
        lambda key, kid: jwt.encode(_claims(), key, algorithm="HS256", headers={"kid": "nope"}),
        lambda key, kid: jwt.encode({"sub": "x"}, key, algorithm="HS256", headers={"kid": kid}),
        lambda key, kid: "not.a.jwt",
        lambda key, kid: "",
    ],
    ids=[
        "alg-none",
        "wrong-key",
        "wrong-audience",
        "expired",
        "unknown-kid",
        "no-claims",
        "garbage",
        "empty",
    ],
)
def test_forged_registry_tokens_are_refused(tokens: RegistryTokens, forge) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthenticated):
        tokens.verify(forge(tokens.key, tokens.kid))


def _claims(aud: str = "reg.test", exp: int = 60) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "cargobay",
        "sub": "octo",
        "aud": aud,
        "iat": now,
        "exp": now + exp,
        "access": [{"type": "repository", "name": "acme/app", "actions": ["push"]}],
    }


def test_scopes_cap_actions() -> None:
    read, write, delete = Scope.READ_PACKAGES, Scope.WRITE_PACKAGES, Scope.DELETE_PACKAGES
    assert scope_allows(frozenset({read}), Action.PULL)
    assert not scope_allows(frozenset({read}), Action.PUSH)
    assert scope_allows(frozenset({write}), Action.PULL)  # write implies read
    assert scope_allows(frozenset({write}), Action.PUSH)
    assert not scope_allows(frozenset({write}), Action.DELETE)
    assert scope_allows(frozenset({delete}), Action.DELETE)
    assert scope_allows(None, Action.DELETE)
    assert parse_scopes("read:packages, write:packages") == {read, write}
    with pytest.raises(ValueError):
        parse_scopes("admin:org")


def test_visibility_roles() -> None:
    assert visibility_role("public", signed_in=False) is Role.READ
    assert visibility_role("internal", signed_in=False) is Role.NONE
    assert visibility_role("internal", signed_in=True) is Role.READ
    assert visibility_role("private", signed_in=True) is Role.NONE
    assert Role.NONE < Role.READ < Role.WRITE < Role.ADMIN


def test_a_token_knows_which_repositories_it_was_issued_for(tokens: RegistryTokens) -> None:
    token, _, _ = tokens.issue("octo", [GrantedAccess("repository", "acme/new", frozenset())], 1)
    claims = tokens.verify(token)
    assert claims.mentions("repository", "acme/new")  # asked for, nothing granted (yet)
    assert not claims.mentions("repository", "acme/other")


def test_racing_processes_all_load_the_same_whole_key(tmp_path: Path) -> None:
    """Replicas starting at once on one key file: each gets the same 32-byte key, never a
    partly written one."""
    import os

    from cargobay.auth.registry_tokens import load_or_create_key

    for round_ in range(20):
        path = tmp_path / f"key-{round_}"
        read, write = os.pipe()
        children = []
        for _ in range(6):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    os.write(write, load_or_create_key(path).hex().encode() + b"\n")
                finally:
                    os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
        os.close(write)
        keys = os.read(read, 1 << 16).decode().split()
        os.close(read)
        assert len(keys) == 6 and len(set(keys)) == 1 and len(keys[0]) == 64
        assert load_or_create_key(path).hex() == keys[0]


def test_a_token_is_told_twice_only_when_it_comes_back_for_the_same_scope() -> None:
    refusals = ScopeRefusals(limit=3)
    later = time.time() + 60
    assert not refusals.repeated("t1", "repository:a:pull,push", later)
    assert refusals.repeated("t1", "repository:a:pull,push", later)
    assert not refusals.repeated("t1", "repository:b:pull,push", later)  # another scope
    assert not refusals.repeated("t2", "repository:a:pull,push", later)  # another token
    # full: expired entries go first, then everything; never more than the limit
    assert not refusals.repeated("t3", "s", time.time() - 1)
    assert not refusals.repeated("t3", "s", later)
    assert len(refusals._refused) <= 3


def test_the_claims_name_the_token(tokens: RegistryTokens) -> None:
    first, _, _ = tokens.issue("octo", [], 1)
    second, _, _ = tokens.issue("octo", [], 1)
    assert tokens.verify(first).token and tokens.verify(first).token != tokens.verify(second).token
