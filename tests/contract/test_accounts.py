"""Account, token and package-access stores (see ports/accounts.py), on every SQL backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cargobay.errors import AlreadyExists
from cargobay.metadata.sql import SqlMetadata

pytestmark = pytest.mark.anyio


async def test_logins_are_one_namespace_and_case_insensitive(meta: SqlMetadata) -> None:
    octo = await meta.accounts.create("Octo", "User", email="o@x")
    assert octo.login == "octo" and not octo.is_org and not octo.suspended
    assert await meta.accounts.by_login("OCTO") == octo
    with pytest.raises(AlreadyExists):
        await meta.accounts.create("octo", "Organization")
    org = await meta.accounts.create("acme", "Organization")
    assert org.is_org and org.package_visibilities == {"private", "internal", "public"}
    await meta.accounts.update(org.id, package_visibilities="private")
    changed = await meta.accounts.by_id(org.id)
    assert changed is not None and changed.package_visibilities == {"private"}


async def test_tokens_are_found_by_hash_and_revoked(meta: SqlMetadata) -> None:
    user = await meta.accounts.create("octo", "User")
    later = datetime.now(UTC) + timedelta(days=1)
    record = await meta.tokens.create(
        kind="pat",
        token_hash="h" * 64,
        user_id=user.id,
        scopes=["read:packages"],
        note="ci",
        source_repository_id=None,
        expires_at=later,
    )
    found = await meta.tokens.by_hash("h" * 64)
    assert found == record and found.scopes == ("read:packages",)
    assert found.expires_at is not None and abs(found.expires_at - later) < timedelta(seconds=1)
    assert await meta.tokens.by_hash("x" * 64) is None
    assert await meta.tokens.revoke(record.id) is True
    assert await meta.tokens.revoke(record.id) is False
    revoked = await meta.tokens.by_id(record.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert [t.id for t in await meta.tokens.for_user(user.id)] == [record.id]


async def test_package_roles_come_from_grants_teams_org_and_source_repository(
    meta: SqlMetadata,
) -> None:
    owner = await meta.accounts.create("owner", "User")
    dev = await meta.accounts.create("dev", "User")
    org = await meta.accounts.create("acme", "Organization")
    await meta.accounts.set_org_member(org.id, owner.id, "owner")
    await meta.accounts.set_org_member(org.id, dev.id, "member")
    team = await meta.accounts.create_team(org.id, "devs")
    await meta.accounts.add_team_member(team, dev.id)
    repo = await meta.accounts.create_source_repository(org.id, "app", False)
    await meta.accounts.grant_source_repository(repo, "team", team, "write")
    package = await meta.packages.create(
        "acme/app",
        owner_id=org.id,
        visibility="private",
        inherit_access=True,
        source_repository_id=repo,
        published_by_repository_id=None,
        admin_user_id=owner.id,
    )
    again = await meta.packages.create(
        "acme/app",
        owner_id=org.id,
        visibility="public",
        inherit_access=False,
        source_repository_id=None,
        published_by_repository_id=None,
        admin_user_id=dev.id,
    )
    assert again == package and package.visibility == "private"  # the first push wins
    facts = await meta.packages.user_facts(package, dev.id)
    assert facts.grants == () and facts.org_role == "member" and facts.source_roles == ("write",)
    owner_facts = await meta.packages.user_facts(package, owner.id)
    assert owner_facts.grants == ("admin",) and owner_facts.org_role == "owner"
    await meta.package_records.grant(package.id, "team", team, "read")
    assert (await meta.packages.user_facts(package, dev.id)).grants == ("read",)
    await meta.package_records.grant(package.id, "source_repository", repo, "write")
    assert await meta.packages.actions_grant(package.id, repo) == "write"
    await meta.package_records.update(package.id, source_repository_id=None, inherit_access=False)
    unlinked = await meta.packages.get("acme/app")
    assert unlinked is not None and unlinked.source_repository_id is None
    assert (await meta.packages.user_facts(unlinked, dev.id)).source_roles == ()
    source = await meta.accounts.source_repository_by_name("ACME", "app")
    assert source is not None and source.full_name == "acme/app"
