"""Package settings (visibility, inheritance, grants, Actions access, repository link) and the
administration endpoints (users, organizations, teams, repositories, workflow tokens): each works
for the right caller, is refused with the right status and message for the others, and what it
changes is what registry clients then see."""

from __future__ import annotations

from rwkit import (
    ORG,
    OWNER,
    STRICT_ORG,
    WORKFLOW_RE,
    Pkg,
    World,
    describe,
    expect,
    message,
    oci_code,
    unique,
)


def pull_status(world: World, actor: str | None, pkg: Pkg, reference: str = "v1") -> int:
    return world.pull(actor, pkg.full, reference).status_code


def push_status(world: World, actor: str, name: str) -> int:
    """The status of pushing a small image to ``name`` (the first refused step's)."""
    resp = world.client(actor).post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    if resp.status_code != 202:
        return resp.status_code
    world.push_image(actor, name, "pushed")
    return 201


# -- visibility and inheritance ----------------------------------------------------------------


def test_making_a_package_public_lets_anyone_pull_and_is_one_way(world: World) -> None:
    pkg = Pkg(ORG, unique("public"))
    image = world.push_image("owner", pkg.full, "v1")
    resp = world.pull(None, pkg.full, "v1")
    assert resp.status_code == 401 and oci_code(resp) == "UNAUTHORIZED", describe(resp)

    body = expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "public"}), 200).json()
    assert body["visibility"] == "public" and body["name"] == pkg.name

    world.assert_pulls(None, pkg.full, image, "v1")
    world.assert_pulls("outsider", pkg.full, image, "v1")
    for visibility in ("private", "internal"):
        resp = expect(world.rest("owner", "PATCH", pkg.path, {"visibility": visibility}), 409)
        assert "public" in message(resp), describe(resp)
    assert expect(world.client("owner").get(pkg.path), 200).json()["visibility"] == "public"
    world.assert_pulls(None, pkg.full, image, "v1")


def test_internal_packages_are_for_signed_in_callers(world: World) -> None:
    pkg = Pkg(ORG, unique("internal"))
    world.push_image("owner", pkg.full, "v1")
    assert pull_status(world, "outsider", pkg) == 404
    expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "internal"}), 200)
    assert pull_status(world, "outsider", pkg) == 200
    assert pull_status(world, "wf_other", pkg) == 200
    assert pull_status(world, None, pkg) == 401
    expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "private"}), 200)
    assert pull_status(world, "outsider", pkg) == 404


def test_organization_policy_limits_visibilities(world: World) -> None:
    pkg = Pkg(STRICT_ORG, unique("strict"))
    world.push_image("owner", pkg.full, "v1")
    resp = expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "public"}), 403)
    assert "public" in message(resp), describe(resp)
    assert expect(world.client("owner").get(pkg.path), 200).json()["visibility"] == "private"
    assert pull_status(world, None, pkg) == 401
    expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "internal"}), 200)


def test_user_packages_cannot_be_internal(world: World) -> None:
    pkg = Pkg(OWNER, unique("mine"), "users")
    world.push_image("owner", pkg.full, "v1")
    resp = expect(world.rest("owner", "PATCH", pkg.path, {"visibility": "internal"}), 409)
    assert "organization" in message(resp), describe(resp)


def test_bad_settings_are_422_and_change_nothing(world: World) -> None:
    pkg = Pkg(ORG, unique("bad"))
    world.push_image("owner", pkg.full, "v1")
    for body in ({"visibility": "secret"}, {"inherit_access": "sometimes"}):
        resp = expect(world.rest("owner", "PATCH", pkg.path, body), 422)
        assert message(resp) == "Validation Failed" and resp.json()["errors"], describe(resp)
    resp = world.rest("owner", "PUT", f"{pkg.path}/access/users/outsider", {"role": "owner"})
    expect(resp, 422)
    expect(world.rest("owner", "PUT", f"{pkg.path}/access/users/outsider", {}), 422)
    assert pull_status(world, "outsider", pkg) == 404
    assert expect(world.client("owner").get(pkg.path), 200).json()["visibility"] == "private"


