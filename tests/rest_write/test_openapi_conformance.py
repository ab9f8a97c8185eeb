"""The OpenAPI document of ``/api/v3``: a valid OpenAPI 3.x document listing every route, whose
schemas describe what the server really answers, checked three ways against a live server:

- schemathesis (property-based, few examples per operation) on every read endpoint: no server
  errors, and every documented response conforms to its schema and content type;
- real answers of every endpoint (reads and writes, successes and errors) validated against the
  document by schemathesis' validator;
- the error answers every endpoint really gives (401, 403, 404, 409, 422) are documented.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rwkit import ORG, OWNER, Pkg, World, basic, describe, expect, unique

PACKAGE = "conform"

#: Every route the REST API has, by method (the documented ones must be exactly these).
PACKAGE_ROUTES = {
    "/packages/{package_type}/{package_name}": {"get", "delete", "patch"},
    "/packages/{package_type}/{package_name}/restore": {"post"},
    "/packages/{package_type}/{package_name}/versions": {"get"},
    "/packages/{package_type}/{package_name}/versions/{package_version_id}": {"get", "delete"},
    "/packages/{package_type}/{package_name}/versions/{package_version_id}/restore": {"post"},
    "/packages/{package_type}/{package_name}/access": {"get"},
    "/packages/{package_type}/{package_name}/access/users/{grantee}": {"put", "delete"},
    "/packages/{package_type}/{package_name}/access/teams/{grantee}": {"put", "delete"},
    "/packages/{package_type}/{package_name}/access/repositories/{grantee_owner}/{grantee}": {
        "put",
        "delete",
    },
    "/packages/{package_type}/{package_name}/repository": {"put", "delete"},
    "/packages/{package_type}/{package_name}/immutable-tags": {"get", "put"},
    "/packages/{package_type}/{package_name}/usage": {"get"},
    "/packages/{package_type}/{package_name}/retention": {"get", "put", "delete"},
    "/packages/{package_type}/{package_name}/retention/preview": {"get"},
    "/packages/{package_type}/{package_name}/retention/apply": {"post"},
}
OTHER_ROUTES = {
    "/user/packages": {"get"},
    "/users/{username}/packages": {"get"},
    "/orgs/{org}/packages": {"get"},
    "/user/packages/retention": {"get", "put", "delete"},
    "/users/{username}/packages/retention": {"get", "put", "delete"},
    "/orgs/{org}/packages/retention": {"get", "put", "delete"},
    "/user": {"get"},
    "/users/{username}": {"get"},
    "/admin/users": {"post"},
    "/users/{username}/suspended": {"put", "delete"},
    "/admin/organizations": {"post"},
    "/orgs/{org}": {"get", "patch"},
    "/orgs/{org}/memberships/{username}": {"put"},
    "/orgs/{org}/teams": {"post"},
    "/orgs/{org}/teams/{team_slug}/memberships/{username}": {"put"},
    "/orgs/{org}/teams/{team_slug}/repos/{owner}/{repo}": {"put"},
    "/user/repos": {"post"},
    "/orgs/{org}/repos": {"post"},
    "/repos/{owner}/{repo}": {"get"},
    "/repos/{owner}/{repo}/collaborators/{username}": {"put"},
    "/repos/{owner}/{repo}/workflow-tokens": {"post"},
    "/repos/{owner}/{repo}/trust-policies": {"get", "post"},
    "/repos/{owner}/{repo}/trust-policies/{policy_id}": {"delete"},
    "/user/tokens": {"get", "post"},
    "/user/tokens/{token_id}": {"delete"},
    "/orgs/{org}/audit-log": {"get"},
    "/user/audit-log": {"get"},
    "/admin/audit-log": {"get"},
    "/user/packages/usage": {"get"},
    "/users/{username}/packages/usage": {"get"},
    "/orgs/{org}/packages/usage": {"get"},
    "/admin/namespaces/{owner}/quota": {"get", "put", "delete"},
}
#: Webhook routes, under each of /orgs/{org}, /user and /admin.
HOOK_ROUTES = {
    "/hooks": {"get", "post"},
    "/hooks/{hook_id}": {"get", "patch", "delete"},
    "/hooks/{hook_id}/pings": {"post"},
    "/hooks/{hook_id}/deliveries": {"get"},
    "/hooks/{hook_id}/deliveries/{delivery_id}": {"get"},
    "/hooks/{hook_id}/deliveries/{delivery_id}/attempts": {"post"},
}


def all_routes() -> dict[str, set[str]]:
    routes = dict(OTHER_ROUTES)
    for prefix in ("/user", "/users/{username}", "/orgs/{org}"):
        for path, methods in PACKAGE_ROUTES.items():
            routes[prefix + path] = methods
    for prefix in ("/orgs/{org}", "/user", "/admin"):
        for path, methods in HOOK_ROUTES.items():
            routes[prefix + path] = methods
    return routes


@pytest.fixture(scope="module")
def document(world: World) -> dict[str, Any]:
    resp = expect(httpx.get(f"{world.url}/api/v3/openapi.json", timeout=30), 200)
    assert resp.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = resp.json()
    return body


@pytest.fixture(scope="module")
def conform(world: World) -> Pkg:
    """Data for the generated requests to find: ``acme/conform`` and ``boss/conform`` with an
    image, an index over two images and a deleted version; grants; the org's package public."""
    pkg = Pkg(ORG, PACKAGE)
    for owner in (ORG, OWNER):
        name = f"{owner}/{PACKAGE}"
        images = [world.push_image("owner", name, "latest") for _ in range(3)]
        world.push_index("owner", name, images[1:], "multi")
        target = Pkg(owner, PACKAGE, "users" if owner == OWNER else "orgs")
        deleted = world.version_id(target, images[0].digest)
        expect(world.client("owner").delete(target.version_path(deleted)), 204)
    world.grant(pkg, "teams", "readers", "read")
    world.grant(pkg, "repositories", f"{ORG}/tools", "write")
    expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "public"}), 200)
    return pkg


