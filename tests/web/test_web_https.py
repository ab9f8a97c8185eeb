"""The pages in a real browser on ``https://HOST`` with the registry on ``containers.HOST``.

Chromium trusts exactly the server key from ``cargobay tls init``
(``--ignore-certificate-errors-spki-list``), nothing else; the names resolve through
``/etc/hosts``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients import make_clients
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from images import build_image
from isolation import (
    PASSWORD,
    TEST_USER,
    Deployment,
    hosts_entries,
    start_isolated,
    unique_hostname,
)
from playwright.sync_api import Browser, Playwright
from webui import sign_in

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    site = unique_hostname()
    with hosts_entries(site, f"containers.{site}"):
        started = start_isolated(tmp_path_factory.mktemp("https-web"), "direct", hostname=site)
        try:
            yield started
        finally:
            started.stop()


def _spki_pin(cert: Path) -> str:
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def https_browser(playwright: Playwright, deployment: Deployment) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    pin = _spki_pin(deployment.tls_dir / "server.crt")
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--ignore-certificate-errors-spki-list={pin}",
        ],
    )
    yield launched
    launched.close()


def test_pages_over_https_name_the_registry_host(
    https_browser: Browser, deployment: Deployment, tmp_path: Path
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1")
    clients = make_clients(tmp_path / "clients")
    clients.store_credentials(deployment.registry_address, *deployment.auth)
    clients.skopeo(
        "copy",
        "--dest-cert-dir",
        str(deployment.cert_dir),
        f"oci:{layout}:v1",
        f"docker://{deployment.registry_address}/e2e/web-https:v1",
    )
    context = https_browser.new_context()
    page = context.new_page()
    try:
        response = page.goto(f"{deployment.site_url}/")
        assert response is not None and response.ok
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert page.locator("#isolation-off").count() == 0
        sign_in(page, deployment.site_url, TEST_USER, PASSWORD)
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["cargobay_session"]["secure"] is True
        page.goto(f"{deployment.site_url}/orgs/e2e/packages/container/package/web-https")
        pull = page.locator("#pull-command").inner_text()
        assert pull.startswith(f"docker pull {deployment.registry_address}/e2e/web-https")
        # The seed's token shortcut, then the token page's docker login line.
        page.goto(f"{deployment.site_url}/settings/tokens/new?scopes=write:packages")
        assert page.locator("input[name=scopes][value='write:packages']").is_checked()
        page.fill("input[name=note]", "https test")
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert f"docker login {deployment.registry_address} -u {TEST_USER}" in page.content()
        # The registry host shows no pages, even to a signed-in browser.
        refused = page.goto(f"{deployment.registry_url}/settings/tokens")
        assert refused is not None and refused.status == 404
    finally:
        context.close()
    shutil.rmtree(tmp_path / "clients", ignore_errors=True)