def test_inheriting_needs_a_linked_repository_and_follows_it(world: World) -> None:
    pkg = Pkg(ORG, unique("inherit"))
    world.push_image("owner", pkg.full, "v1")
    resp = expect(world.rest("owner", "PATCH", pkg.path, {"inherit_access": True}), 409)
    assert "repository" in message(resp).lower(), describe(resp)

    linked = world.rest("owner", "PUT", f"{pkg.path}/repository", {"repository": f"{ORG}/app"})
    body = expect(linked, 200).json()
    assert body["repository"]["full_name"] == f"{ORG}/app"

    body = expect(world.rest("owner", "PATCH", pkg.path, {"inherit_access": False}), 200).json()
    assert body["inherit_access"] is False
    assert pull_status(world, "collab", pkg) == 404  # linked, not inheriting

    body = expect(world.rest("owner", "PATCH", pkg.path, {"inherit_access": True}), 200).json()
    assert body["inherit_access"] is True
    assert pull_status(world, "collab", pkg) == 200  # read collaborator on acme/app
    assert push_status(world, "collab", pkg.full) == 403

    body = expect(world.client("owner").delete(f"{pkg.path}/repository"), 200).json()
    assert body["repository"] is None and body["inherit_access"] is False
    assert pull_status(world, "collab", pkg) == 404


def test_linking_checks_the_repository(world: World) -> None:
    pkg = Pkg(OWNER, unique("link"), "users")
    world.push_image("owner", pkg.full, "v1")
    other_owner = world.rest("owner", "PUT", f"{pkg.path}/repository", {"repository": f"{ORG}/app"})
    assert "owner" in message(expect(other_owner, 409))
    missing = world.rest("owner", "PUT", f"{pkg.path}/repository", {"repository": "nothing"})
    assert "nothing" in message(expect(missing, 404))
    assert expect(world.client("owner").get(pkg.path), 200).json()["repository"] is None


# -- grants -------------------------------------------------------------------------------------


def test_granting_a_team_read_lets_its_members_pull(world: World) -> None:
    pkg = Pkg(ORG, unique("team-read"))
    image = world.push_image("owner", pkg.full, "v1")
    resp = world.pull("reader", pkg.full, "v1")
    assert resp.status_code == 404 and oci_code(resp) == "NAME_UNKNOWN", describe(resp)

    world.grant(pkg, "teams", "readers", "read")
    grants = expect(world.client("owner").get(f"{pkg.path}/access"), 200).json()
    assert {"grantee_type": "team", "grantee": f"{ORG}/readers", "role": "read"} in grants
    world.assert_pulls("reader", pkg.full, image, "v1")
    assert push_status(world, "reader", pkg.full) == 403
    assert pull_status(world, "writer", pkg) == 404  # other teams: nothing

    expect(world.client("owner").delete(f"{pkg.path}/access/teams/readers"), 204)
    assert pull_status(world, "reader", pkg) == 404
    resp = expect(world.client("owner").delete(f"{pkg.path}/access/teams/readers"), 404)
    assert "grant" in message(resp).lower(), describe(resp)


def test_granting_a_user_write_lets_them_push(world: World) -> None:
    pkg = Pkg(ORG, unique("user-write"))
    world.push_image("owner", pkg.full, "v1")
    assert push_status(world, "outsider", pkg.full) == 403
    world.grant(pkg, "users", "outsider", "write")
    assert push_status(world, "outsider", pkg.full) == 201
    resp = world.client("outsider").delete(pkg.path)
    assert resp.status_code == 403, describe(resp)  # write is not admin
    world.grant(pkg, "users", "outsider", "admin")
    expect(world.client("outsider").delete(pkg.path), 204)