def test_the_document_is_valid_openapi_3(document: dict[str, Any], world: World) -> None:
    assert str(document["openapi"]).startswith("3."), document.get("openapi")
    assert document["info"]["title"] and document["info"]["version"]
    assert {"url": f"{world.url}/api/v3"} in document["servers"]
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()  # against the OpenAPI meta-schema; raises on any violation
    operation_ids = [
        op["operationId"] for item in document["paths"].values() for op in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"


def test_the_document_lists_every_route(document: dict[str, Any]) -> None:
    documented = {path: set(item) for path, item in document["paths"].items()}
    assert documented == all_routes()


# -- property-based: schemathesis on the read endpoints ------------------------------------------

#: Path parameters pinned to the module's data, so generated requests reach it; the rest (version
#: ids, repository names, query parameters) are generated.
PINNED = {
    "org": ORG,
    "username": OWNER,
    "package_type": "container",
    "package_name": PACKAGE,
    "owner": ORG,
    "repo": "app",
}
READ_PATHS = sorted(path for path, methods in all_routes().items() if "get" in methods)


@pytest.fixture(scope="module")
def read_api(world: World, conform: Pkg) -> Any:
    return schemathesis.openapi.from_url(f"{world.url}/api/v3/openapi.json")


@pytest.mark.parametrize("path", READ_PATHS)
def test_read_endpoint_answers_as_documented(world: World, read_api: Any, path: str) -> None:
    """No 5xx; documented statuses have their documented schema and content type. A few
    derandomized examples per endpoint (schemathesis' own pytest plugin can't load a schema
    from a fixture on pytest 9, so the strategy is driven with hypothesis directly)."""
    operation = read_api[path]["GET"]
    pinned = {k: v for k, v in PINNED.items() if "{" + k + "}" in path}
    headers = {"Authorization": basic(OWNER, world.secrets["owner"])}
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.response_schema_conformance,
        schemathesis.checks.content_type_conformance,
    ]

    @given(case=operation.as_strategy(path_parameters=pinned or None))
    @settings(
        max_examples=8,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    run()


# -- real answers against the document -----------------------------------------------------------

#: Values of path parameters for concrete requests.
PARAMS = {
    **PINNED,
    "package_version_id": "1",
    "grantee": "member",
    "grantee_owner": ORG,
    "team_slug": "readers",
    "token_id": "999999",
    "policy_id": "999999",
    "hook_id": "999999",
    "delivery_id": "999999",
}


def body_for(method: str, template: str) -> dict[str, Any] | None:
    """A valid request body for the operation (None: it takes none)."""
    if method in ("get", "delete") or template.endswith(
        ("/restore", "/apply", "/attempts", "/pings")
    ):
        return None
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/hooks/{hook_id}", {"active": False}),
        ("/hooks", {"config": {"url": "https://hooks.example.com/cargobay"}}),
        ("/access/", {"role": "read"}),
        ("/packages/{package_type}/{package_name}/repository", {"repository": f"{ORG}/app"}),
        ("/retention", {"untagged_days": 30, "tag_patterns": ["v*"]}),
        ("/packages/{package_type}/{package_name}", {"visibility": "public"}),
        ("/admin/users", {"login": unique("u")}),
        ("/admin/organizations", {"login": unique("o"), "admin": OWNER}),
        ("/teams/{team_slug}/repos/", {"permission": "pull"}),
        ("/teams", {"name": unique("t")}),
        ("/memberships/", {"role": "member"}),
        ("/trust-policies", {"issuer": "https://ci.example.com", "claims": {"repository": "x/y"}}),
        ("/repos", {"name": unique("r")}),
        ("/collaborators/", {"permission": "pull"}),
        ("/workflow-tokens", {"permission": "read"}),
        ("/user/tokens", {"scopes": ["read:packages"]}),
        ("/orgs/{org}", {"inherit_access_default": True}),
        ("/suspended", {}),
        ("/quota", {"quota": "10GB", "warn_percent": 80}),
    ]
    for needle, body in bodies:
        if needle in template:
            return body
    raise AssertionError(f"no body for {method.upper()} {template}")


