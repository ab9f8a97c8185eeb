"""The retention policy form of a package's settings page and its preview page (plain HTTP, no
browser): its admin sets and drops the package's own policy, the preview lists what the cleanup
would remove and removes nothing, bad input changes nothing, and someone who is not the
package's admin finds no such package."""

from __future__ import annotations

from typing import Any

import httpx
from kit import Operator
from test_web_immutable import push
from webui import WebSession

OWNER, PASSWORD = "keeper", "correct horse battery"
OTHER, OTHER_PASSWORD = "snoop", "another long password"


def test_the_settings_page_sets_a_retention_policy_and_previews_it(server: Any) -> None:
    outputs = (
        Operator()
        .user(OWNER, PASSWORD)
        .user(OTHER, OTHER_PASSWORD)
        .add("token", "create", "--user", OWNER, "--scopes", "write:packages")
        .run(server)
    )
    registry = httpx.Client(base_url=server.url, auth=(OWNER, outputs[2]), timeout=30)
    for tag in ("v1", "v2", "v3"):
        assert push(registry, f"{OWNER}/kept", tag) == 201
    settings = f"/users/{OWNER}/packages/container/package/kept?tab=settings"
    web = WebSession(server.url)
    assert web.sign_in(OWNER, PASSWORD).status_code == 303
    page = web.get(settings)
    assert page.status_code == 200
    assert "No retention policy: nothing is removed automatically." in page.text
    form = page.text.index('action="/packages/')
    package_id = page.text[form:].split("/")[2]
    action = f"/packages/{package_id}/retention"
    preview = f"/packages/{package_id}/retention/preview"
    assert "Nothing would be removed." in web.get(preview).text

    fields = {"untagged_days": "30", "keep_tags": "1", "tag_patterns": "v1", "pulled_days": ""}
    r = web.post(action, {"csrf": web.csrf, **fields})
    assert r.status_code == 303 and "retention%20policy%20saved" in r.headers["location"]
    page = web.get(settings).text
    assert "This package has a policy of its own." in page
    assert 'name="keep_tags" inputmode="numeric" value="1"' in page
    # v1 matches the pattern, v3 is the most recent tag: v2's version would go, and stays.
    shown = web.get(preview).text
    assert shown.count("none of its tags is kept") == 1 and ">v2</span>" in shown
    assert registry.get(f"/v2/{OWNER}/kept/manifests/v2").status_code == 200

    # Bad input is refused and changes nothing.
    for bad in ({"keep_tags": "0"}, {"untagged_days": "x"}, {"tag_patterns": "re:(a"}):
        assert web.post(action, {"csrf": web.csrf, **fields, **bad}).status_code in (400, 422)
    assert 'name="keep_tags" inputmode="numeric" value="1"' in web.get(settings).text
    # Someone who is not the package's admin finds no such package, nor its preview.
    nosy = WebSession(server.url)
    assert nosy.sign_in(OTHER, OTHER_PASSWORD).status_code == 303
    assert nosy.post(action, {"csrf": nosy.csrf, "inherit": "on"}).status_code == 404
    assert nosy.get(preview).status_code == 404
    assert httpx.get(f"{server.url}{preview}").status_code == 404

    r = web.post(action, {"csrf": web.csrf, "inherit": "on"})
    assert r.status_code == 303
    assert "No retention policy" in web.get(settings).text


def test_the_owner_defaults_page_sets_what_packages_without_a_policy_follow(server: Any) -> None:
    org, owner, outsider = "keeperorg", "keepy", "nosey"
    outputs = (
        Operator()
        .user(owner, PASSWORD)
        .user(outsider, OTHER_PASSWORD)
        .add("token", "create", "--user", owner, "--scopes", "read:packages,write:packages")
        .add("org", "create", org, "--owner", owner)
        .run(server)
    )
    token = outputs[2]
    registry = httpx.Client(base_url=server.url, auth=(owner, token), timeout=30)
    assert push(registry, f"{org}/app", "v1") == 201
    web = WebSession(server.url)
    assert web.sign_in(owner, PASSWORD).status_code == 303
    defaults = f"/orgs/{org}/settings/packages/retention"
    assert f'href="{defaults}"' in web.get(f"/orgs/{org}/settings/packages").text
    assert "No default policy" in web.get(defaults).text

    fields = {
        "untagged_days": "14",
        "keep_tags": "3",
        "tag_patterns": "v* latest",
        "pulled_days": "",
    }
    r = web.post(defaults, {"csrf": web.csrf, **fields})
    assert r.status_code == 303 and r.headers["location"] == f"{defaults}?done=saved"
    page = web.get(r.headers["location"]).text
    assert (
        "Default policy saved." in page and 'name="keep_tags" inputmode="numeric" value="3"' in page
    )
    expected = {"untagged_days": 14, "keep_tags": 3, "tag_patterns": ["v*", "latest"]}
    rest = registry.get(f"/api/v3/orgs/{org}/packages/retention")
    assert rest.status_code == 200 and rest.json() | expected == rest.json(), rest.text
    settings = web.get(f"/orgs/{org}/packages/container/package/app?tab=settings").text
    assert f"This package follows the default of {org}." in settings

    # Bad input is refused and changes nothing; neither can someone who is not an owner.
    for bad in ({"keep_tags": "0"}, {"untagged_days": "x"}, {"tag_patterns": "re:(a"}):
        assert web.post(defaults, {"csrf": web.csrf, **fields, **bad}).status_code in (400, 422)
    nosy = WebSession(server.url)
    assert nosy.sign_in(outsider, OTHER_PASSWORD).status_code == 303
    assert nosy.get(defaults).status_code in (403, 404)
    assert nosy.post(defaults, {"csrf": nosy.csrf, "clear": "on"}).status_code in (403, 404)
    assert registry.get(f"/api/v3/orgs/{org}/packages/retention").json() == rest.json()

    # Removed: the package follows no policy.
    r = web.post(defaults, {"csrf": web.csrf, "clear": "on"})
    assert r.status_code == 303 and "No default policy" in web.get(defaults).text
    settings = web.get(f"/orgs/{org}/packages/container/package/app?tab=settings").text
    assert "No retention policy: nothing is removed automatically." in settings

    # A user's own defaults, on their settings.
    mine = "/settings/packages/retention"
    r = web.post(mine, {"csrf": web.csrf, "untagged_days": "7"})
    assert r.status_code == 303
    assert 'name="untagged_days" inputmode="numeric" value="7"' in web.get(mine).text
    assert registry.get(f"/api/v3/users/{owner}/packages/retention").json()["untagged_days"] == 7
    assert web.get(f"/orgs/{org}/settings/packages/retention").status_code == 200
