"""create_app(settings): the only place where backends and services are built and routes mounted."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp

from cargobay.api import requestlog, tracing
from cargobay.api.forwarded import ForwardedHeaders
from cargobay.api.health import ROUTES as HEALTH_ROUTES
from cargobay.api.hosts import HostRouter
from cargobay.api.metrics import Metrics, Tally, count_webhook_delivery, pool_in_use
from cargobay.api.oci.dispatch import OciApp
from cargobay.api.oci.routes import ROUTES
from cargobay.api.requestlog import RequestLog
from cargobay.api.rest.app import create_rest_app
from cargobay.auth.oidc import IdTokenVerifier
from cargobay.auth.oidc_keys import IssuerKeys, parse_issuers
from cargobay.auth.ratelimit import FailureLimiter, failure_storage
from cargobay.auth.registry_tokens import RegistryTokens, load_or_create_key
from cargobay.auth.sealing import SecretBox, load_or_create_keys
from cargobay.metadata.engine import make_engine, pending_migrations
from cargobay.metadata.locks import job_lock
from cargobay.metadata.sql import SqlMetadata
from cargobay.services.access import AccessService
from cargobay.services.accounts import AccountService
from cargobay.services.administration import Administration
from cargobay.services.audit import AuditLog
from cargobay.services.blobs import BlobService
from cargobay.services.container import Services
from cargobay.services.downloads import DownloadCounter
from cargobay.services.events import Action, EventBus
from cargobay.services.gc import GcService
from cargobay.services.health import HealthService
from cargobay.services.immutability import ImmutableTagService
from cargobay.services.jobs import JobRunner
from cargobay.services.manifests import ManifestService
from cargobay.services.packages import PackageService
from cargobay.services.quotas import QuotaService
from cargobay.services.registry import Registry
from cargobay.services.retention import RetentionService
from cargobay.services.signin import SignIn
from cargobay.services.trusted_publishing import TrustedPublishing
from cargobay.services.uploads import UploadService
from cargobay.services.usage import UsageService
from cargobay.services.webhook_delivery import WebhookDelivery
from cargobay.services.webhook_payloads import Payloads
from cargobay.services.webhook_targets import AllowList
from cargobay.services.webhooks import Webhooks
from cargobay.settings import Settings, load_settings, proxy_networks
from cargobay.storage import hashing
from cargobay.storage.base import BlobStore
from cargobay.storage.filesystem import FilesystemBlobStore
from cargobay.storage.memory import MemoryBlobStore
from cargobay.storage.space import FreeSpaceCheck
from cargobay.web import create_web_app

log = logging.getLogger("cargobay")


def build_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "filesystem":
        return FilesystemBlobStore(settings.data_dir)
    if settings.blob_store == "memory":
        return MemoryBlobStore()
    if settings.blob_store == "s3":
        # Imported here: boto3 costs start-up time and memory where S3 is not used.
        from cargobay.storage.s3 import S3BlobStore
        from cargobay.storage.s3_client import S3Calls, make_client

        def client(kind: str) -> Any:
            return make_client(
                endpoint_url=settings.s3_endpoint_url,
                region=settings.s3_region,
                access_key_id=settings.s3_access_key_id,
                secret_access_key=settings.s3_secret_access_key,
                kind=kind,
            )

        calls = S3Calls(
            client("fast"),
            settings.s3_bucket,
            slow_client=client("slow"),
            bulk_client=client("bulk"),
        )
        calls.ensure_bucket(settings.s3_region)
        return S3BlobStore(
            calls,
            prefix=settings.s3_prefix,
            presign_expiry=settings.s3_presign_expiry,
            redirect=settings.blob_redirect,
        )
    raise ValueError(f"unknown blob store {settings.blob_store!r}")


def build_metadata(settings: Settings) -> SqlMetadata:
    """The metadata stores. Refuses a database whose schema is not at the newest revision."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url, synchronous=settings.sqlite_synchronous)
    if pending_migrations(engine):
        engine.dispose()
        raise SystemExit(
            "cargobay: the database schema is not up to date; run `cargobay migrate` first"
        )
    return SqlMetadata(engine)