def documented(document: dict[str, Any], template: str, method: str, status: int) -> bool:
    responses = document["paths"][template][method]["responses"]
    return str(status) in responses or f"{str(status)[0]}XX" in responses or "default" in responses


def test_error_answers_are_documented(world: World, document: dict[str, Any], conform: Pkg) -> None:
    """Every operation, called anonymously and by a signed-in outsider: the errors it really
    answers (401, 403, 404, ...) are in its documented responses, as GitHub's OpenAPI has them."""
    missing: dict[int, list[str]] = {}
    for template, item in sorted(document["paths"].items()):
        for method in item:
            url = "/api/v3" + template.format(**PARAMS)
            for actor in (None, "outsider"):
                resp = world.rest(actor, method.upper(), url, body_for(method, template))
                assert resp.status_code < 500, describe(resp)
                status = resp.status_code
                if status >= 400 and not documented(document, template, method, status):
                    missing.setdefault(status, []).append(f"{method.upper()} {template}")
    summary = [
        f"{status}: {len(ops)} operations, e.g. {', '.join(ops[:3])}"
        for status, ops in sorted(missing.items())
    ]
    assert not missing, "answers the document does not list:\n" + "\n".join(summary)


def test_validation_errors_match_their_documented_schema(
    world: World, read_api: Any, document: dict[str, Any]
) -> None:
    """422 is documented (FastAPI's ``HTTPValidationError``); the body must be what is served."""
    pkg = Pkg(ORG, PACKAGE)
    cases: list[tuple[str, str, str, dict[str, Any] | None]] = [
        (
            "/orgs/{org}/packages/{package_type}/{package_name}",
            "PATCH",
            pkg.path,
            {"visibility": 1},
        ),
        ("/orgs/{org}/packages", "GET", f"/api/v3/orgs/{ORG}/packages?package_type=x", None),
        ("/user/tokens", "POST", "/api/v3/user/tokens", {"scopes": []}),
    ]
    for template, method, url, body in cases:
        resp = expect(world.rest("owner", method, url, body), 422)
        assert resp.json()["message"] == "Validation Failed", describe(resp)
        read_api[template][method].validate_response(resp)
    # ... and the documented schema describes the fields really served (not FastAPI's default
    # ``{"detail": [...]}``, which validates only because ``detail`` is optional).
    ref = document["paths"]["/user/tokens"]["post"]["responses"]["422"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"message", "errors", "documentation_url"} <= set(schema["properties"]), schema


