"""Trusted publishing from the outside: a CI job's OIDC ID token (from a real local issuer)
exchanged at ``/token``, then real clients with the workflow token: ``docker login``, skopeo
push and pull, ``docker manifest inspect``; the package is linked to the repository, and the
token deletes and restores it through REST. ``cargobay ci-login`` does the Actions flow
(request the ID token, exchange, ``docker login``/``podman login``) in one step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from clients import ON_REFERENCE, Clients
from images import (
    PulledDir,
    assert_same_image,
    build_image,
    describe,
    layout_contents,
    layout_manifest,
)
from oidc_issuer import Issuer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no accounts"),
]

ORG = "ci"
REPOSITORY = "ci/app"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"


@dataclass
class CI:
    server: Any
    issuer: Issuer

    def exchange(self, id_token: str) -> str:
        resp = httpx.post(
            f"{self.server.url}/token",
            data={
                "grant_type": GRANT_TYPE,
                "subject_token": id_token,
                "subject_token_type": ID_TOKEN_TYPE,
                "scope": f"repository:{REPOSITORY}:push,pull",
            },
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["access_token"]
        return token


@pytest.fixture(scope="module")
def ci(server_factory: Any) -> Iterator[CI]:
    issuer = Issuer.start()
    try:
        server = server_factory(oidc_issuers=issuer.url)
        server.create_namespace(ORG)
        server.cli("repo", "create", REPOSITORY)
        server.cli(
            "repo", "trust", "add", REPOSITORY, "--issuer", issuer.url,
            "--claim", f"repository={REPOSITORY}", "--claim", "ref=refs/heads/main",
        )  # fmt: skip
        yield CI(server, issuer)
    finally:
        issuer.stop()


@pytest.fixture
def bare(clients: Clients, tmp_path: Path) -> Clients:
    """The session's clients without any stored credentials."""
    return clients.without_credentials(tmp_path / "bare")


def rest(ci: CI, token: str, method: str, path: str) -> httpx.Response:
    return httpx.request(
        method,
        f"{ci.server.url}/api/v3/orgs/{ORG}/packages/container/{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_exchange_docker_login_skopeo_push_pull_rest_delete_restore(
    ci: CI, bare: Clients, tmp_path: Path
) -> None:
    token = ci.exchange(ci.issuer.mint(ci.server.url, repository=REPOSITORY))
    proc = bare.docker(
        "login", ci.server.address, "-u", "x-access-token", "--password-stdin",
        input=token.encode(),
    )  # fmt: skip
    assert "Login Succeeded" in proc.stdout, describe(proc)

    # skopeo finds the credentials docker login stored (its own auth file is empty)
    layout = tmp_path / "src"
    build_image(layout, "v1", labels={"org.opencontainers.image.source": "https://x/ci/app"})
    _, manifest = layout_manifest(layout, "v1")
    ref = f"docker://{ci.server.address}/{ORG}/app:v1"
    bare.skopeo("copy", "--retry-times", "0", "--dest-tls-verify=false", f"oci:{layout}:v1", ref)
    pulled = tmp_path / "pulled"
    bare.skopeo("copy", "--src-tls-verify=false", ref, f"dir:{pulled}")
    assert_same_image(PulledDir(pulled), manifest, layout_contents(layout, "v1"))
    inspect = bare.docker("manifest", "inspect", "--insecure", f"{ci.server.address}/{ORG}/app:v1")
    assert json.loads(inspect.stdout) == json.loads(manifest)

    # the package the workflow created is linked to its repository
    package = rest(ci, token, "GET", "app")
    assert package.status_code == 200, package.text
    assert package.json()["repository"]["full_name"] == REPOSITORY
    # ... and the workflow token deletes and restores it
    assert rest(ci, token, "DELETE", "app").status_code == 204
    gone = bare.skopeo("inspect", "--raw", "--tls-verify=false", ref, check=False)
    assert gone.returncode != 0, describe(gone)
    assert rest(ci, token, "POST", "app/restore").status_code == 204
    back = bare.skopeo("inspect", "--raw", "--tls-verify=false", ref)
    assert back.stdout.encode() == manifest


def ci_login(ci: CI, clients: Clients, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargobay", "ci-login", ci.server.url, *args],
        env={**os.environ, **clients.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ci_login_in_github_or_forgejo_actions(ci: CI, bare: Clients, tmp_path: Path) -> None:
    """The job's environment has the Actions ID-token request URL and token: ``ci-login``
    requests the ID token for the registry's audience, exchanges it and runs docker login."""
    ci.issuer.job_claims = {"repository": REPOSITORY}
    done = ci_login(ci, bare, "--repository", REPOSITORY, **ci.issuer.actions_env())
    assert done.returncode == 0, done.stderr
    asked = [parse_qs(urlsplit(r).query) for r in ci.issuer.requests if r.startswith("/actions/")]
    assert asked == [{"api-version": ["2.0"], "audience": [ci.server.url]}]
    config = json.loads(bare.docker_config.read_text())
    assert ci.server.address in config["auths"]
    layout = tmp_path / "src"
    build_image(layout, "v1")
    ref = f"docker://{ci.server.address}/{ORG}/ci-login:v1"
    bare.skopeo("copy", "--retry-times", "0", "--dest-tls-verify=false", f"oci:{layout}:v1", ref)


def test_ci_login_with_podman_and_an_id_token_variable(ci: CI, bare: Clients) -> None:
    """GitLab CI's ``id_tokens`` put the ID token in a variable; podman signs in with it."""
    id_token = ci.issuer.mint(ci.server.url, repository=REPOSITORY)
    done = ci_login(ci, bare, "--client", "podman", CARGOBAY_ID_TOKEN=id_token)
    assert done.returncode == 0, done.stderr
    auth = json.loads(bare.auth_file.read_text())
    assert ci.server.address in auth["auths"]


def test_ci_login_says_why_the_registry_refused(ci: CI, bare: Clients) -> None:
    id_token = ci.issuer.mint(ci.server.url, repository=REPOSITORY, ref="refs/heads/dev")
    done = ci_login(ci, bare, "--repository", REPOSITORY, CARGOBAY_ID_TOKEN=id_token)
    assert done.returncode == 1
    assert "invalid_grant" in done.stderr
    assert "ref is refs/heads/dev, the policy wants refs/heads/main" in done.stderr
    assert not bare.docker_config.exists()  # nothing signed in


def test_the_audit_log_records_each_exchange(ci: CI) -> None:
    """The exchange is an event like any other: the repository owner's audit log names the
    issuer, the job (subject), the repository and the policy that matched; never the token."""
    id_token = ci.issuer.mint(ci.server.url, repository=REPOSITORY)
    token = ci.exchange(id_token)
    resp = httpx.get(
        f"{ci.server.url}/api/v3/orgs/{ORG}/audit-log",
        params={"phrase": "action:workflow_token.exchanged"},
        auth=ci.server.auth,
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    entries = resp.json()
    assert entries, "no exchange in the audit log"
    newest = entries[0]
    assert newest["action"] == "workflow_token.exchanged"
    assert newest["data"]["issuer"] == ci.issuer.url
    assert newest["data"]["repository"] == REPOSITORY
    assert isinstance(newest["data"]["policy"], int)
    assert newest["data"]["subject"]
    assert token not in resp.text and id_token not in resp.text