def test_actions_access_lets_another_repositorys_workflow_push(world: World) -> None:
    pkg = Pkg(ORG, unique("actions"))
    world.push_image("owner", pkg.full, "v1")
    assert push_status(world, "wf_tools", pkg.full) == 403
    world.grant(pkg, "repositories", f"{ORG}/tools", "write")
    grants = expect(world.client("owner").get(f"{pkg.path}/access"), 200).json()
    assert {"grantee_type": "repository", "grantee": f"{ORG}/tools", "role": "write"} in grants
    assert push_status(world, "wf_tools", pkg.full) == 201
    expect(world.client("owner").delete(f"{pkg.path}/access/repositories/{ORG}/tools"), 204)
    assert push_status(world, "wf_tools", pkg.full) == 403


def test_grants_to_unknown_grantees_are_404(world: World) -> None:
    pkg = Pkg(ORG, unique("unknown"))
    world.push_image("owner", pkg.full, "v1")
    role = {"role": "read"}
    for path in (
        "access/users/nobody-here",
        f"access/users/{ORG}",  # an organization is not a user
        "access/teams/no-such-team",
        f"access/repositories/{ORG}/no-such-repo",
    ):
        resp = expect(world.rest("owner", "PUT", f"{pkg.path}/{path}", role), 404)
        assert message(resp) != "Not Found", describe(resp)  # says what is missing
    assert len(expect(world.client("owner").get(f"{pkg.path}/access"), 200).json()) == 1


# -- users --------------------------------------------------------------------------------------


def test_user_endpoints(world: World) -> None:
    me = expect(world.client("owner").get("/api/v3/user"), 200).json()
    assert me["login"] == OWNER and me["type"] == "User" and me["site_admin"] is False
    assert expect(world.client("admin").get("/api/v3/user"), 200).json()["site_admin"] is True
    expect(world.client(None).get("/api/v3/user"), 401)
    assert "integration" in message(expect(world.client("wf_app").get("/api/v3/user"), 403))
    user = expect(world.client(None).get(f"/api/v3/users/{OWNER}"), 200).json()
    assert user["login"] == OWNER and user["id"] == me["id"]
    expect(world.client("owner").get("/api/v3/users/no-such-user"), 404)
    org = expect(world.client("owner").get(f"/api/v3/users/{ORG}"), 200).json()
    assert org["type"] == "Organization"  # as on GitHub


def test_only_site_admins_create_users(world: World) -> None:
    login = unique("new")
    body = {"login": login, "email": f"{login}@example.com"}
    expect(world.rest(None, "POST", "/api/v3/admin/users", body), 401)
    resp = expect(world.rest("owner", "POST", "/api/v3/admin/users", body), 403)
    assert "site administrator" in message(resp), describe(resp)
    expect(world.client("owner").get(f"/api/v3/users/{login}"), 404)

    created = expect(world.rest("admin", "POST", "/api/v3/admin/users", body), 201).json()
    assert created["login"] == login and created["site_admin"] is False
    expect(world.client(None).get(f"/api/v3/users/{login}"), 200)
    expect(world.rest("admin", "POST", "/api/v3/admin/users", body), 422)  # taken


def test_suspending_a_user_stops_their_tokens(world: World) -> None:
    pkg = Pkg("victim", unique("own"), "users")
    world.push_image("victim", pkg.full, "v1")
    assert "site administrator" in message(
        expect(world.client("owner").put("/api/v3/users/victim/suspended"), 403)
    )
    expect(world.client("admin").put("/api/v3/users/victim/suspended"), 204)
    expect(world.client("victim").get("/api/v3/user"), 401)
    resp = world.pull("victim", pkg.full, "v1")
    assert resp.status_code == 401 and oci_code(resp) == "UNAUTHORIZED", describe(resp)

    expect(world.client("admin").delete("/api/v3/users/victim/suspended"), 204)
    expect(world.client("victim").get("/api/v3/user"), 200)
    expect(world.pull("victim", pkg.full, "v1"), 200)
    # Nobody suspends themselves.
    resp = expect(world.client("admin").put(f"/api/v3/users/{world.admin}/suspended"), 422)
    assert "yourself" in message(resp)