def build_registry(
    settings: Settings,
    metadata: SqlMetadata,
    store: BlobStore,
    events: EventBus | None = None,
    quotas: QuotaService | None = None,
) -> Registry:
    quotas = quotas or QuotaService(metadata.quotas, metadata.accounts)
    return Registry(
        blobs=BlobService(store, metadata.blobs),
        uploads=UploadService(
            store,
            metadata.uploads,
            metadata.blobs,
            max_blob_size=settings.max_blob_size,
            timeout=settings.upload_timeout,
            max_sessions=settings.max_upload_sessions,
            quotas=quotas,
        ),
        manifests=ManifestService(
            metadata.manifests,
            metadata.repositories,
            store,
            max_manifest_size=settings.max_manifest_size,
            events=events,
        ),
        downloads=DownloadCounter(metadata.manifests),
        max_page_size=settings.max_page_size,
        quotas=quotas,
    )


def build_failure_limiter(settings: Settings, metadata: SqlMetadata) -> FailureLimiter:
    """Failed sign-ins, counted where every worker and replica sees them: in Redis when
    ``redis_url`` is set, else in a shared (non-SQLite) database; in this process otherwise."""
    if settings.redis_url or settings.resolved_database_url.startswith("sqlite"):
        storage = failure_storage(settings.redis_url)
    else:
        storage = metadata.failure_storage()
    return FailureLimiter(
        limit=settings.sign_in_failures, window=settings.sign_in_window, storage=storage
    )


def build_gc(
    settings: Settings, metadata: SqlMetadata, store: BlobStore, registry: Registry
) -> GcService:
    return GcService(
        metadata.gc, store, registry.uploads, metadata.uploads, grace=settings.gc_grace
    )


def build_retention(
    settings: Settings,
    metadata: SqlMetadata,
    packages: PackageService | None = None,
    events: EventBus | None = None,
) -> RetentionService:
    return RetentionService(
        packages,
        metadata.package_records,
        metadata.accounts,
        metadata.retention,
        protected_downloads=settings.protected_downloads,
        events=events,
    )


def build_access(
    settings: Settings,
    metadata: SqlMetadata,
    limiter: FailureLimiter,
    on_failure: Callable[[str, str], Awaitable[None]] | None = None,
) -> AccessService:
    key = load_or_create_key(settings.resolved_token_key_file)
    return AccessService(
        metadata.accounts,
        metadata.tokens,
        metadata.packages,
        RegistryTokens(key, service=settings.token_service, ttl=settings.token_ttl),
        realm=f"{settings.registry_url}/token",
        limiter=limiter,
        on_failure=on_failure,
    )


def build_trusted_publishing(
    settings: Settings, metadata: SqlMetadata, accounts: AccountService, admin: Administration
) -> TrustedPublishing:
    try:
        issuers = parse_issuers(settings.oidc_issuers)
    except ValueError as exc:
        raise SystemExit(f"cargobay: CARGOBAY_OIDC_ISSUERS: {exc}") from None
    keys = IssuerKeys(issuers, ttl=settings.oidc_keys_ttl, refresh_every=settings.oidc_keys_refresh)
    verifier = IdTokenVerifier(keys)
    return TrustedPublishing(
        metadata.trust, accounts, admin, verifier, default_audience=settings.public_base_url
    )


