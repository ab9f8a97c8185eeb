"""The versions tab (filters all / tagged / untagged / deleted, delete and restore buttons) and
a version's page (platforms, config, layers with sizes, labels, annotations), in a browser.

``vera/tool`` (vera's own namespace) holds an index tagged ``1.0`` (linux/amd64, linux/arm64
and an attestation), an image tagged ``edge`` and the image ``edge`` named before it, now
untagged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kit import Operator
from playwright.sync_api import Browser, Page
from webui import (
    OCI_LAYER_TAR,
    Descriptor,
    Layout,
    Skopeo,
    Watch,
    digest_of,
    metadata,
    screenshot,
    sign_in,
    tar_layer,
    texts,
)

OWNER = "vera"
PASSWORD = "vera-password-9"
LABELS = {"com.example.build": "42", "com.example.team": "tools & <friends>"}
ANNOTATIONS = {
    **metadata("A tool", "BSD-3-Clause", "https://example.com/vera/tool"),
    "org.opencontainers.image.created": "2024-05-01T12:00:00Z",
    "com.example.note": "annotated",
}
#: One file in an uncompressed tar: exactly one 10,240-byte record.
LAYER = tar_layer({"tool.bin": b"tool" * 64})


@dataclass
class Pushed:
    index: Descriptor
    children: dict[str, Descriptor]
    edge: Descriptor
    old_edge: Descriptor


def short(descriptor: Descriptor) -> str:
    return descriptor.digest.split(":", 1)[1][:12]


@pytest.fixture(scope="module")
def pushed(server: Any, skopeo: Skopeo, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    outputs = (
        Operator()
        .user(OWNER, PASSWORD)
        .add("token", "create", "--user", OWNER, "--scopes", "write:packages")
        .run(server)
    )
    creds = (OWNER, outputs[1])
    layout = Layout(tmp_path_factory.mktemp("versions") / "layout")
    name = f"{OWNER}/tool"
    old_edge = layout.image("amd64", labels={"com.example.build": "41"})
    layout.tag("edge", old_edge)
    skopeo.push(layout, "edge", name, creds)
    index, children = layout.index(("amd64", "arm64"), labels=LABELS, annotations=ANNOTATIONS)
    layout.tag("1.0", index)
    skopeo.push(layout, "1.0", name, creds)
    edge = layout.image("arm64", labels=LABELS, annotations=ANNOTATIONS, layer=LAYER)
    layout.tag("edge", edge)
    skopeo.push(layout, "edge", name, creds)
    return Pushed(index, children, edge, old_edge)


@pytest.fixture(scope="module")
def vera(browser: Browser, server: Any, pushed: Pushed) -> Iterator[tuple[Page, Watch]]:
    context = browser.new_context()
    watch = Watch()
    page = watch.attach(context.new_page())
    sign_in(page, server.url, OWNER, PASSWORD)
    yield page, watch
    context.close()


def url(server: Any, suffix: str = "") -> str:
    return f"{server.url}/users/{OWNER}/packages/container/package/tool{suffix}"


def shown(page: Page) -> set[str]:
    """The short digests listed in the versions table."""
    return set(texts(page, "table.versions tbody td:first-child code"))


def choose(page: Page, label: str) -> None:
    with page.expect_navigation():
        page.click(f"nav.filters a:text-is('{label}')")
    assert page.locator("nav.filters a[aria-current=page]").inner_text().strip() == label


def test_filters_list_the_right_versions(
    vera: tuple[Page, Watch], server: Any, pushed: Pushed
) -> None:
    page, watch = vera
    page.goto(url(server, "?tab=versions"))
    assert texts(page, "nav.filters a") == ["All", "Tagged", "Untagged", "Deleted"]
    children = {short(c) for c in pushed.children.values()}
    everything = {short(pushed.index), short(pushed.edge), short(pushed.old_edge), *children}
    assert shown(page) == everything
    screenshot(page, "versions")
    choose(page, "Tagged")
    assert shown(page) == {short(pushed.index), short(pushed.edge)}
    tags = {
        short(pushed.index): ["1.0"],
        short(pushed.edge): ["edge"],
    }
    for row in page.locator("table.versions tbody tr").all():
        digest = row.locator("td:first-child code").inner_text().strip()
        assert [t.strip() for t in row.locator(".tag").all_inner_texts()] == tags[digest]
    choose(page, "Untagged")
    assert shown(page) == {short(pushed.old_edge), *children}
    attestation = page.locator(
        "table.versions tbody tr", has_text=short(pushed.children["attestation"])
    )
    assert "(attestation)" in attestation.inner_text()
    choose(page, "Deleted")
    assert shown(page) == set()
    assert "No versions." in page.inner_text("table.versions")
    assert watch.take() == []


def test_delete_and_restore_a_version(
    vera: tuple[Page, Watch], server: Any, pushed: Pushed
) -> None:
    page, watch = vera
    old = short(pushed.old_edge)
    page.goto(url(server, "?tab=versions&filter=untagged"))
    with page.expect_navigation():
        page.click(f"button:text-is('Delete {old}')")
    assert old not in shown(page)
    choose(page, "Deleted")
    assert shown(page) == {old}
    assert page.locator(f"button:text-is('Restore {old}')").count() == 1
    # A deleted version has no page of its own any more.
    assert page.locator("table.versions tbody a").count() == 0
    with page.expect_navigation():
        page.click(f"button:text-is('Restore {old}')")
    page.goto(url(server, "?tab=versions&filter=deleted"))
    assert shown(page) == set()
    page.goto(url(server, "?tab=versions&filter=untagged"))
    assert old in shown(page)
    # Once more, restored this time from the settings' "Deleted versions".
    with page.expect_navigation():
        page.click(f"button:text-is('Delete {old}')")
    page.goto(url(server, "?tab=settings"))
    deleted = page.locator("section[aria-labelledby=deleted-h] li")
    assert deleted.count() == 1 and old in deleted.inner_text()
    with page.expect_navigation():
        page.click(f"button:text-is('Restore {old}')")
    assert page.locator("section[aria-labelledby=deleted-h]").count() == 0
    page.goto(url(server, "?tab=versions"))
    assert old in shown(page)
    assert watch.take() == []


def _definitions(page: Page, selector: str) -> dict[str, str]:
    terms = texts(page, f"{selector} dt")
    values = texts(page, f"{selector} dd")
    return dict(zip(terms, values, strict=True))


def test_version_page_of_an_image(vera: tuple[Page, Watch], server: Any, pushed: Pushed) -> None:
    page, watch = vera
    page.goto(url(server, "?tab=versions&filter=tagged"))
    with page.expect_navigation():
        page.click(f"table.versions a:has-text('{short(pushed.edge)}')")
    assert pushed.edge.digest in page.inner_text("main h2")
    assert page.inner_text("#pull-command").strip() == (
        f"docker pull {server.address}/{OWNER}/tool@{pushed.edge.digest}"
    )
    config = _definitions(page, "main dl:not(.kv)")
    assert config["os"] == "linux"
    assert config["architecture"] == "arm64"
    assert config["created"].startswith("2024-05-01")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 1
    cells = [c.strip() for c in rows.first.locator("td").all_inner_texts()]
    assert cells == [digest_of(LAYER).split(":")[1][:12], OCI_LAYER_TAR, "10.2 KB"]
    assert len(LAYER) == 10240
    kv = page.locator("dl.kv")
    assert kv.count() == 2
    labels = _definitions(page, "h3:text-is('Labels') + dl.kv")
    annotations = _definitions(page, "h3:text-is('Annotations') + dl.kv")
    assert labels == LABELS
    assert annotations == ANNOTATIONS
    screenshot(page, "version")
    assert watch.take() == []


def test_version_page_of_an_index(vera: tuple[Page, Watch], server: Any, pushed: Pushed) -> None:
    page, watch = vera
    page.goto(url(server, "?tab=versions&filter=tagged"))
    with page.expect_navigation():
        page.click(f"table.versions a:has-text('{short(pushed.index)}')")
    platforms = texts(page, "ul.platforms li")
    assert platforms == ["linux/amd64", "linux/arm64", "unknown/unknown (attestation)"]
    assert page.locator("main table").count() == 0  # an index has no layers of its own
    assert _definitions(page, "h3:text-is('Annotations') + dl.kv") == ANNOTATIONS
    with page.expect_navigation():
        page.click("ul.platforms a:text-is('linux/amd64')")
    assert pushed.children["amd64"].digest in page.inner_text("main h2")
    assert _definitions(page, "h3:text-is('Labels') + dl.kv") == LABELS
    assert _definitions(page, "main dl:not(.kv)")["architecture"] == "amd64"
    assert watch.take() == []


def test_copy_still_works_when_the_clipboard_api_refuses(
    browser: Browser, server: Any, pushed: Pushed
) -> None:
    """Where ``navigator.clipboard.writeText`` refuses (permission denied, no user activation,
    an iframe's permissions policy...), Copy still does something the user can see: it copies
    another way ("Copied") or at least selects the command so that Ctrl+C copies it."""
    context = browser.new_context()
    context.add_init_script(
        "navigator.clipboard.writeText = () =>"
        " Promise.reject(new DOMException('Write permission denied.', 'NotAllowedError'));"
    )
    watch = Watch()
    page = watch.attach(context.new_page())
    try:
        sign_in(page, server.url, OWNER, PASSWORD)
        page.goto(url(server))
        command = page.inner_text("#pull-command").strip()
        page.click("button.copy[data-copy-target=pull-command]")
        page.wait_for_timeout(300)
        button = page.inner_text("button.copy[data-copy-target=pull-command]").strip()
        selected = page.evaluate("String(window.getSelection())").strip()
        assert button == "Copied" or selected == command, (button, selected)
        assert watch.take() == []
    finally:
        context.close()


def test_no_page_makes_the_browser_log_an_error(
    vera: tuple[Page, Watch], server: Any, pushed: Pushed
) -> None:
    """Every page the browser loaded in this module, the requests it makes on its own
    included (a missing ``/favicon.ico`` is a 404 in the console of every page)."""
    page, watch = vera
    page.goto(url(server))
    page.wait_for_timeout(300)
    assert watch.take() == []
    assert watch.favicon == []
