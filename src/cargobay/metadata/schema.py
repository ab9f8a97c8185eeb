"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/`` must produce exactly this."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

DIGEST = sa.String(160)
NAME = sa.String(255)
TS = sa.DateTime(timezone=True)

#: Users and organizations: one namespace of logins.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("login", sa.String(39), nullable=False, unique=True),
    sa.Column("type", sa.String(16), nullable=False),  # User | Organization
    sa.Column("email", sa.String(255), nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("site_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("suspended", sa.Boolean, nullable=False, default=False),
    #: Organizations: visibilities members may create packages with, comma-separated.
    sa.Column(
        "package_visibilities", sa.String(64), nullable=False, default="private,internal,public"
    ),
    #: Organizations: new packages inherit access from their source repository.
    sa.Column("inherit_access_default", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", TS, nullable=False),
)

org_members = sa.Table(
    "org_members",
    metadata,
    sa.Column("org_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # owner | member
    sa.Index("ix_org_members_user", "user_id"),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("slug", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("org_id", "slug", name="uq_teams_org_slug"),
)

team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Index("ix_team_members_user", "user_id"),
)

#: Source (code) repositories ``OWNER/NAME`` that packages link to.
source_repositories = sa.Table(
    "source_repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("private", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("owner_id", "name", name="uq_source_repositories_owner_name"),
)

#: Roles on a source repository: collaborators (``user``) and teams (``team``).
source_repository_access = sa.Table(
    "source_repository_access",
    metadata,
    sa.Column(
        "repository_id", sa.Integer, sa.ForeignKey("source_repositories.id"), primary_key=True
    ),
    sa.Column("grantee_type", sa.String(16), primary_key=True),
    sa.Column("grantee_id", sa.Integer, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
)

#: Personal access tokens (``pat``) and workflow tokens (``workflow``). Only a hash is kept.
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("scopes", sa.String(255), nullable=False, default=""),
    sa.Column("note", sa.String(255), nullable=True),
    sa.Column(
        "source_repository_id", sa.Integer, sa.ForeignKey("source_repositories.id"), nullable=True
    ),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=True),
    sa.Column("last_used_at", TS, nullable=True),
    sa.Column("revoked_at", TS, nullable=True),
    sa.Index("ix_tokens_user", "user_id"),
)

#: A package: a repository name in the registry (``namespace/name``) and who may reach it.
repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("visibility", sa.String(16), nullable=False, server_default="private"),
    sa.Column(
        "source_repository_id", sa.Integer, sa.ForeignKey("source_repositories.id"), nullable=True
    ),
    sa.Column("inherit_access", sa.Boolean, nullable=False, server_default=sa.false()),
    #: The source repository whose workflow published it (gets admin), if any.
    sa.Column(
        "published_by_repository_id",
        sa.Integer,
        sa.ForeignKey("source_repositories.id"),
        nullable=True,
    ),
    #: What the newest version says (``org.opencontainers.image.*``).
    sa.Column("description", sa.String(512), nullable=True),
    sa.Column("license", sa.String(256), nullable=True),
    sa.Column("source_url", sa.String(2048), nullable=True),
    #: Last push of a version (None until the first one: see :data:`PUBLISHED`).
    sa.Column("updated_at", TS, nullable=True),
    #: A deleted package keeps its row (restorable) under a name no client can use
    #: (``#deleted/<id>``), so its real name is free; the real name is kept here.
    sa.Column("deleted_at", TS, nullable=True),
    sa.Column("deleted_name", NAME, nullable=True),
    sa.Index("ix_repositories_owner", "owner_id"),
    sa.Index("ix_repositories_deleted_at", "deleted_at"),
)

#: A package shows (the catalog, lists, pages, the REST API) once a version was pushed to it.
#: A push creates its package when it starts; if that first push is refused (quota, denied...)
#: the package stays unpublished and shows nowhere, as if the push had never happened.
PUBLISHED = repositories.c.updated_at.is_not(None)

#: Per-package roles granted to users, teams and source repositories (Actions access).
package_access = sa.Table(
    "package_access",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
    sa.Column("grantee_type", sa.String(24), primary_key=True),
    sa.Column("grantee_id", sa.Integer, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
)

blob_links = sa.Table(
    "blob_links",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_blob_links_digest", "digest"),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), nullable=False),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("subject", DIGEST, nullable=True),
    sa.Column("artifact_type", sa.String(255), nullable=True),
    sa.Column("annotations", sa.JSON, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    #: ``image``, ``index`` or ``artifact``.
    sa.Column("kind", sa.String(16), nullable=True),
    #: ``os/architecture[/variant]`` of an image manifest.
    sa.Column("platform", sa.String(64), nullable=True),
    #: Referenced by an index of the package (a platform image or an attestation).
    sa.Column("is_child", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("attestation", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("description", sa.String(512), nullable=True),
    sa.Column("license", sa.String(256), nullable=True),
    sa.Column("source_url", sa.String(2048), nullable=True),
    #: Manifest GETs (not HEADs).
    sa.Column("download_count", sa.BigInteger, nullable=False, server_default="0"),
    #: The last manifest GET (written with the download counts, so it can lag a few seconds).
    sa.Column("last_pulled_at", TS, nullable=True),
    sa.Column("updated_at", TS, nullable=True),
    #: A deleted version is not pullable; restorable until purged.
    sa.Column("deleted_at", TS, nullable=True),
    #: The tags it had when deleted (restored if still free).
    sa.Column("deleted_tags", sa.JSON, nullable=True),
    #: The index whose deletion took this child with it.
    sa.Column("deleted_with", sa.Integer, nullable=True),
    sa.UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    sa.Index("ix_manifests_deleted_at", "deleted_at"),
    sa.Index("ix_manifests_subject", "repository_id", "subject"),
)

#: What each manifest references: ``blob`` (config, layers) or ``manifest`` (index children).
manifest_refs = sa.Table(
    "manifest_refs",
    metadata,
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Index("ix_manifest_refs_digest", "digest"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id"), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_tags_manifest", "manifest_id"),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("repository", NAME, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("touched_at", TS, nullable=False),
    #: Who opened it (:attr:`Principal.key`): open sessions are bounded per owner.
    sa.Column("owner", sa.String(64), nullable=False, server_default=""),
    sa.Index("ix_uploads_touched_at", "touched_at"),
    sa.Index("ix_uploads_owner_touched_at", "owner", "touched_at"),
)

#: Blobs no package links any more (purged content); the garbage collector removes their bytes.
unreferenced_blobs = sa.Table(
    "unreferenced_blobs",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("since", TS, nullable=False),
)

#: Every blob the registry stores, one row per digest: the row the garbage collector and every
#: path that adds a reference to the blob (upload, mount, manifest PUT) lock, so a blob is never
#: deleted while something starts to use it. ``state``: ``live``, or ``deleting`` once the
#: collector has decided (and committed) to remove its bytes; the row goes when they are gone.
#: ``touched_at``: the last upload of these bytes (the grace period runs from it).
blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="live"),
    sa.Column("touched_at", TS, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_blobs_state", "state"),
)

#: Storage a namespace (user or organization) uses, kept up to date in the transactions that
#: link and unlink its blobs and add and drop its manifests (each blob once, plus manifest
#: bytes: what ``cargobay usage OWNER`` shows as stored), and its quota set by a site admin.
#: ``quota``: bytes, NULL for none; ``warn_percent``: the share of it that warns.
namespace_usage = sa.Table(
    "namespace_usage",
    metadata,
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("quota", sa.BigInteger, nullable=True),
    sa.Column("warn_percent", sa.Integer, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
)

#: Tag patterns (globs) that make a package's tags immutable: once such a tag names a version
#: it can't be moved to another or deleted (pushing the same version again is fine).
immutable_tag_rules = sa.Table(
    "immutable_tag_rules",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
    sa.Column("pattern", sa.String(128), primary_key=True),
    sa.Column("created_at", TS, nullable=False),
)

#: Retention policies: what the periodic cleanup removes from a package (``repository_id``), or
#: the default of every package of a user or organization (``owner_id``) that has none of its
#: own. NULL fields are rules that are off; ``tag_patterns`` is a JSON list (globs, or ``re:``
#: regular expressions).
retention_policies = sa.Table(
    "retention_policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id"), nullable=True),
    #: Untagged versions last pushed more than this many days ago go.
    sa.Column("untagged_days", sa.Integer, nullable=True),
    #: Tagged versions go unless one of their tags is among this many most recent ones...
    sa.Column("keep_tags", sa.Integer, nullable=True),
    #: ... or matches one of these patterns.
    sa.Column("tag_patterns", sa.JSON, nullable=True),
    #: Versions pulled within this many days stay.
    sa.Column("pulled_days", sa.Integer, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("owner_id", name="uq_retention_policies_owner"),
    sa.UniqueConstraint("repository_id", name="uq_retention_policies_repository"),
)

#: Web sign-in sessions. The cookie holds a random secret; only its SHA-256 is kept.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    #: The anti-CSRF token every form of the session carries.
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Index("ix_web_sessions_user", "user_id"),
)

#: Trusted publishing: which OIDC ID tokens may be exchanged for a workflow token of a source
#: repository. ``audience`` NULL means the registry's public base URL; ``claims`` is a JSON
#: object of claim name -> pattern (exact, or a glob with ``*``, ``?``, ``[...]``).
trust_policies = sa.Table(
    "trust_policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("source_repositories.id"), nullable=False),
    sa.Column("issuer", sa.String(255), nullable=False),
    sa.Column("audience", sa.String(255), nullable=True),
    sa.Column("claims", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_trust_policies_repository", "repository_id"),
    sa.Index("ix_trust_policies_issuer", "issuer"),
)

#: ID tokens already exchanged (SHA-256 of issuer + ``jti``), kept until they expire: replays
#: are refused.
seen_id_tokens = sa.Table(
    "seen_id_tokens",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("expires_at", TS, nullable=False),
    sa.Index("ix_seen_id_tokens_expires_at", "expires_at"),
)

#: Domain events (the outbox), written in the transaction of the change they describe; ids grow
#: with commit order. The audit log reads them; other consumers keep a cursor in event_cursors.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("owner_id", sa.Integer, nullable=True),
    sa.Column("package_id", sa.Integer, nullable=True),
    sa.Column("package", NAME, nullable=True),
    sa.Column("version_id", sa.Integer, nullable=True),
    sa.Column("digest", DIGEST, nullable=True),
    sa.Column("actor_id", sa.Integer, nullable=True),
    sa.Column("actor_login", sa.String(64), nullable=True),
    sa.Column("token_id", sa.Integer, nullable=True),
    sa.Column("workflow_repository_id", sa.Integer, nullable=True),
    sa.Column("address", sa.String(64), nullable=True),
    sa.Column("data", sa.JSON, nullable=True),
    sa.Index("ix_events_owner", "owner_id", "id"),
    sa.Index("ix_events_actor", "actor_id", "id"),
    sa.Index("ix_events_created_at", "created_at"),
)

#: How far each event consumer (webhook deliverer, metrics, ...) has read the events.
event_cursors = sa.Table(
    "event_cursors",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

#: Failed sign-ins (one row each) in a moving window, counted by every worker and replica on one
#: database (see auth/ratelimit.py). ``key`` is the SHA-256 of the limit's key, never a name.
sign_in_failures = sa.Table(
    "sign_in_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    #: When, in seconds since the epoch.
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_sign_in_failures_key_at", "key", "at"),
)

#: Webhooks of an organization or a user (``owner_id``), or of the whole site (``owner_id`` NULL).
#: The secret is kept encrypted (``sealed:v1:<key id>:<token>``, see cargobay.auth.sealing):
#: every delivery is signed with it. It is never shown back.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(1024), nullable=True),
    sa.Column("content_type", sa.String(8), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_webhooks_owner", "owner_id"),
)

#: One row per delivery of an event to a hook (and per redelivery): the queue of the delivery
#: job (``state`` pending, in id order per hook) and, once sent or given up, its log.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("hook_id", sa.Integer, nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=True),
    sa.Column("guid", sa.String(36), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("action", sa.String(32), nullable=True),
    sa.Column("redelivery", sa.Boolean, nullable=False),
    #: pending | delivered | failed
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("next_at", TS, nullable=False),
    sa.Column("delivered_at", TS, nullable=True),
    sa.Column("status", sa.String(255), nullable=True),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("duration", sa.Float, nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("request_headers", sa.JSON, nullable=True),
    sa.Column("response_headers", sa.JSON, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Index("ix_webhook_deliveries_hook_state", "hook_id", "state", "id"),
    sa.Index("ix_webhook_deliveries_created_at", "created_at"),
)
