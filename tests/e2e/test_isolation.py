"""Subdomain isolation over real TLS: the registry on ``containers.HOST``, the site on ``HOST``.

Every test runs twice: against ``cargobay serve --tls-cert`` itself (``direct``) and against
cargobay in plain HTTP behind an nginx from Debian that terminates TLS (``nginx``, with
``CARGOBAY_TRUSTED_PROXIES`` naming it). Both names resolve through ``/etc/hosts``; clients trust
the CA from ``cargobay tls init`` (``--cert-dir``, ``/etc/docker/certs.d``), never an insecure
flag.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from clients import Clients, make_clients
from cryptography import x509
from images import (
    PulledDir,
    build_image,
    build_multiarch,
    child_manifests,
    layout_contents,
    layout_manifest,
)
from isolation import (
    PASSWORD,
    TEST_USER,
    Deployment,
    hosts_entries,
    start_isolated,
    unique_hostname,
)
from kit import digest_of

pytestmark = [pytest.mark.e2e]

DOCKER_CERTS = Path("/etc/docker/certs.d")


@pytest.fixture(scope="module", params=["direct", "nginx"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    if request.param == "nginx" and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is missing (Debian: apt-get install nginx)")
    site = unique_hostname()
    with hosts_entries(site, f"containers.{site}"):
        started = start_isolated(
            tmp_path_factory.mktemp(f"isolated-{request.param}"),
            request.param,
            hostname=site,
            sign_in_failures=3,
        )
        # docker's daemon reads the CA of host:port from certs.d (made here, removed after).
        docker_dir = DOCKER_CERTS / started.registry_address
        docker_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(started.ca, docker_dir / "ca.crt")
        try:
            yield started
        finally:
            shutil.rmtree(docker_dir, ignore_errors=True)
            started.stop()


@pytest.fixture(scope="module")
def tls_clients(tmp_path_factory: pytest.TempPathFactory, deployment: Deployment) -> Clients:
    clients = make_clients(tmp_path_factory.mktemp("tls-clients"))
    clients.store_credentials(deployment.registry_address, *deployment.auth)
    return clients


@pytest.fixture
def http(deployment: Deployment) -> Iterator[httpx.Client]:
    with deployment.http(timeout=30) as client:
        yield client


def _ref(deployment: Deployment, name: str) -> str:
    return f"docker://{deployment.registry_address}/{name}"


def test_single_origin_default_says_isolation_is_off(registry: Any) -> None:
    """No host name: one origin as before, and both the start-up line and the pages say
    isolation is off; forwarded headers from a client are ignored there too."""
    if registry.log_path is None or not registry.has_accounts:
        pytest.skip("cargobay only")
    assert "subdomain isolation OFF" in registry.log()
    home = httpx.get(f"{registry.url}/", headers={"X-Forwarded-Proto": "https"})
    assert home.status_code == 200
    assert 'id="isolation-off"' in home.text
    assert "strict-transport-security" not in home.headers
    challenge = httpx.get(
        f"{registry.url}/v2/", headers={"X-Forwarded-Host": "evil.example"}
    ).headers["www-authenticate"]
    assert f'realm="{registry.url}/token"' in challenge


def test_startup_says_where_each_host_is(deployment: Deployment) -> None:
    log = deployment.log()
    assert "subdomain isolation on" in log
    assert f"docker login {deployment.registry_host}" in log


def test_docker_login_over_https_without_insecure_settings(
    deployment: Deployment, tls_clients: Clients, tmp_path: Path
) -> None:
    docker = tls_clients.without_credentials(tmp_path)
    done = docker.docker(
        "login",
        deployment.registry_address,
        "-u",
        TEST_USER,
        "--password-stdin",
        input=deployment.token.encode(),
    )
    assert "Login Succeeded" in done.stdout
    saved = json.loads((tmp_path / "docker" / "config.json").read_text())
    assert deployment.registry_address in saved["auths"]
    wrong = docker.docker(
        "login", deployment.registry_address, "-u", TEST_USER, "--password-stdin",
        input=b"cbp_not_a_token", check=False,
    )  # fmt: skip
    assert wrong.returncode != 0


def test_skopeo_copy_all_of_an_index_and_back(
    deployment: Deployment, tls_clients: Clients, tmp_path: Path
) -> None:
    multi = build_multiarch(tmp_path / "src", "multi")
    index = (tmp_path / "src" / "blobs" / "sha256" / multi.digest.split(":")[1]).read_bytes()
    ref = _ref(deployment, "e2e/multi:v1")
    certs = str(deployment.cert_dir)
    tls_clients.skopeo(
        "copy", "--all", "--dest-cert-dir", certs, f"oci:{tmp_path / 'src'}:multi", ref
    )
    pulled = tmp_path / "pulled"
    tls_clients.skopeo("copy", "--all", "--src-cert-dir", certs, ref, f"dir:{pulled}")
    assert PulledDir(pulled).manifest() == index
    assert digest_of(PulledDir(pulled).manifest()) == multi.digest
    for child in child_manifests(index):
        assert digest_of(PulledDir(pulled).manifest(child["digest"])) == child["digest"]
    # Without the CA the certificate is refused: TLS is real, not skipped.
    (tmp_path / "no-ca").mkdir()
    untrusted = tls_clients.skopeo(
        "inspect", "--raw", "--cert-dir", str(tmp_path / "no-ca"), ref, check=False
    )
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr


def test_podman_push_and_pull(deployment: Deployment, tls_clients: Clients, tmp_path: Path) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1")
    _, manifest = layout_manifest(layout, "v1")
    blobs = layout_contents(layout, "v1")
    certs = str(deployment.cert_dir)
    source = f"{deployment.registry_address}/e2e/podman-src:v1"
    tls_clients.skopeo("copy", "--dest-cert-dir", certs, f"oci:{layout}:v1", f"docker://{source}")
    tls_clients.podman("pull", "--cert-dir", certs, source, timeout=300)
    target = f"{deployment.registry_address}/e2e/podman-dst:v1"
    tls_clients.podman("tag", source, target)
    tls_clients.podman("push", "--cert-dir", certs, target, timeout=300)
    pulled = tmp_path / "pulled"
    tls_clients.skopeo("copy", "--src-cert-dir", certs, f"docker://{target}", f"dir:{pulled}")
    layers = json.loads(PulledDir(pulled).manifest())["layers"]
    # podman may re-encode the manifest: the same layers, byte for byte, is what users see.
    assert [layer["digest"] for layer in layers] == [
        layer["digest"] for layer in json.loads(manifest)["layers"]
    ]
    for layer in layers:
        assert PulledDir(pulled).blob(layer["digest"]) == blobs[layer["digest"]]


def _signed_in_cookie(deployment: Deployment) -> tuple[httpx.Response, str]:
    with deployment.http(timeout=30, follow_redirects=False) as client:
        form = client.get(f"{deployment.site_url}/login")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed = client.post(
            f"{deployment.site_url}/login",
            data={"login": TEST_USER, "password": PASSWORD, "csrf": csrf, "next": "/"},
        )
        cookie = signed.cookies.get("cargobay_session") or ""
        return signed, cookie


def test_site_session_is_secure_and_never_authenticates_the_registry(
    deployment: Deployment, tls_clients: Clients, http: httpx.Client, tmp_path: Path
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1")
    ref = _ref(deployment, "e2e/private-cookie:v1")
    tls_clients.skopeo("copy", "--dest-cert-dir", str(deployment.cert_dir), f"oci:{layout}:v1", ref)
    signed, cookie = _signed_in_cookie(deployment)
    assert signed.status_code == 303, signed.text
    assert cookie
    set_cookie = signed.headers.get_list("set-cookie")
    assert any("cargobay_session=" in c and "Secure" in c and "HttpOnly" in c for c in set_cookie)
    assert signed.headers["strict-transport-security"].startswith("max-age=")
    # The cookie works on the site...
    page = http.get(
        f"{deployment.site_url}/settings/tokens", headers={"Cookie": f"cargobay_session={cookie}"}
    )
    assert page.status_code == 200 and TEST_USER in page.text
    # ...and never on the registry host, sent by hand to any registry path.
    manifest_url = f"{deployment.registry_url}/v2/e2e/private-cookie/manifests/v1"
    for url in (f"{deployment.registry_url}/v2/", manifest_url, f"{deployment.registry_url}/token"):
        r = http.get(url, headers={"Cookie": f"cargobay_session={cookie}"})
        if url.endswith("/token"):
            token = r.json()["token"]
            denied = http.get(manifest_url, headers={"Authorization": f"Bearer {token}"})
            assert denied.status_code in (401, 404), "an anonymous token, not the user's"
        else:
            assert r.status_code == 401, (url, r.status_code, r.text)
        assert "set-cookie" not in r.headers
    assert http.get(manifest_url, auth=deployment.auth).status_code == 200


def test_site_host_refuses_registry_paths_without_redirects(
    deployment: Deployment, tls_clients: Clients, http: httpx.Client, tmp_path: Path
) -> None:
    layout = tmp_path / "src"
    build_image(layout, "v1")
    ref = _ref(deployment, "e2e/refused:v1")
    tls_clients.skopeo("copy", "--dest-cert-dir", str(deployment.cert_dir), f"oci:{layout}:v1", ref)
    config = json.loads(layout_manifest(layout, "v1")[1])["config"]["digest"]
    for path in (
        "/v2/",
        f"/v2/e2e/refused/blobs/{config}",
        "/v2/e2e/refused/manifests/v1",
        "/token",
    ):
        r = http.get(f"{deployment.site_url}{path}", auth=deployment.auth)
        assert r.status_code == 404, (path, r.status_code)
        assert "location" not in r.headers
        assert deployment.registry_host in r.text
    # The same blob is served on the registry host.
    blob = http.get(
        f"{deployment.registry_url}/v2/e2e/refused/blobs/{config}", auth=deployment.auth
    )
    assert blob.status_code == 200 and digest_of(blob.content) == config
    # REST links point at pages, on the site host.
    package = http.get(
        f"{deployment.site_url}/api/v3/orgs/e2e/packages/container/refused", auth=deployment.auth
    )
    assert package.status_code == 200, package.text
    assert package.json()["html_url"].startswith(f"{deployment.site_url}/")


def test_registry_host_refuses_pages_and_the_rest_api(
    deployment: Deployment, http: httpx.Client
) -> None:
    for path in ("/", "/login", "/api/v3/user", "/settings/tokens/new?scopes=write:packages"):
        r = http.get(f"{deployment.registry_url}{path}", auth=deployment.auth)
        assert r.status_code == 404, (path, r.status_code)
        assert deployment.site_host in r.text
        assert "set-cookie" not in r.headers
    # The site serves them; the seed's token shortcut works on the site host.
    assert http.get(f"{deployment.site_url}/api/v3/user", auth=deployment.auth).status_code == 200
    shortcut = http.get(f"{deployment.site_url}/settings/tokens/new?scopes=write:packages")
    assert shortcut.status_code in (200, 303)


def test_unknown_host_is_misdirected(deployment: Deployment, http: httpx.Client) -> None:
    r = http.get(f"{deployment.site_url}/", headers={"Host": f"other.{deployment.site_host}"})
    assert r.status_code == 421
    r = http.get(f"{deployment.registry_url}/v2/", headers={"Host": f"127.0.0.1:{deployment.port}"})
    assert r.status_code == 421


def test_realm_and_upload_locations_name_the_registry_host(
    deployment: Deployment, http: httpx.Client
) -> None:
    challenge = http.get(f"{deployment.registry_url}/v2/").headers["www-authenticate"]
    assert f'realm="{deployment.registry_url}/token"' in challenge
    assert f'service="{deployment.registry_address}"' in challenge
    started = http.post(
        f"{deployment.registry_url}/v2/e2e/locations/blobs/uploads/", auth=deployment.auth
    )
    assert started.status_code == 202
    location = urljoin(f"{deployment.registry_url}/v2/", started.headers["location"])
    assert urlsplit(location).netloc == deployment.registry_address
    data = b"located"
    done = http.put(
        location, params={"digest": digest_of(data)}, content=data, auth=deployment.auth
    )
    assert done.status_code == 201
    blob = urljoin(f"{deployment.registry_url}/v2/", done.headers["location"])
    assert urlsplit(blob).netloc == deployment.registry_address
    assert http.get(blob, auth=deployment.auth).content == data
    # Pages and REST name the registry host in pull commands, the site in html_url.
    openapi = http.get(f"{deployment.site_url}/api/v3/openapi.json").json()
    assert {"url": f"{deployment.site_url}/api/v3"} in openapi["servers"]
    assert not any(deployment.registry_host in server["url"] for server in openapi["servers"])


def test_html_blob_is_served_non_executably(deployment: Deployment, http: httpx.Client) -> None:
    html = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
    digest = digest_of(html)
    pushed = http.post(
        f"{deployment.registry_url}/v2/e2e/html/blobs/uploads/",
        params={"digest": digest},
        content=html,
        auth=deployment.auth,
    )
    assert pushed.status_code == 201
    r = http.get(f"{deployment.registry_url}/v2/e2e/html/blobs/{digest}", auth=deployment.auth)
    assert r.status_code == 200 and r.content == html
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["content-disposition"].startswith("attachment")
    assert "access-control-allow-credentials" not in r.headers
    assert "access-control-allow-origin" not in r.headers
    refused = http.get(f"{deployment.site_url}/v2/e2e/html/blobs/{digest}", auth=deployment.auth)
    assert refused.status_code == 404 and html not in refused.content


def test_spoofed_forwarded_headers_change_nothing(deployment: Deployment) -> None:
    """Failed sign-ins are counted per client address: from 127.0.0.2, every attempt claims
    another address in X-Forwarded-For and another user name, yet the limit is reached. The
    limit is that address's alone (127.0.0.1 is not blocked): behind nginx, the proxy's own
    X-Forwarded-For is what names the client."""
    transport = httpx.HTTPTransport(
        local_address="127.0.0.2",
        verify=ssl.create_default_context(cafile=deployment.ca),
    )
    with httpx.Client(transport=transport, timeout=30) as spoofer:
        statuses = []
        for attempt in range(5):
            r = spoofer.get(
                f"{deployment.registry_url}/token",
                auth=(f"nobody{attempt}", "cbp_wrong"),
                headers={"X-Forwarded-For": f"203.0.113.{attempt}", "X-Real-IP": "203.0.113.9"},
            )
            statuses.append(r.status_code)
        # The third failure (sign_in_failures=3) reaches the limit of the one real address.
        assert statuses == [401, 401, 429, 429, 429]
        challenge = spoofer.get(
            f"{deployment.registry_url}/v2/",
            headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
        ).headers["www-authenticate"]
        assert f'realm="{deployment.registry_url}/token"' in challenge
    with deployment.http(timeout=30) as other:
        r = other.get(f"{deployment.registry_url}/token", auth=("nobody-else", "cbp_wrong"))
        assert r.status_code == 401


def test_sighup_serves_a_renewed_certificate(deployment: Deployment, tmp_path: Path) -> None:
    """Last: the deployment's certificate is replaced (later tests would not trust it)."""
    if deployment.mode != "direct":
        pytest.skip("behind nginx the proxy holds the certificate")

    def served() -> x509.Certificate:
        pem = ssl.get_server_certificate(("127.0.0.1", deployment.port))
        return x509.load_pem_x509_certificate(pem.encode())

    before = served().serial_number
    renewed = tmp_path / "renewed"
    init = [sys.executable, "-m", "cargobay", "tls", "init", "--hostname", deployment.site_host]
    subprocess.run(
        [*init, "--dir", str(renewed)],
        check=True,
        capture_output=True,
    )
    for name in ("server.crt", "server.key"):
        shutil.copy(renewed / name, deployment.tls_dir / name)
    new = x509.load_pem_x509_certificate((renewed / "server.crt").read_bytes()).serial_number
    os.kill(deployment.processes[-1].pid, signal.SIGHUP)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if served().serial_number == new:
                break
        time.sleep(0.5)
    assert before != new
    assert served().serial_number == new, f"still the old certificate:\n{deployment.log()[-3000:]}"
    assert deployment.processes[-1].poll() is None
