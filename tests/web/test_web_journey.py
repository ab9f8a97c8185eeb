"""The main journey, in a real browser, step by step (each step needs the ones before it).

alice owns the organization ``acme`` and its repository ``acme/widget``; bob is in acme's team
``readers``. alice signs in through the form, makes a token with the scope the link asks for,
pushes a multi-arch image with skopeo using it, reads the package page, lets the team read
it, makes it public, deletes it, restores it and revokes the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kit import Operator
from playwright.sync_api import Browser, BrowserContext, Page
from webui import Layout, Skopeo, Watch, metadata, screenshot, sign_in, texts

pytestmark = pytest.mark.incremental

ORG = "acme"
NAME = "widget"
PACKAGE = f"{ORG}/{NAME}"
DESCRIPTION = "Widgets, containerised & multi-arch"
LICENSE = "Apache-2.0 OR MIT"
PASSWORDS = {"alice": "alice-correct-horse-1", "bob": "bob-battery-staple-2"}


@dataclass
class Journey:
    """What the steps hand each other."""

    server: Any
    skopeo: Skopeo
    alice: Page
    watch: Watch
    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    token: str = ""

    @property
    def page_url(self) -> str:
        return f"{self.server.url}/orgs/{ORG}/packages/container/package/{NAME}"

    @property
    def source(self) -> str:
        return f"{self.server.url}/{ORG}/{NAME}"

    def other(self, login: str | None) -> tuple[Page, Watch]:
        """A page in a browser context of its own: anonymous, or signed in as ``login``."""
        context = self.browser.new_context()
        self.contexts.append(context)
        watch = Watch()
        page = watch.attach(context.new_page())
        if login:
            sign_in(page, self.server.url, login, PASSWORDS[login])
        return page, watch


@pytest.fixture(scope="module")
def journey(server: Any, skopeo: Skopeo, browser: Browser) -> Iterator[Journey]:
    setup = Operator()
    for login, password in PASSWORDS.items():
        setup.user(login, password)
    setup.add("org", "create", ORG, "--owner", "alice")
    setup.add("org", "add-member", ORG, "bob")
    setup.add("team", "create", ORG, "readers")
    setup.add("team", "add-member", ORG, "readers", "bob")
    setup.add("repo", "create", f"{ORG}/{NAME}")
    setup.run(server)
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    watch = Watch()
    state = Journey(server, skopeo, watch.attach(context.new_page()), watch, browser, [context])
    yield state
    for opened in state.contexts:
        opened.close()


def test_sign_in_through_the_form(journey: Journey) -> None:
    page = journey.alice
    sign_in(page, journey.server.url, "alice", PASSWORDS["alice"])
    assert page.url == f"{journey.server.url}/users/alice/packages"
    assert page.locator("header.top button", has_text="Sign out alice").is_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["cargobay_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert journey.watch.take() == []


def test_new_token_has_the_linked_scope_checked_and_is_shown_once(journey: Journey) -> None:
    page = journey.alice
    page.goto(f"{journey.server.url}/settings/tokens/new?scopes=write:packages")
    boxes = page.locator("input[name=scopes]")
    checked = {
        boxes.nth(i).get_attribute("value"): boxes.nth(i).is_checked() for i in range(boxes.count())
    }
    assert checked == {"read:packages": False, "write:packages": True, "delete:packages": False}
    page.fill("#note", "ci push")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    token = page.inner_text("#new-token").strip()
    assert token.startswith("cbp_") and " " not in token, token
    assert "write:packages" in page.inner_text("main")
    screenshot(page, "token-created")
    page.click("button.copy[data-copy-target=new-token]")
    page.wait_for_selector("button.copy[data-copy-target=new-token]:text-is('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == token
    journey.token = token
    # Shown once: the list names the token but never shows it again.
    page.goto(f"{journey.server.url}/settings/tokens")
    assert "ci push" in page.inner_text("#tokens")
    assert token not in page.content()
    assert journey.watch.take() == []


def test_push_a_multiarch_image_with_the_new_token(journey: Journey, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    index, _ = layout.index(
        ("amd64", "arm64"), annotations=metadata(DESCRIPTION, LICENSE, journey.source)
    )
    for tag in ("1.0", "latest"):
        layout.tag(tag, index)
        journey.skopeo.push(layout, tag, PACKAGE, ("alice", journey.token))


def test_package_page_shows_what_the_image_says(journey: Journey) -> None:
    page = journey.alice
    response = page.goto(journey.page_url)
    assert response is not None and response.status == 200
    assert page.inner_text("#description").strip() == DESCRIPTION
    assert page.inner_text("#license").strip() == LICENSE
    link = page.locator("#source a")
    assert link.count() == 1
    assert link.get_attribute("href") == journey.source
    assert sorted(texts(page, "#tags .tag")) == ["1.0", "latest"]
    # The attestation child (unknown/unknown) is not a platform.
    assert texts(page, "#platforms li") == ["linux/amd64", "linux/arm64"]
    pull = page.inner_text("#pull-command").strip()
    assert pull == f"docker pull {journey.server.address}/{PACKAGE}:latest"
    screenshot(page, "package")
    page.click("button.copy[data-copy-target=pull-command]")
    page.wait_for_selector("button.copy[data-copy-target=pull-command]:text-is('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == pull
    assert journey.watch.take() == [], "console errors or CSP violations"
    assert journey.watch.dialogs == []


def test_a_team_granted_read_sees_the_private_package(journey: Journey) -> None:
    bob, bob_watch = journey.other("bob")
    before = bob.goto(journey.page_url)
    assert before is not None and before.status == 404
    page = journey.alice
    page.goto(f"{journey.page_url}?tab=settings")
    assert page.inner_text("#current-visibility").strip() == "private"
    page.select_option("#grantee_type", "team")
    page.fill("#grantee", "readers")
    page.select_option("#role", "read")
    with page.expect_navigation():
        page.click("form.grid button[type=submit]")
    rows = texts(page, "#grants tbody tr")
    assert any(r.startswith(f"{ORG}/readers") and "read" in r for r in rows), rows
    screenshot(page, "settings")
    after = bob.goto(journey.page_url)
    assert after is not None and after.status == 200
    assert bob.inner_text("#description").strip() == DESCRIPTION
    assert bob.locator("nav.tabs a", has_text="Settings").count() == 0
    settings = bob.goto(f"{journey.page_url}?tab=settings")
    assert settings is not None and settings.status == 404
    assert bob_watch.take(allow_status=[404]) == []
    assert journey.watch.take() == []


def _submit(page: Page, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")
    assert page.locator("[role=status]").count() == 1, page.inner_text("main")


def test_settings_link_inherit_and_grants(journey: Journey) -> None:
    page = journey.alice
    page.goto(f"{journey.page_url}?tab=settings")
    # The source URL named a repository of acme on this server: the package is linked to it.
    assert page.inner_text("#linked-repository").strip() == f"{ORG}/{NAME}"
    inherit = page.locator("form[action$='/inherit'] input[name=inherit]")
    initially = inherit.is_checked()

    page.fill("#repository", "")
    _submit(page, "form[action$='/repository']")
    assert page.locator("#linked-repository").count() == 0
    assert "Not linked." in page.inner_text("section[aria-labelledby=repo-h]")
    assert inherit.is_disabled()
    page.fill("#repository", NAME)
    _submit(page, "form[action$='/repository']")
    assert page.inner_text("#linked-repository").strip() == f"{ORG}/{NAME}"

    for wanted in (not initially, initially):
        inherit.set_checked(wanted)
        _submit(page, "form[action$='/inherit']")
        assert inherit.is_checked() is wanted

    grants = [("user", "bob", "write"), ("source_repository", f"{ORG}/{NAME}", "read")]
    for kind, grantee, role in grants:
        page.select_option("#grantee_type", kind)
        page.fill("#grantee", grantee)
        page.select_option("#role", role)
        _submit(page, "form.grid")
        row = page.locator("#grants tbody tr", has=page.locator(f"td:text-is('{grantee}')"))
        assert row.count() == 1, texts(page, "#grants tbody tr")
        assert row.locator("td").nth(2).inner_text().strip() == role
    for _, grantee, _ in grants:
        with page.expect_navigation():
            page.click(f"#grants button:text-is('Remove {grantee}')")
        assert page.locator(f"#grants td:text-is('{grantee}')").count() == 0
    # The team's grant from the step before is still there.
    assert page.locator(f"#grants td:text-is('{ORG}/readers')").count() == 1
    assert journey.watch.take() == []


def _change_visibility(page: Page, url: str, visibility: str, confirm: str) -> int:
    page.goto(f"{url}?tab=settings")
    page.select_option("#visibility", visibility)
    page.fill("#confirm-visibility", confirm)
    with page.expect_navigation() as navigation:
        page.click("form[action$='/visibility'] button[type=submit]")
    response = navigation.value
    return response.status if response else 0


def test_visibility_change_needs_the_typed_name(journey: Journey) -> None:
    anonymous, anonymous_watch = journey.other(None)
    hidden = anonymous.goto(journey.page_url)
    assert hidden is not None and hidden.status == 404
    assert journey.skopeo.inspect(f"{PACKAGE}:1.0", None).returncode != 0

    page = journey.alice
    status = _change_visibility(page, journey.page_url, "public", f"{NAME}-typo")
    assert status == 400
    assert "confirm" in page.inner_text("main")
    page.goto(f"{journey.page_url}?tab=settings")
    assert page.inner_text("#current-visibility").strip() == "private"
    still_hidden = anonymous.goto(journey.page_url)
    assert still_hidden is not None and still_hidden.status == 404

    assert _change_visibility(page, journey.page_url, "public", NAME) == 200
    assert page.inner_text("#current-visibility").strip() == "public"
    assert page.locator("[role=status]").count() == 1
    assert page.locator("span.badge", has_text="Public").count() == 1
    shown = anonymous.goto(journey.page_url)
    assert shown is not None and shown.status == 200
    assert anonymous.inner_text("#description").strip() == DESCRIPTION
    assert anonymous.locator("nav.tabs a", has_text="Settings").count() == 0
    inspected = journey.skopeo.inspect(f"{PACKAGE}:1.0", None)
    assert inspected.returncode == 0, inspected.stderr
    assert anonymous_watch.take(allow_status=[404]) == []
    assert journey.watch.take(allow_status=[400]) == []


def test_delete_with_the_typed_name_then_restore(journey: Journey, tmp_path: Path) -> None:
    page = journey.alice
    creds = ("alice", journey.token)
    page.goto(f"{journey.page_url}?tab=settings")
    page.fill("#confirm-delete", NAME)
    with page.expect_navigation():
        page.click("form[action$='/delete'] button[type=submit]")
    assert page.url.startswith(f"{journey.server.url}/orgs/{ORG}/packages")
    assert page.locator("a.name", has_text=NAME).count() == 0
    restore = page.locator("button", has_text=f"Restore {NAME}")
    assert restore.count() == 1
    screenshot(page, "recently-deleted")

    other, other_watch = journey.other(None)
    gone = other.goto(journey.page_url)
    assert gone is not None and gone.status == 404
    assert other.inner_text("h1").strip() == "Not found"
    mine = page.context.new_page()
    own_view = mine.goto(journey.page_url)
    assert own_view is not None and own_view.status == 404
    mine.close()
    assert journey.skopeo.inspect(f"{PACKAGE}:1.0", creds).returncode != 0

    with page.expect_navigation():
        restore.click()
    assert page.url == journey.page_url
    assert page.inner_text("#description").strip() == DESCRIPTION
    assert texts(page, "#platforms li") == ["linux/amd64", "linux/arm64"]
    pulled = journey.skopeo.pull(f"{PACKAGE}:1.0", tmp_path / "pulled", creds)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "pulled" / "manifest.json").exists()
    assert other_watch.take(allow_status=[404]) == []
    assert journey.watch.take(allow_status=[404]) == []


def test_revoked_token_stops_working(journey: Journey) -> None:
    page = journey.alice
    page.goto(f"{journey.server.url}/settings/tokens")
    with page.expect_navigation():
        page.click("button:text-is('Revoke ci push')")
    assert "ci push" not in page.inner_text("#tokens")
    refused = journey.skopeo.inspect(f"{PACKAGE}:1.0", ("alice", journey.token))
    assert refused.returncode != 0
    assert journey.watch.take() == []
    assert journey.watch.dialogs == []