# -- organizations, teams, repositories --------------------------------------------------------


def test_organizations_memberships_teams_and_repositories(world: World) -> None:
    org = unique("org")
    body = {"login": org, "admin": OWNER}
    resp = expect(world.rest("owner", "POST", "/api/v3/admin/organizations", body), 403)
    assert "site administrator" in message(resp)
    created = expect(world.rest("admin", "POST", "/api/v3/admin/organizations", body), 201).json()
    assert created["login"] == org and created["type"] == "Organization"
    got = expect(world.client(None).get(f"/api/v3/orgs/{org}"), 200).json()
    assert got["package_visibilities"] == created["package_visibilities"]

    # Only owners change the policy; what they allow is what new packages get.
    policy = {"package_visibilities": ["public"]}
    expect(world.rest(None, "PATCH", f"/api/v3/orgs/{org}", policy), 401)
    expect(world.rest("outsider", "PATCH", f"/api/v3/orgs/{org}", policy), 404)
    updated = expect(world.rest("owner", "PATCH", f"/api/v3/orgs/{org}", policy), 200).json()
    assert updated["package_visibilities"] == ["public"]
    image = world.push_image("owner", f"{org}/first", "v1")
    world.assert_pulls(None, f"{org}/first", image, "v1")  # created public
    bad = {"package_visibilities": ["secret"]}
    expect(world.rest("owner", "PATCH", f"/api/v3/orgs/{org}", bad), 422)

    # Membership: a member may create packages; members are not owners.
    assert push_status(world, "outsider", f"{org}/mine") == 403
    membership = f"/api/v3/orgs/{org}/memberships/outsider"
    expect(world.rest("member", "PUT", membership, {"role": "member"}), 404)
    expect(world.rest("owner", "PUT", membership, {"role": "member"}), 204)
    assert push_status(world, "outsider", f"{org}/mine") == 201
    resp = expect(world.rest("outsider", "PATCH", f"/api/v3/orgs/{org}", policy), 403)
    assert "owner" in message(resp)
    expect(world.rest("outsider", "POST", f"/api/v3/orgs/{org}/teams", {"name": "X"}), 403)

    # Teams: a team granted read on a package lets its members pull.
    team = expect(
        world.rest("owner", "POST", f"/api/v3/orgs/{org}/teams", {"name": "Build Ops"}), 201
    )
    assert team.json() == {"slug": "build-ops", "organization": org}
    expect(world.rest("owner", "PUT", f"/api/v3/orgs/{org}/memberships/reader", {}), 204)
    expect(world.client("owner").put(f"/api/v3/orgs/{org}/teams/build-ops/memberships/reader"), 204)
    secret = Pkg(org, unique("secret"))
    expect(
        world.rest("owner", "PATCH", f"/api/v3/orgs/{org}", {"package_visibilities": ["private"]}),
        200,
    )
    world.push_image("owner", secret.full, "v1")
    assert pull_status(world, "reader", secret) == 404
    world.grant(secret, "teams", "build-ops", "read")
    assert pull_status(world, "reader", secret) == 200

    # Repositories: a team's write on the linked repository lets its members push.
    repo = expect(world.rest("outsider", "POST", f"/api/v3/orgs/{org}/repos", {"name": "svc"}), 201)
    assert repo.json()["full_name"] == f"{org}/svc"
    expect(world.rest("writer", "POST", f"/api/v3/orgs/{org}/repos", {"name": "x"}), 404)
    team_repo = f"/api/v3/orgs/{org}/teams/build-ops/repos/{org}/svc"
    expect(world.rest("outsider", "PUT", team_repo, {"permission": "push"}), 403)
    expect(world.rest("owner", "PUT", team_repo, {"permission": "push"}), 204)
    link = {"repository": f"{org}/svc"}
    expect(world.rest("owner", "PUT", f"{secret.path}/repository", link), 200)
    expect(world.rest("owner", "PATCH", secret.path, {"inherit_access": True}), 200)
    assert push_status(world, "reader", secret.full) == 201


