"""The repository settings page for trusted publishing, over plain HTTP against a real server:
an admin lists, adds and removes trust policies with the CSRF-protected forms (and the policies
work at ``/token``); anyone else gets 'Not found'; a form without the session's CSRF token
changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kit import Operator
from oidc_issuer import Issuer
from webui import WebSession

PAGE = "/acme/app/settings/trust"


@dataclass
class Site:
    server: Any
    issuer: Issuer


@pytest.fixture(scope="module")
def site(server_factory: Any) -> Iterator[Site]:
    issuer = Issuer.start()
    try:
        server = server_factory(oidc_issuers=issuer.url)
        (
            Operator()
            .user("boss", "boss-password-1")
            .user("dev", "dev-password-1")
            .add("org", "create", "acme", "--owner", "boss")
            .add("org", "add-member", "acme", "dev")
            .add("repo", "create", "acme/app")
            .add("repo", "grant", "acme/app", "dev", "write")
            .add("repo", "create", "acme/hidden", "--private")
            .run(server)
        )
        yield Site(server, issuer)
    finally:
        issuer.stop()


def signed_in(site: Site, login: str) -> WebSession:
    web = WebSession(site.server.url)
    assert web.sign_in(login, f"{login}-password-1").status_code == 303
    return web


def exchange(site: Site, repository: str) -> httpx.Response:
    return httpx.post(
        f"{site.server.url}/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": site.issuer.mint(site.server.url, repository=repository),
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "scope": f"repository:{repository}:push",
        },
        timeout=30,
    )


def test_an_admin_adds_and_removes_a_policy(site: Site) -> None:
    web = signed_in(site, "boss")
    page = web.get(PAGE)
    assert page.status_code == 200
    assert "No trust policies" in page.text
    assert f'<option value="{site.issuer.url}">' in page.text
    assert exchange(site, "acme/app").status_code == 400

    added = web.post(
        PAGE,
        {
            "csrf": web.csrf,
            "issuer": site.issuer.url,
            "claims": "repository=acme/app\r\nref=refs/heads/*\r\n",
        },
    )
    assert added.status_code == 303 and added.headers["location"] == PAGE + "?done=added"
    page = web.get(added.headers["location"])
    assert "Trust policy added." in page.text
    assert "<code>ref=refs/heads/*</code>, <code>repository=acme/app</code>" in page.text
    assert site.server.url in page.text  # the default audience
    assert exchange(site, "acme/app").status_code == 200

    policy_id = page.text.split("settings/trust/")[1].split("/delete")[0]
    removed = web.post(f"{PAGE}/{policy_id}/delete", {"csrf": web.csrf})
    assert removed.status_code == 303 and removed.headers["location"] == PAGE + "?done=removed"
    page = web.get(removed.headers["location"])
    assert "Trust policy removed." in page.text and "No trust policies" in page.text
    assert exchange(site, "acme/app").status_code == 400


def test_a_bad_policy_is_refused_and_changes_nothing(site: Site) -> None:
    web = signed_in(site, "boss")
    for claims in ("repository=*", "aud=x", "just-a-name", ""):
        resp = web.post(PAGE, {"csrf": web.csrf, "issuer": site.issuer.url, "claims": claims})
        assert resp.status_code == 400, resp.text
    resp = web.post(PAGE, {"csrf": web.csrf, "issuer": "https://evil.example", "claims": "a=b"})
    assert resp.status_code == 400 and "not trusted" in resp.text
    assert "No trust policies" in web.get(PAGE).text


def test_without_the_csrf_token_nothing_changes(site: Site) -> None:
    web = signed_in(site, "boss")
    resp = web.post(
        PAGE, {"csrf": "forged", "issuer": site.issuer.url, "claims": "repository=acme/app"}
    )
    assert resp.status_code == 403
    assert "No trust policies" in web.get(PAGE).text


def test_only_admins_see_the_page(site: Site) -> None:
    """A writer, an anonymous visitor: 'Not found', like a private or missing repository."""
    dev = signed_in(site, "dev")
    for path in (PAGE, "/acme/hidden/settings/trust", "/acme/nothing/settings/trust"):
        assert dev.get(path).status_code == 404
        assert WebSession(site.server.url).get(path).status_code == 404
    resp = dev.post(
        PAGE, {"csrf": dev.csrf, "issuer": site.issuer.url, "claims": "repository=acme/app"}
    )
    assert resp.status_code == 404
    assert "No trust policies" in signed_in(site, "boss").get(PAGE).text
