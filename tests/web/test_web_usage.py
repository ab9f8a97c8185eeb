"""Storage on the pages (plain HTTP, no browser): a package's page shows what it stores; the
owner's package list shows the namespace's storage over the packages the visitor sees and, to
the owner, the quota; a private package's size never shows to others."""

from __future__ import annotations

import re
from typing import Any

import httpx
from kit import Operator
from test_web_immutable import push
from webui import WebSession

OWNER, PASSWORD = "usy", "correct horse battery"
OTHER, OTHER_PASSWORD = "peeky", "another long password"


def stored(page: str, element: str) -> str:
    match = re.search(rf'id="{element}">([^<]+)<', page)
    assert match, page
    return match.group(1)


def test_pages_show_storage_and_the_quota_to_whom_they_may(server: Any) -> None:
    outputs = (
        Operator()
        .user(OWNER, PASSWORD)
        .user(OTHER, OTHER_PASSWORD)
        .add("token", "create", "--user", OWNER, "--scopes", "write:packages")
        .add("quota", "set", OWNER, "10MB", "--warn", "90")
        .add("org", "create", "usyorg", "--owner", OWNER)
        .add("quota", "set", "usyorg", "2GB")
        .run(server)
    )
    registry = httpx.Client(base_url=server.url, auth=(OWNER, outputs[2]), timeout=30)
    assert push(registry, f"{OWNER}/app", "v1") == 201
    assert push(registry, f"{OWNER}/app", "v2") == 201

    web = WebSession(server.url)
    assert web.sign_in(OWNER, PASSWORD).status_code == 303
    page = web.get(f"/users/{OWNER}/packages/container/package/app").text
    assert "<h2>Storage</h2>" in page
    package_stored = stored(page, "usage-stored")
    assert package_stored.endswith(" B") or package_stored.endswith(" KB"), package_stored
    listing = web.get(f"/users/{OWNER}/packages").text
    assert stored(listing, "namespace-stored") == package_stored, "one package: the same bytes"
    assert "of 10.0 MB" in listing and "warns at 90%" in listing, listing

    # Someone else sees the list of a namespace whose only package is private: no storage of it.
    other = WebSession(server.url)
    assert other.sign_in(OTHER, OTHER_PASSWORD).status_code == 303
    theirs = other.get(f"/users/{OWNER}/packages").text
    assert stored(theirs, "namespace-stored") == "0 B", theirs
    assert 'id="namespace-quota"' not in theirs
    anonymous = httpx.get(f"{server.url}/users/{OWNER}/packages", timeout=30).text
    assert 'id="namespace-quota"' not in anonymous and package_stored not in anonymous

    # The organization's settings page shows its owner the quota.
    settings = web.get("/orgs/usyorg/settings/packages")
    assert settings.status_code == 200
    assert 'id="namespace-quota">Quota: 0 B used of 2.0 GB (0.0%)' in settings.text, settings.text