def test_repositories_collaborators_and_workflow_tokens(world: World) -> None:
    name = unique("lib")
    resp = expect(world.rest("owner", "POST", f"/api/v3/orgs/{ORG}/repos", {"name": name}), 201)
    repo = resp.json()
    assert repo["full_name"] == f"{ORG}/{name}" and repo["private"] is False
    assert repo["owner"]["login"] == ORG
    expect(world.client("member").get(f"/api/v3/repos/{ORG}/{name}"), 200)
    expect(world.client("member").get(f"/api/v3/repos/{ORG}/no-such-repo"), 404)

    private = expect(
        world.rest("outsider", "POST", "/api/v3/user/repos", {"name": "tool", "private": True}),
        201,
    ).json()
    assert private["full_name"] == "outsider/tool" and private["private"] is True
    expect(world.client("outsider").get("/api/v3/repos/outsider/tool"), 200)
    expect(world.client("member").get("/api/v3/repos/outsider/tool"), 404)
    expect(world.client(None).get("/api/v3/repos/outsider/tool"), 404)
    expect(world.rest(None, "POST", "/api/v3/user/repos", {"name": "anon"}), 401)

    # A collaborator's role on a linked, inheriting repository is their role on the package.
    pkg = Pkg(ORG, unique("collab"))
    world.push_image("owner", pkg.full, "v1")
    expect(world.rest("owner", "PUT", f"{pkg.path}/repository", {"repository": name}), 200)
    expect(world.rest("owner", "PATCH", pkg.path, {"inherit_access": True}), 200)
    assert pull_status(world, "outsider", pkg) == 404
    collaborator = f"/api/v3/repos/{ORG}/{name}/collaborators/outsider"
    resp = expect(world.rest("member", "PUT", collaborator, {"permission": "pull"}), 403)
    assert "admin" in message(resp)
    expect(world.rest("outsider", "PUT", collaborator, {"permission": "pull"}), 403)
    expect(world.rest("owner", "PUT", collaborator, {"permission": "pull"}), 204)
    assert pull_status(world, "outsider", pkg) == 200
    assert push_status(world, "outsider", pkg.full) == 403
    expect(world.rest("owner", "PUT", collaborator, {"permission": "push"}), 204)
    assert push_status(world, "outsider", pkg.full) == 201

    # Workflow tokens: repository admins make them; the token publishes and administers.
    tokens = f"/api/v3/repos/{ORG}/{name}/workflow-tokens"
    expect(world.rest("outsider", "POST", tokens, {"permission": "write"}), 403)
    expect(world.rest(None, "POST", tokens, {"permission": "write"}), 401)
    made = expect(world.rest("owner", "POST", tokens, {"permission": "write"}), 201).json()
    assert WORKFLOW_RE.fullmatch(made["token"]) and made["repository"] == f"{ORG}/{name}"
    assert made["permission"] == "write" and made["expires_at"] is not None
    world.secrets["wf_new"] = made["token"]
    published = Pkg(ORG, unique("published"))
    image = world.push_image("wf_new", published.full, "v1")
    package = expect(world.client("wf_new").get(published.path), 200).json()
    assert package["repository"]["full_name"] == f"{ORG}/{name}"
    expect(world.client("wf_new").delete(published.path), 204)
    expect(world.client("wf_new").post(f"{published.path}/restore"), 204)
    world.assert_pulls("wf_new", published.full, image, "v1")
    expect(world.client("wf_other").get(published.path), 404)
