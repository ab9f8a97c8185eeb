"""The authorization rules of ``docs/permissions.md`` as pure functions: the test oracle.

This module is written from the rules table, never from the implementation. It knows the facts
the matrix set-up creates (who is in which org and team, what each test package grants, which
credential each actor holds) and answers "what must the registry say?" for every cell.

The helper has a unique module name on purpose: ``tests/`` is not a package, so a plain
``rules.py`` could be shadowed by one in another test folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum


class Role(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3


READ_PACKAGES = "read:packages"
WRITE_PACKAGES = "write:packages"
DELETE_PACKAGES = "delete:packages"
ALL_SCOPES = frozenset({READ_PACKAGES, WRITE_PACKAGES, DELETE_PACKAGES})

VISIBILITIES = ("public", "internal", "private")

#: Actions that read: GET a manifest by tag, GET a blob, list tags, list referrers.
PULL_ACTIONS = ("pull", "blob", "tags", "referrers")
#: Actions that write: PUT a manifest under a new tag, start a blob upload.
PUSH_ACTIONS = ("push", "upload")
DELETE_ACTIONS = ("delete",)
#: Every per-package action of the matrix (the catalog is checked per actor).
ACTIONS = PULL_ACTIONS + PUSH_ACTIONS + DELETE_ACTIONS

#: Status of a successful request, per action.
SUCCESS = {
    "pull": 200,
    "blob": 200,
    "tags": 200,
    "referrers": 200,
    "push": 201,
    "upload": 202,
    "delete": 202,
}


# -- the world the set-up builds ----------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    owners: frozenset[str]
    members: frozenset[str]  # plain members; owners are members too
    #: visibilities the org policy allows for packages (all three unless set)
    visibilities: frozenset[str] = frozenset(VISIBILITIES)

    def is_member(self, user: str) -> bool:
        return user in self.owners or user in self.members


ORGS: dict[str, Org] = {
    "acme": Org(
        owners=frozenset({"octo"}),
        members=frozenset({"member", "reader", "writer", "admin2", "suspended"}),
    ),
    # orgs with a restricted visibility policy, for package creation
    "beta": Org(frozenset({"octo"}), frozenset({"member"}), frozenset({"public"})),
    "gamma": Org(frozenset({"octo"}), frozenset({"member"}), frozenset({"internal", "public"})),
    "delta": Org(frozenset({"octo"}), frozenset({"member"}), frozenset()),
}

#: org/team -> members
TEAMS: dict[str, frozenset[str]] = {
    "acme/readers": frozenset({"reader"}),
    "acme/writers": frozenset({"writer", "suspended"}),
    "acme/admins": frozenset({"admin2"}),
}

SITE_ADMINS = frozenset({"root"})

#: source repository -> {user or org/team: role} (collaborators and team grants)
REPOSITORY_GRANTS: dict[str, dict[str, Role]] = {
    "acme/app": {"collab": Role.WRITE},
    "acme/tools": {},
    "acme/unrelated": {},
}


@dataclass(frozen=True)
class Package:
    """What the rules need to know about a package."""

    namespace: str  # a user or an org: the first path segment
    source_repository: str | None = None  # the linked repository
    inherits: bool = False  # access inherited from the linked repository
    published_by: str | None = None  # the repository whose workflow first pushed it
    grants: dict[str, Role] = field(default_factory=dict)  # user or org/team -> role
    actions_access: dict[str, Role] = field(default_factory=dict)  # repository -> role


#: The three matrix packages (one per visibility) are all set up the same way: pushed first by
#: acme/app's workflow token (so linked to acme/app, inheriting, published by it), team grants
#: read/write/admin, and Actions access for acme/tools at write.
MATRIX_PACKAGE = Package(
    namespace="acme",
    source_repository="acme/app",
    inherits=True,
    published_by="acme/app",
    grants={"acme/readers": Role.READ, "acme/writers": Role.WRITE, "acme/admins": Role.ADMIN},
    actions_access={"acme/tools": Role.WRITE},
)


# -- actors -------------------------------------------------------------------------------------


class Kind(Enum):
    ANONYMOUS = "anonymous"
    PAT = "pat"  # a personal access token of ``user`` with ``scopes``
    WORKFLOW = "workflow"  # a workflow token of ``repository`` with ``permission``
    REJECTED = "rejected"  # revoked, expired, suspended owner, or a password


@dataclass(frozen=True)
class Actor:
    id: str
    kind: Kind
    user: str | None = None
    scopes: frozenset[str] = ALL_SCOPES
    repository: str | None = None
    permission: Role = Role.WRITE
    about: str = ""

    @property
    def signed_in(self) -> bool:
        return self.kind in (Kind.PAT, Kind.WORKFLOW)


def _pat(id_: str, user: str, about: str, scopes: frozenset[str] = ALL_SCOPES) -> Actor:
    return Actor(id_, Kind.PAT, user=user, scopes=scopes, about=about)


def _workflow(id_: str, repository: str, permission: Role, about: str) -> Actor:
    return Actor(id_, Kind.WORKFLOW, repository=repository, permission=permission, about=about)


ACTORS: tuple[Actor, ...] = (
    Actor("anonymous", Kind.ANONYMOUS, about="no credentials"),
    _pat("octo", "octo", "owner of org acme"),
    _pat("member", "member", "member of acme, in no team"),
    _pat("team-read", "reader", "in team acme/readers (read grant)"),
    _pat("team-write", "writer", "in team acme/writers (write grant)"),
    _pat("team-admin", "admin2", "in team acme/admins (admin grant); all three scopes"),
    _pat("outsider", "outsider", "no relation to acme"),
    _pat("site-admin", "root", "site admin, no relation to acme"),
    _pat("repo-collab", "collab", "write collaborator on acme/app (packages inherit)"),
    _pat("team-admin-r", "admin2", "read:packages only", frozenset({READ_PACKAGES})),
    _pat("team-admin-w", "admin2", "write:packages only", frozenset({WRITE_PACKAGES})),
    _pat(
        "team-admin-rd",
        "admin2",
        "read:packages + delete:packages",
        frozenset({READ_PACKAGES, DELETE_PACKAGES}),
    ),
    Actor("revoked", Kind.REJECTED, user="admin2", about="team-admin's revoked PAT"),
    Actor("expired", Kind.REJECTED, user="admin2", about="team-admin's expired PAT"),
    Actor("suspended", Kind.REJECTED, user="suspended", about="PAT of a suspended writer"),
    Actor("password", Kind.REJECTED, user="octo", about="octo's password instead of a token"),
    _workflow("wf-app", "acme/app", Role.WRITE, "acme/app workflow (published and linked)"),
    _workflow("wf-app-read", "acme/app", Role.READ, "acme/app workflow, permission read"),
    _workflow("wf-tools", "acme/tools", Role.WRITE, "acme/tools workflow (Actions access write)"),
    _workflow("wf-unrelated", "acme/unrelated", Role.WRITE, "acme/unrelated workflow"),
    # the same workflow tokens, obtained by exchanging an OIDC ID token (trusted publishing)
    _workflow("wf-app-oidc", "acme/app", Role.WRITE, "acme/app workflow, from a token exchange"),
    _workflow("wf-tools-oidc", "acme/tools", Role.WRITE, "acme/tools workflow, from an exchange"),
)
ACTOR_BY_ID = {a.id: a for a in ACTORS}


# -- the rules ----------------------------------------------------------------------------------


def _teams_of(user: str) -> set[str]:
    return {team for team, members in TEAMS.items() if user in members}


def _org_owners(namespace: str) -> frozenset[str]:
    org = ORGS.get(namespace)
    return org.owners if org else frozenset()


def user_role(user: str, package: Package) -> Role:
    """The highest of every source of a user's role on a package (visibility aside)."""
    roles = [Role.NONE]
    if user == package.namespace or user in _org_owners(package.namespace):
        roles.append(Role.ADMIN)  # package owner / owner of the owning org
    if user in SITE_ADMINS:
        roles.append(Role.ADMIN)
    principals = {user} | _teams_of(user)
    roles += [role for who, role in package.grants.items() if who in principals]
    if package.inherits and package.source_repository:
        repo_owner = package.source_repository.split("/")[0]
        if user == repo_owner or user in _org_owners(repo_owner):
            roles.append(Role.ADMIN)
        grants = REPOSITORY_GRANTS.get(package.source_repository, {})
        roles += [role for who, role in grants.items() if who in principals]
    return max(roles)