def build_webhook_delivery(
    settings: Settings,
    metadata: SqlMetadata,
    allowed: AllowList,
    box: SecretBox,
    *,
    metrics: bool,
) -> WebhookDelivery:
    return WebhookDelivery(
        metadata.webhooks,
        metadata.events,
        metadata.package_records,
        Payloads(settings.public_base_url, settings.registry_address),
        box=box,
        allowed=allowed,
        timeout=settings.webhook_timeout,
        retry_for=settings.webhook_retry_for,
        follow_redirects=settings.webhook_follow_redirects,
        retention=settings.webhook_delivery_retention,
        on_outcome=count_webhook_delivery if metrics else None,
    )


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or load_settings()
    hashing.configure(enabled=settings.resumable_hash)
    store = build_blob_store(settings)
    metadata = build_metadata(settings)
    events = EventBus()
    audit = AuditLog(metadata.events, metadata.accounts, retention=settings.audit_retention)
    limiter = build_failure_limiter(settings, metadata)
    access = build_access(
        settings, metadata, limiter, functools.partial(audit.sign_in_failed, via="token")
    )
    packages = PackageService(
        metadata.package_records,
        metadata.accounts,
        access,
        web_base=settings.public_base_url,
        restore_window=settings.restore_window,
        protected_downloads=settings.protected_downloads,
        events=events,
    )
    events.subscribe(Action.VERSION_PUBLISHED, packages.published)
    quotas = QuotaService(metadata.quotas, metadata.accounts)
    registry = build_registry(settings, metadata, store, events, quotas)
    accounts = AccountService(metadata, workflow_token_ttl=settings.workflow_token_ttl)
    signin = SignIn(
        metadata.accounts,
        metadata.sessions,
        limiter,
        ttl=settings.session_ttl,
        on_failure=functools.partial(audit.sign_in_failed, via="password"),
    )
    jobs = JobRunner(
        job_lock(metadata.engine, settings.data_dir, "jobs"), retry=settings.job_lock_retry
    )
    jobs.add("sweep-uploads", settings.upload_sweep_interval, registry.uploads.purge_expired)
    jobs.add(
        "flush-downloads",
        settings.download_flush_interval,
        registry.downloads.flush,
        exclusive=False,  # each worker counts its own downloads
    )
    jobs.add("purge-deleted", settings.purge_interval, packages.purge_expired)
    jobs.add("audit-retention", settings.audit_prune_interval, audit.prune)
    retention = build_retention(settings, metadata, packages, events)
    if settings.retention_interval > 0:
        jobs.add("retention", settings.retention_interval, retention.run_job)
    if settings.gc_interval > 0:
        jobs.add("gc", settings.gc_interval, build_gc(settings, metadata, store, registry).run_once)
    tally = Tally(pool_in_use(metadata.engine)) if settings.metrics_port else None
    tracer = (
        tracing.Tracing(settings.otel_endpoint)
        if tracing.endpoint_of(settings.otel_endpoint)
        else None
    )
    allowed = AllowList.parse(settings.webhook_allowed_hosts)
    box = load_or_create_keys(settings.resolved_secret_key_file)
    webhooks = Webhooks(metadata.webhooks, metadata.accounts, allowed=allowed, box=box)
    jobs.add("seal-webhook-secrets", settings.webhook_interval, webhooks.seal_stored)
    jobs.add(
        "webhooks",
        settings.webhook_interval,
        build_webhook_delivery(settings, metadata, allowed, box, metrics=tally is not None).run,
    )
    if tally is not None:
        jobs.add("flush-metrics", 1.0, tally.flush_soon, exclusive=False)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(jobs.run)
            yield
            await jobs.stop()
            tasks.cancel_scope.cancel()
        if tally is not None:
            tally.flush()
        with contextlib.suppress(Exception):
            await registry.downloads.flush()
        if tracer is not None:
            tracer.shutdown()
        metadata.close()

    administration = Administration(accounts)
    trusted_publishing = build_trusted_publishing(settings, metadata, accounts, administration)
    services = Services(
        settings=settings,
        registry=registry,
        access=access,
        packages=packages,
        accounts=accounts,
        administration=administration,
        immutability=ImmutableTagService(packages, metadata.package_records, metadata.immutable),
        retention=retention,
        usage=UsageService(
            packages, metadata.package_records, metadata.accounts, metadata.usage, metadata.quotas
        ),
        quotas=quotas,
        signin=signin,
        trusted_publishing=trusted_publishing,
        audit=audit,
        jobs=jobs,
        webhooks=webhooks,
    )
    site = Starlette(lifespan=lifespan, routes=HEALTH_ROUTES, exception_handlers={404: _not_found})
    site.state.settings = settings
    site.state.registry = registry
    site.state.health = HealthService(metadata.ping, store, _free_space_check(settings))
    site.mount("/api/v3", create_rest_app(services))
    site.mount("/", create_web_app(services))
    app: ASGIApp = HostRouter(
        OciApp(ROUTES, services),
        site,
        ForwardedHeaders(proxy_networks(settings.trusted_proxies)),
        site_host=settings.site_host,
        registry_host=settings.registry_host_name,
        registry_url=settings.registry_url,
        site_url=settings.public_base_url,
    )
    if tally is not None:
        app = Metrics(app, tally)
    if settings.access_log:
        requestlog.configure()
        app = RequestLog(app)
    if tracer is not None:
        app = tracer.wrap(app, metadata.engine)
    return app


def _free_space_check(settings: Settings) -> FreeSpaceCheck | None:
    """Free space matters where the data directory holds blobs or the SQLite database."""
    local = settings.blob_store == "filesystem" or settings.resolved_database_url.startswith(
        "sqlite"
    )
    if not local or not settings.min_free_space or not settings.min_free_percent:
        return None
    return FreeSpaceCheck(settings.data_dir, settings.min_free_space, settings.min_free_percent)


async def _not_found(request: Request, exc: Exception) -> Response:
    """Paths nothing routes (e.g. control characters the routes can't match)."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"message": "Not Found", "documentation_url": ""}, 404)
    return PlainTextResponse("Not Found", 404)
