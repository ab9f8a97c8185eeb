"""The webhook settings pages over plain HTTP against a real server delivering to a real
receiver: an organization owner adds a hook with the CSRF-protected form, sees its deliveries
(status, attempts) and redelivers one; the secret is never shown; a member or an outsider
gets 'Not found'; a form without the session's CSRF token changes nothing."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from kit import Operator
from webui import WebSession

PAGE = "/orgs/acme/settings/hooks"


class Receiver:
    def __init__(self) -> None:
        self.guids: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.guids.append(self.headers["X-GitHub-Delivery"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/in"

    def wait(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while len(self.guids) < count:
            assert time.monotonic() < deadline, self.guids
            time.sleep(0.1)


@pytest.fixture(scope="module")
def site(server_factory: Any) -> Iterator[tuple[Any, Receiver, str]]:
    receiver = Receiver()
    server = server_factory(webhook_allowed_hosts="127.0.0.1", webhook_interval=0.2)
    outputs = (
        Operator()
        .user("boss", "boss-password-1")
        .user("dev", "dev-password-1")
        .user("stranger", "stranger-password-1")
        .add("org", "create", "acme", "--owner", "boss")
        .add("org", "add-member", "acme", "dev")
        .add("token", "create", "--user", "boss", "--scopes", "read:packages,write:packages")
        .run(server)
    )
    try:
        yield server, receiver, outputs[-1]
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def signed_in(server: Any, login: str) -> WebSession:
    web = WebSession(server.url)
    assert web.sign_in(login, f"{login}-password-1").status_code == 303
    return web


def push(server: Any, token: str, repo: str) -> None:
    with httpx.Client(base_url=server.url, auth=("boss", token), timeout=30) as http:
        config = b"{}"
        digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        r = http.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=config)
        assert r.status_code == 201, r.text
        manifest = (
            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'
            + digest
            + '","size":2},"layers":[]}'
        )
        r = http.put(
            f"/v2/{repo}/manifests/v1",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text


def test_an_owner_adds_a_hook_sees_deliveries_and_redelivers(site: Any) -> None:
    server, receiver, token = site
    web = signed_in(server, "boss")
    page = web.get(PAGE)
    assert page.status_code == 200 and "No webhooks." in page.text
    stale = web.post(PAGE, {"csrf": "wrong", "url": receiver.url})
    assert stale.status_code == 403
    assert "No webhooks." in web.get(PAGE).text
    refused = web.post(PAGE, {"csrf": web.csrf, "url": "http://10.0.0.1/in"})
    assert refused.status_code == 400 and "private address" in refused.text
    added = web.post(
        PAGE,
        {
            "csrf": web.csrf,
            "url": receiver.url,
            "secret": "page-secret-value",
            "content_type": "json",
            "event_registry_package": "1",
        },
    )
    assert added.status_code == 303 and added.headers["location"] == f"{PAGE}?done=added"
    push(server, token, "acme/paged")
    receiver.wait(1)
    deadline = time.monotonic() + 30
    while "OK" not in (page := web.get(PAGE)).text:
        assert time.monotonic() < deadline, page.text
        time.sleep(0.2)
    assert receiver.guids[0] in page.text
    assert "page-secret-value" not in page.text and "********" in page.text
    action = re.search(
        r'action="(/orgs/acme/settings/hooks/\d+/deliveries/\d+/redeliver)"', page.text
    )
    assert action is not None, page.text
    again = web.post(action.group(1), {"csrf": web.csrf})
    assert again.status_code == 303
    receiver.wait(2)
    assert receiver.guids[1] == receiver.guids[0]
    assert "(redelivery)" in web.get(PAGE).text


def test_members_and_strangers_get_not_found(site: Any) -> None:
    server, receiver, _ = site
    for login in ("dev", "stranger"):
        web = signed_in(server, login)
        assert web.get(PAGE).status_code == 404
        assert web.get("/admin/hooks").status_code == 404
        refused = web.post(PAGE, {"csrf": web.csrf, "url": receiver.url})
        assert refused.status_code == 404
        assert web.get("/settings/hooks").status_code == 200
    assert WebSession(server.url).get(PAGE).status_code == 404