def workflow_role(repository: str, permission: Role, package: Package) -> Role:
    """A workflow token's role: admin if its repository published the package, write if the
    package is linked to it, the Actions-access role if granted; ``permission`` caps it."""
    roles = [Role.NONE]
    if repository == package.published_by:
        roles.append(Role.ADMIN)
    if repository == package.source_repository:
        roles.append(Role.WRITE)
    roles.append(package.actions_access.get(repository, Role.NONE))
    best = max(roles)
    return min(best, Role.READ) if permission is Role.READ else best


def visibility_role(visibility: str, signed_in: bool) -> Role:
    if visibility == "public":
        return Role.READ
    if visibility == "internal" and signed_in:
        return Role.READ
    return Role.NONE


def role(actor: Actor, visibility: str, package: Package = MATRIX_PACKAGE) -> Role:
    relation = Role.NONE
    if actor.kind is Kind.PAT and actor.user:
        relation = user_role(actor.user, package)
    elif actor.kind is Kind.WORKFLOW and actor.repository:
        relation = workflow_role(actor.repository, actor.permission, package)
    return max(relation, visibility_role(visibility, actor.signed_in))


def scope_allows(actor: Actor, kind_of_action: str) -> bool:
    """PAT scopes cap roles: pull needs read or write, push needs write, delete needs delete."""
    if actor.kind is not Kind.PAT:
        return True
    if kind_of_action == "pull":
        return bool({READ_PACKAGES, WRITE_PACKAGES} & actor.scopes)
    if kind_of_action == "push":
        return WRITE_PACKAGES in actor.scopes
    return DELETE_PACKAGES in actor.scopes


