"""The audit-log pages over plain HTTP: an organization's owner sees who did what to its
packages, with filters and older pages; members, outsiders and anonymous visitors don't; a user
sees failed sign-ins on their account."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kit import Oci, Operator, image
from webui import WebSession

ORG = "audited"
PASSWORDS = {"olga": "olga-pass-1", "rita": "rita-pass-2", "mallory": "mallory-pass-3"}


@pytest.fixture(scope="module")
def server(server_factory: Any) -> Iterator[Any]:
    started = server_factory()
    yield started
    started.stop()


def push(http: httpx.Client, name: str, tag: str, nonce: str) -> str:
    """A tiny image (config, no layer) pushed with monolithic uploads; returns its digest."""
    return Oci(http).push_image(name, tag, image(layers=0, labels={"nonce": nonce})).digest


@pytest.fixture(scope="module")
def sessions(server: Any) -> Iterator[dict[str | None, WebSession]]:
    setup = Operator()
    for login, password in PASSWORDS.items():
        setup.user(login, password)
    setup.add("org", "create", ORG, "--owner", "olga")
    setup.add("org", "add-member", ORG, "rita")
    setup.add("token", "create", "--user", "olga", "--scopes", "write:packages")
    token = setup.run(server)[-1]
    with httpx.Client(base_url=server.url, auth=("olga", token), timeout=30) as http:
        for i in range(30):  # more than one page of entries
            push(http, f"{ORG}/app", f"v{i}", str(i))
    made = {who: WebSession(server.url) for who in (*PASSWORDS, None)}
    assert made["mallory"].sign_in("olga", "wrong-password").status_code == 401
    for who, session in made.items():
        if who is not None:
            assert session.sign_in(who, PASSWORDS[who]).status_code == 303
    yield made
    for session in made.values():
        session.close()


def rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in body.split("<tr>")[1:]]


def test_the_owner_sees_who_did_what(sessions: dict[str | None, WebSession]) -> None:
    page = sessions["olga"].get(f"/orgs/{ORG}/settings/audit-log")
    assert page.status_code == 200, page.text
    found = rows(page.text)
    assert len(found) == 50
    newest = found[0]
    assert "packages.package_tag_moved" in newest and "olga" in newest
    assert "127.0.0.1" in newest and f"{ORG}/app" in newest and "tag: v29" in newest
    older = re.search(r'href="([^"]+)" rel="next"', page.text)
    assert older is not None
    rest = rows(sessions["olga"].get(older.group(1).replace("&amp;", "&")).text)
    assert len(rest) == 30 * 2 + 1 - 50  # a version and a tag per push, the package once
    assert "packages.package_published" in rest[-1]


def test_filters(sessions: dict[str | None, WebSession]) -> None:
    olga = sessions["olga"]
    moved = rows(olga.get(f"/orgs/{ORG}/settings/audit-log?action=packages.package_published").text)
    assert len(moved) == 1 and "packages.package_published" in moved[0]
    nobody = olga.get(f"/orgs/{ORG}/settings/audit-log?actor=rita")
    assert "No entries." in nobody.text
    later = olga.get(f"/orgs/{ORG}/settings/audit-log?since=2999-01-01")
    assert "No entries." in later.text
    bad = olga.get(f"/orgs/{ORG}/settings/audit-log?since=someday")
    assert bad.status_code == 400 and "2026-12-01" in bad.text


def test_who_may_see_an_organizations_log(sessions: dict[str | None, WebSession]) -> None:
    path = f"/orgs/{ORG}/settings/audit-log"
    assert sessions[None].get(path).status_code == 303
    assert sessions["rita"].get(path).status_code == 403  # a member, not an owner
    assert sessions["mallory"].get(path).status_code == 404
    assert sessions["olga"].get("/admin/audit-log").status_code == 403


def test_a_user_sees_failed_sign_ins_on_their_account(
    sessions: dict[str | None, WebSession],
) -> None:
    own = rows(sessions["olga"].get("/settings/audit-log?action=user.failed_login").text)
    assert len(own) == 1 and "127.0.0.1" in own[0] and "via: password" in own[0]
    others = sessions["rita"].get("/settings/audit-log?action=user.failed_login")
    assert "No entries." in others.text
