"""The immutable tags form of a package's settings page (plain HTTP, no browser): its admin
sees and sets the patterns, a push moving a matching tag is then refused, bad patterns change
nothing, and someone who is not the package's admin can't touch them."""

from __future__ import annotations

from typing import Any

import httpx
from kit import Oci, Operator, image
from webui import WebSession

OWNER, PASSWORD = "immy", "correct horse battery"
OTHER, OTHER_PASSWORD = "nosy", "another long password"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def push(http: httpx.Client, repo: str, tag: str) -> int:
    """A one-layer image under ``tag``; returns the manifest PUT's status."""
    return Oci(http).put_image(repo, tag, image()).status_code


def test_the_settings_page_sets_immutable_tags(server: Any) -> None:
    outputs = (
        Operator()
        .user(OWNER, PASSWORD)
        .user(OTHER, OTHER_PASSWORD)
        .add("token", "create", "--user", OWNER, "--scopes", "write:packages")
        .run(server)
    )
    registry = httpx.Client(base_url=server.url, auth=(OWNER, outputs[2]), timeout=30)
    assert push(registry, f"{OWNER}/app", "v1") == 201
    settings = f"/users/{OWNER}/packages/container/package/app?tab=settings"
    web = WebSession(server.url)
    assert web.sign_in(OWNER, PASSWORD).status_code == 303
    page = web.get(settings)
    assert page.status_code == 200 and "No tag is immutable." in page.text
    form = page.text.index('action="/packages/')
    package_id = page.text[form:].split("/")[2]
    action = f"/packages/{package_id}/immutable-tags"

    r = web.post(action, {"csrf": web.csrf, "patterns": "v*, stable"})
    assert r.status_code == 303 and "immutable%20tags%20saved" in r.headers["location"]
    page = web.get(settings).text
    assert '<code class="tag">stable</code> <code class="tag">v*</code>' in page
    assert push(registry, f"{OWNER}/app", "v1") == 409
    assert push(registry, f"{OWNER}/app", "latest") == 201

    # A bad pattern is refused and changes nothing; so is a form without the CSRF token.
    assert web.post(action, {"csrf": web.csrf, "patterns": "ok bad/pattern"}).status_code == 400
    assert web.post(action, {"patterns": ""}).status_code in (400, 403)
    assert '<code class="tag">v*</code>' in web.get(settings).text
    # Someone who is not the package's admin finds no such package.
    nosy = WebSession(server.url)
    assert nosy.sign_in(OTHER, OTHER_PASSWORD).status_code == 303
    assert nosy.post(action, {"csrf": nosy.csrf, "patterns": ""}).status_code == 404
    assert push(registry, f"{OWNER}/app", "v1") == 409

    r = web.post(action, {"csrf": web.csrf, "patterns": ""})
    assert r.status_code == 303
    assert "No tag is immutable." in web.get(settings).text
    assert push(registry, f"{OWNER}/app", "v1") == 201