def test_success_answers_match_their_documented_schema(world: World, read_api: Any) -> None:
    """What the write endpoints answer, validated against the document."""
    pkg = Pkg(ORG, unique("schema"))
    image = world.push_image("owner", pkg.full, "v1")
    version = world.version_id(pkg, image.digest)
    org = unique("schema-org")
    base = "/orgs/{org}/packages/{package_type}/{package_name}"
    calls: list[tuple[str, str, str, str | None, dict[str, Any] | None]] = [
        # (template, method, url, actor, body)
        (base, "PATCH", pkg.path, "owner", {"visibility": "internal"}),
        (base + "/repository", "PUT", f"{pkg.path}/repository", "owner", {"repository": "app"}),
        (base + "/repository", "DELETE", f"{pkg.path}/repository", "owner", None),
        (
            base + "/access/users/{grantee}",
            "PUT",
            f"{pkg.path}/access/users/member",
            "owner",
            {"role": "read"},
        ),
        (base + "/access", "GET", f"{pkg.path}/access", "owner", None),
        (
            base + "/immutable-tags",
            "PUT",
            f"{pkg.path}/immutable-tags",
            "owner",
            {"patterns": ["release-*"]},
        ),
        (base + "/immutable-tags", "GET", f"{pkg.path}/immutable-tags", "owner", None),
        (base + "/usage", "GET", f"{pkg.path}/usage", "owner", None),
        (
            "/orgs/{org}/packages/retention",
            "PUT",
            f"/api/v3/orgs/{ORG}/packages/retention",
            "owner",
            {"untagged_days": 90},
        ),
        (
            "/orgs/{org}/packages/retention",
            "GET",
            f"/api/v3/orgs/{ORG}/packages/retention",
            "owner",
            None,
        ),
        (
            base + "/retention",
            "PUT",
            f"{pkg.path}/retention",
            "owner",
            {"untagged_days": 30, "keep_tags": 5, "tag_patterns": ["v*", "re:^rc-[0-9]+$"]},
        ),
        (base + "/retention", "GET", f"{pkg.path}/retention", "owner", None),
        (base + "/retention/preview", "GET", f"{pkg.path}/retention/preview", "owner", None),
        (base + "/retention/apply", "POST", f"{pkg.path}/retention/apply", "owner", None),
        (base + "/retention", "DELETE", f"{pkg.path}/retention", "owner", None),
        (
            "/orgs/{org}/packages/retention",
            "DELETE",
            f"/api/v3/orgs/{ORG}/packages/retention",
            "owner",
            None,
        ),
        (
            base + "/versions/{package_version_id}",
            "DELETE",
            pkg.version_path(version),
            "owner",
            None,
        ),
        (base + "/versions", "GET", f"{pkg.path}/versions?state=deleted", "owner", None),
        (
            base + "/versions/{package_version_id}/restore",
            "POST",
            f"{pkg.version_path(version)}/restore",
            "owner",
            None,
        ),
        (base, "DELETE", pkg.path, "owner", None),
        (base + "/restore", "POST", f"{pkg.path}/restore", "owner", None),
        ("/admin/users", "POST", "/api/v3/admin/users", "admin", {"login": unique("u")}),
        (
            "/admin/organizations",
            "POST",
            "/api/v3/admin/organizations",
            "admin",
            {"login": org, "admin": OWNER},
        ),
        ("/orgs/{org}", "GET", f"/api/v3/orgs/{org}", None, None),
        (
            "/orgs/{org}",
            "PATCH",
            f"/api/v3/orgs/{org}",
            "owner",
            {"package_visibilities": ["private"]},
        ),
        ("/orgs/{org}/teams", "POST", f"/api/v3/orgs/{org}/teams", "owner", {"name": "Ops"}),
        ("/orgs/{org}/repos", "POST", f"/api/v3/orgs/{org}/repos", "owner", {"name": "svc"}),
        ("/user/repos", "POST", "/api/v3/user/repos", "owner", {"name": unique("r")}),
        ("/repos/{owner}/{repo}", "GET", f"/api/v3/repos/{org}/svc", "owner", None),
        (
            "/repos/{owner}/{repo}/workflow-tokens",
            "POST",
            f"/api/v3/repos/{org}/svc/workflow-tokens",
            "owner",
            {"permission": "read"},
        ),
        (
            "/repos/{owner}/{repo}/trust-policies",
            "POST",
            f"/api/v3/repos/{org}/svc/trust-policies",
            "owner",
            {"issuer": "https://ci.example.com", "claims": {"repository": f"{org}/svc"}},
        ),
        (
            "/repos/{owner}/{repo}/trust-policies",
            "GET",
            f"/api/v3/repos/{org}/svc/trust-policies",
            "owner",
            None,
        ),
        ("/user/tokens", "POST", "/api/v3/user/tokens", "owner", {"scopes": ["read:packages"]}),
        ("/user/tokens", "GET", "/api/v3/user/tokens", "owner", None),
        ("/users/{username}", "GET", f"/api/v3/users/{OWNER}", None, None),
        ("/orgs/{org}/packages/usage", "GET", f"/api/v3/orgs/{org}/packages/usage", "owner", None),
        ("/user/packages/usage", "GET", "/api/v3/user/packages/usage", "owner", None),
        (
            "/users/{username}/packages/usage",
            "GET",
            f"/api/v3/users/{OWNER}/packages/usage",
            "outsider",
            None,
        ),
        (
            "/admin/namespaces/{owner}/quota",
            "PUT",
            f"/api/v3/admin/namespaces/{org}/quota",
            "admin",
            {"quota": "10GB", "warn_percent": 80},
        ),
        (
            "/admin/namespaces/{owner}/quota",
            "GET",
            f"/api/v3/admin/namespaces/{org}/quota",
            "admin",
            None,
        ),
        (
            "/admin/namespaces/{owner}/quota",
            "DELETE",
            f"/api/v3/admin/namespaces/{org}/quota",
            "admin",
            None,
        ),
    ]
    for template, method, url, actor, body in calls:
        resp = world.rest(actor, method, url, body)
        assert resp.status_code < 300, describe(resp)
        read_api[template][method].validate_response(resp)
    for prefix, actor in ((f"/orgs/{ORG}", "owner"), ("/user", "owner"), ("/admin", "admin")):
        template = {"/user": "/user", "/admin": "/admin"}.get(prefix, "/orgs/{org}") + "/hooks"
        hook = {"config": {"url": "https://hooks.example.com/c", "secret": "s3cret"}}
        created = world.rest(actor, "POST", f"/api/v3{prefix}/hooks", hook)
        assert created.status_code == 201, describe(created)
        assert created.json()["config"]["secret"] == "********"
        read_api[template]["POST"].validate_response(created)
        one = f"/api/v3{prefix}/hooks/{created.json()['id']}"
        for method, path, url, body in (
            ("GET", "", f"/api/v3{prefix}/hooks", None),
            ("GET", "/{hook_id}", one, None),
            ("PATCH", "/{hook_id}", one, {"events": ["*"], "active": False}),
            ("GET", "/{hook_id}/deliveries", f"{one}/deliveries", None),
            ("DELETE", "/{hook_id}", one, None),
        ):
            resp = world.rest(actor, method, url, body)
            assert resp.status_code < 300, describe(resp)
            read_api[template + path][method].validate_response(resp)


def test_list_pages_for_odd_owner_names_are_not_server_errors(world: World) -> None:
    """Found by schemathesis: a control character in the owner of a list whose ``Link`` header
    echoes the URL (page 2 of an empty list) made the server fail (500)."""
    for scope in ("orgs", "users"):
        for owner in ("o%19", "o%C2%BB", "o%0A"):
            url = f"/api/v3/{scope}/{owner}/packages?package_type=npm&page=2"
            resp = world.client("owner").get(url)
            assert resp.status_code in (404, 422), describe(resp)
            assert resp.headers["content-type"].startswith("application/json"), describe(resp)


def test_huge_version_ids_are_not_server_errors(world: World, conform: Pkg) -> None:
    """Found by schemathesis: a version id past SQLite's 64-bit integers made a 500
    (``OverflowError``); there is no such version (404), or the id is invalid (422)."""
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/restore")):
        for version_id in (2**63, 2**64 + 1, 10**30):
            url = conform.version_path(version_id) + suffix
            resp = world.rest("owner", method, url)
            assert resp.status_code in (404, 422), describe(resp)
