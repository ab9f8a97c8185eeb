"""Managing trust policies: the operator CLI (``repo trust add|list|remove``) and the REST API
(``/api/v3/repos/{owner}/{repo}/trust-policies``), who may, and what a bad policy gets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from trustkit import Trust

API = "/api/v3/repos/{}/trust-policies"


@pytest.fixture(scope="module")
def people(trust: Trust) -> dict[str, str]:
    """PATs: ``maint`` (write on octo/app), ``outsider`` (nothing); a workflow token of
    octo/app."""
    outputs = trust.cli(
        ["user", "create", "maint"],
        ["user", "create", "outsider"],
        ["repo", "grant", "octo/app", "maint", "write"],
        ["token", "create", "--user", "maint", "--scopes", "read:packages,write:packages"],
        ["token", "create", "--user", "outsider", "--scopes", "read:packages,write:packages"],
        ["token", "workflow", "--repository", "octo/app"],
    )
    return {"maint": outputs[3], "outsider": outputs[4], "workflow": outputs[5]}


def rest(
    trust: Trust, token: str | None, method: str, repository: str, suffix: str = "", **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = trust.server.url + API.format(repository) + suffix
    return httpx.request(method, url, headers=headers, timeout=30, **kw)


def test_cli_add_list_remove(trust: Trust) -> None:
    issuer = trust.listed.url
    added, listed = trust.cli(
        [
            "repo",
            "trust",
            "add",
            "octo/managed",
            "--issuer",
            issuer,
            "--claim",
            "repository=octo/managed",
            "--claim",
            "ref=refs/tags/v*",
            "--audience",
            "cargobay",
        ],
        ["repo", "trust", "list", "octo/managed"],
    )
    assert added.startswith("added trust policy ") and added.endswith(" to octo/managed")
    policy_id = added.split()[3]
    assert f"{policy_id}\t{issuer}\tcargobay\tref=refs/tags/v* repository=octo/managed" in listed
    # the policy works: a tag push of octo/managed, for the audience "cargobay"
    id_token = trust.listed.mint("cargobay", repository="octo/managed", ref="refs/tags/v1.2")
    assert trust.exchange(id_token, scope="repository:octo/managed:push").status_code == 200
    removed, listed = trust.cli(
        ["repo", "trust", "remove", "octo/managed", policy_id],
        ["repo", "trust", "list", "octo/managed"],
    )
    assert removed == f"removed trust policy {policy_id} of octo/managed"
    assert issuer not in listed
    id_token = trust.listed.mint("cargobay", repository="octo/managed", ref="refs/tags/v1.2")
    resp = trust.exchange(id_token, scope="repository:octo/managed:push")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--issuer", "https://gitlab.example.com", "--claim", "project_path=a/b"], "not trusted"),
        (["--claim", "repository=*"], "pin a value"),
        (["--claim", "aud=x"], "can't be a condition"),
        (["--claim", "repository"], "NAME=PATTERN"),
        ([], "Missing option '--claim'"),
    ],
)
def test_cli_refuses_bad_policies(trust: Trust, args: list[str], says: str) -> None:
    if "--issuer" not in args:
        args = ["--issuer", trust.listed.url, *args]
    done = trust.cli_run("repo", "trust", "add", "octo/managed", *args)
    assert done.returncode != 0
    assert says in done.stderr, done.stderr
    assert trust.listed.url not in trust.cli(["repo", "trust", "list", "octo/managed"])[0]


def test_rest_create_list_delete(trust: Trust) -> None:
    admin = trust.server.token
    body = {
        "issuer": trust.listed.url,
        "claims": {"repository": "octo/managed", "ref": "refs/heads/main"},
    }
    created = rest(trust, admin, "POST", "octo/managed", json=body)
    assert created.status_code == 201, created.text
    policy = created.json()
    assert policy["repository"] == "octo/managed"
    assert policy["issuer"] == trust.listed.url
    assert policy["audience"] == trust.audience  # the default: the registry's base URL
    assert policy["claims"] == body["claims"]
    listed = rest(trust, admin, "GET", "octo/managed")
    assert listed.status_code == 200
    assert policy in listed.json()

    id_token = trust.listed.mint(trust.audience, repository="octo/managed")
    assert trust.exchange(id_token, scope="repository:octo/managed:push").status_code == 200

    assert rest(trust, admin, "DELETE", "octo/managed", f"/{policy['id']}").status_code == 204
    assert rest(trust, admin, "DELETE", "octo/managed", f"/{policy['id']}").status_code == 404
    assert policy not in rest(trust, admin, "GET", "octo/managed").json()
    id_token = trust.listed.mint(trust.audience, repository="octo/managed")
    assert trust.exchange(id_token, scope="repository:octo/managed:push").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"issuer": "https://gitlab.example.com", "claims": {"project_path": "a/b"}},
        {"claims": {"repository": "*"}},
        {"claims": {"exp": "1"}},
        {"claims": {}},
        {"claims": {"bad name": "x"}},
        {"claims": {"repository": "octo/app\n"}},
    ],
)
def test_rest_refuses_bad_policies(trust: Trust, body: dict[str, Any]) -> None:
    body = {"issuer": trust.listed.url, **body}
    before = rest(trust, trust.server.token, "GET", "octo/managed").json()
    resp = rest(trust, trust.server.token, "POST", "octo/managed", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"]
    assert rest(trust, trust.server.token, "GET", "octo/managed").json() == before


def test_who_may_manage_policies(trust: Trust, people: dict[str, str]) -> None:
    body = {"issuer": trust.listed.url, "claims": {"repository": "octo/app"}}
    for method, suffix, kw in (("GET", "", {}), ("POST", "", {"json": body}), ("DELETE", "/1", {})):
        # a writer (not admin) of the repository: 403; a workflow token: 403
        assert rest(trust, people["maint"], method, "octo/app", suffix, **kw).status_code == 403
        assert rest(trust, people["workflow"], method, "octo/app", suffix, **kw).status_code == 403
        # an outsider: the private repository is missing, like one that does not exist
        secret = rest(trust, people["outsider"], method, "octo/secret", suffix, **kw)
        missing = rest(trust, people["outsider"], method, "octo/nothing", suffix, **kw)
        assert secret.status_code == missing.status_code == 404
        assert rest(trust, None, method, "octo/app", suffix, **kw).status_code == 401