@dataclass(frozen=True)
class Outcome:
    status: int
    code: str | None = None  # the OCI error code, None on success

    def __str__(self) -> str:
        return f"{self.status} {self.code}" if self.code else str(self.status)


UNAUTHORIZED = Outcome(401, "UNAUTHORIZED")
DENIED = Outcome(403, "DENIED")
NAME_UNKNOWN = Outcome(404, "NAME_UNKNOWN")


def allowed(actor: Actor, visibility: str, action: str) -> bool:
    if actor.kind is Kind.REJECTED:
        return False
    r = role(actor, visibility)
    if action in PULL_ACTIONS:
        return r >= Role.READ and scope_allows(actor, "pull")
    if action in PUSH_ACTIONS:
        return r >= Role.WRITE and scope_allows(actor, "push")
    if action in DELETE_ACTIONS:
        return r >= Role.ADMIN and scope_allows(actor, "delete")
    raise ValueError(action)


def expected(actor: Actor, visibility: str, action: str) -> Outcome:
    """What the registry must answer when ``actor`` does ``action`` on the matrix package of
    ``visibility``."""
    if actor.kind is Kind.REJECTED:
        return UNAUTHORIZED  # on every request, even public pulls
    if allowed(actor, visibility, action):
        return Outcome(SUCCESS[action])
    if not actor.signed_in:
        return UNAUTHORIZED
    if action in PULL_ACTIONS:
        return NAME_UNKNOWN  # invisible: exactly like a package that doesn't exist
    if action in PUSH_ACTIONS:
        return DENIED
    return DENIED if allowed(actor, visibility, "pull") else NAME_UNKNOWN


def expected_catalog(actor: Actor) -> set[str] | None:
    """The visibilities of the matrix packages ``actor`` sees in ``/v2/_catalog`` (None: 401)."""
    if actor.kind is Kind.REJECTED:
        return None
    return {v for v in VISIBILITIES if allowed(actor, v, "pull")}


def expected_token_actions(actor: Actor, visibility: str) -> set[str]:
    """What a registry token asked for ``pull,push,delete`` on the matrix package grants.

    The intersection of what was asked and what the actor may do; a package the actor cannot
    see grants what a missing one would (see :func:`expected_token_actions_when_missing`), so
    ``/token`` never tells a taken name from a free one."""
    if actor.kind is not Kind.REJECTED and role(actor, visibility) < Role.READ:
        return expected_token_actions_when_missing(actor, MATRIX_PACKAGE.namespace)
    wanted = {"pull": "pull", "push": "push", "delete": "delete"}
    return {granted for action, granted in wanted.items() if allowed(actor, visibility, action)}


def expected_token_actions_when_missing(actor: Actor, namespace: str) -> set[str]:
    """What a registry token asked for ``pull,push,delete`` on a package that does not exist
    yet grants: what the actor will have once its push created it (its creator is its admin),
    as far as its scopes allow; nothing where it may not create packages."""
    if not may_create(actor, namespace):
        return set()
    return {action for action in ("pull", "push", "delete") if scope_allows(actor, action)}


# -- creating packages --------------------------------------------------------------------------


def new_package_visibility(namespace: str) -> str:
    """Private, unless the org policy excludes it: then internal, else public."""
    org = ORGS.get(namespace)
    if org is None:
        return "private"
    for visibility in ("private", "internal"):
        if visibility in org.visibilities:
            return visibility
    return "public"


def may_create(actor: Actor, namespace: str) -> bool:
    if actor.kind is Kind.PAT and actor.user:
        if not scope_allows(actor, "push"):
            return False
        if actor.user == namespace:
            return True
        org = ORGS.get(namespace)
        return bool(org and org.is_member(actor.user) and org.visibilities)
    if actor.kind is Kind.WORKFLOW and actor.repository:
        owner = actor.repository.split("/")[0]
        org = ORGS.get(owner)
        policy_ok = org is None or bool(org.visibilities)
        return actor.permission >= Role.WRITE and namespace == owner and policy_ok
    return False


def expected_create(actor: Actor, namespace: str) -> Outcome:
    """Pushing the first blob of a new package ``namespace/...`` (201 when all of it works)."""
    if not actor.signed_in:
        return UNAUTHORIZED
    return Outcome(201) if may_create(actor, namespace) else DENIED
