"""Malicious image metadata in a real browser: whatever an image says is shown as text; no
script runs, no dialog opens, a ``javascript:`` source is never a link, and no attribute can be
broken out of."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kit import Operator
from playwright.sync_api import Browser, Page, Request
from webui import Layout, Skopeo, Watch, metadata, screenshot, sign_in

OWNER = "mal"
PASSWORD = "mal-password-123"
SCRIPTED = "<script>alert(1)</script><img src=x onerror=alert(2)>"
JAVASCRIPT = "javascript:alert(3)"
#: An http URL whose host part tries to close the href attribute.
BREAKOUT = 'http://x" onmouseover="alert(5)" data-x="'


def _url(server: Any, name: str, suffix: str = "") -> str:
    return f"{server.url}/users/{OWNER}/packages/container/package/{name}{suffix}"


@pytest.fixture(scope="module")
def pushed(server: Any, skopeo: Skopeo, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``mal/evil`` (a multi-arch image whose description is markup and whose source is a
    ``javascript:`` URL, in annotations and labels alike) and ``mal/breakout``; returns a
    token of ``mal``."""
    outputs = (
        Operator()
        .user(OWNER, PASSWORD)
        .add("token", "create", "--user", OWNER, "--scopes", "write:packages")
        .run(server)
    )
    token = outputs[1]
    layout = Layout(tmp_path_factory.mktemp("evil") / "layout")
    evil = metadata(SCRIPTED, f"MIT {SCRIPTED}", JAVASCRIPT)
    index, _ = layout.index(("amd64", "arm64"), labels=evil, annotations=evil)
    layout.tag("latest", index)
    skopeo.push(layout, "latest", f"{OWNER}/evil", (OWNER, token))
    breakout = layout.image("amd64", annotations=metadata("breakout", "MIT", BREAKOUT))
    layout.tag("v1", breakout)
    skopeo.push(layout, "v1", f"{OWNER}/breakout", (OWNER, token))
    return token


@pytest.fixture
def page(browser: Browser, server: Any, pushed: str) -> Iterator[tuple[Page, Watch, list[str]]]:
    """mal's page, signed in; the watch over it; every URL it requested."""
    context = browser.new_context()
    watch = Watch()
    page = watch.attach(context.new_page())
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    page.on("request", record)
    sign_in(page, server.url, OWNER, PASSWORD)
    yield page, watch, requested
    context.close()


def _assert_inert(page: Page) -> None:
    assert page.locator("a[href^='javascript' i]").count() == 0
    assert page.locator("[onerror], [onmouseover], img").count() == 0
    scripts = page.locator("script")
    assert [scripts.nth(i).get_attribute("src") for i in range(scripts.count())] == [
        "/static/copy.js"
    ]


def test_markup_in_metadata_is_shown_as_text_and_never_runs(
    page: tuple[Page, Watch, list[str]], server: Any
) -> None:
    tab, watch, requested = page
    response = tab.goto(_url(server, "evil"))
    assert response is not None and response.status == 200
    assert tab.inner_text("#description").strip() == SCRIPTED
    assert tab.inner_text("#license").strip() == f"MIT {SCRIPTED}"
    assert tab.inner_text("#source").strip() == JAVASCRIPT
    assert tab.locator("#source a").count() == 0
    _assert_inert(tab)
    screenshot(tab, "malicious-metadata")

    tab.goto(f"{server.url}/users/{OWNER}/packages")
    assert SCRIPTED in tab.inner_text("ul.packages")
    _assert_inert(tab)

    tab.goto(_url(server, "evil", "?tab=versions"))
    child = tab.locator("table.versions tbody tr", has_text="linux/amd64").locator("td a")
    assert child.count() == 1
    with tab.expect_navigation():
        child.click()
    # The version page lists labels and annotations: the same strings, as text.
    dds = [t.strip() for t in tab.locator("dl.kv dd").all_inner_texts()]
    assert SCRIPTED in dds and JAVASCRIPT in dds
    _assert_inert(tab)

    tab.goto(_url(server, "evil", "?tab=settings"))
    _assert_inert(tab)

    tab.wait_for_timeout(200)  # an onerror handler would have fired by now
    assert watch.dialogs == []
    assert not [u for u in requested if u.rstrip("/").endswith("/x")], requested
    assert watch.take() == []


def test_a_source_url_cannot_break_out_of_its_attribute(
    page: tuple[Page, Watch, list[str]], server: Any
) -> None:
    tab, watch, _ = page
    response = tab.goto(_url(server, "breakout"))
    assert response is not None and response.status == 200
    # Link or text, the value stays whole and inside its attribute.
    assert tab.inner_text("#source").strip() == BREAKOUT
    for href in tab.locator("#source a").evaluate_all("links => links.map(a => a.href)"):
        assert href.startswith("http://x"), href
    tab.hover("#source")
    _assert_inert(tab)
    assert watch.dialogs == []
    assert watch.take() == []
