"""create_app(settings): the only place where backends and services are built and routes mounted."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from cargobay.api.health import ROUTES as HEALTH_ROUTES
from cargobay.api.oci.dispatch import OciApp
from cargobay.api.oci.routes import ROUTES
from cargobay.api.rest.app import create_rest_app
from cargobay.auth.ratelimit import FailureLimiter
from cargobay.auth.registry_tokens import RegistryTokens, load_or_create_key
from cargobay.metadata.engine import make_engine, pending_migrations
from cargobay.metadata.sql import SqlMetadata
from cargobay.services.access import AccessService
from cargobay.services.accounts import AccountService
from cargobay.services.administration import Administration
from cargobay.services.blobs import BlobService
from cargobay.services.downloads import DownloadCounter
from cargobay.services.gc import GcService
from cargobay.services.health import HealthService
from cargobay.services.immutability import ImmutableTagService
from cargobay.services.manifests import ManifestService, OnPublish
from cargobay.services.packages import PackageService
from cargobay.services.registry import Registry
from cargobay.services.signin import SignIn
from cargobay.services.uploads import UploadService
from cargobay.services.usage import UsageService
from cargobay.settings import Settings, load_settings
from cargobay.storage.base import BlobStore
from cargobay.storage.filesystem import FilesystemBlobStore
from cargobay.storage.memory import MemoryBlobStore
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
    engine = make_engine(settings.resolved_database_url)
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
    on_publish: OnPublish | None = None,
) -> Registry:
    return Registry(
        blobs=BlobService(store, metadata.blobs),
        uploads=UploadService(
            store,
            metadata.uploads,
            metadata.blobs,
            max_blob_size=settings.max_blob_size,
            timeout=settings.upload_timeout,
        ),
        manifests=ManifestService(
            metadata.manifests,
            metadata.repositories,
            store,
            max_manifest_size=settings.max_manifest_size,
            on_publish=on_publish,
        ),
        downloads=DownloadCounter(metadata.manifests),
        max_page_size=settings.max_page_size,
    )


def build_gc(
    settings: Settings, metadata: SqlMetadata, store: BlobStore, registry: Registry
) -> GcService:
    return GcService(
        metadata.gc, store, registry.uploads, metadata.uploads, grace=settings.gc_grace
    )


async def _every(interval: float, what: str, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await anyio.sleep(interval)
        try:
            await job()
        except Exception:
            log.exception("%s failed", what)


def build_access(settings: Settings, metadata: SqlMetadata) -> AccessService:
    key = load_or_create_key(settings.resolved_token_key_file)
    return AccessService(
        metadata.accounts,
        metadata.tokens,
        metadata.packages,
        RegistryTokens(key, service=settings.token_service, ttl=settings.token_ttl),
        realm=f"{settings.public_base_url}/token",
        limiter=FailureLimiter(limit=settings.sign_in_failures, window=settings.sign_in_window),
    )


def create_app(settings: Settings | None = None) -> CargobayApp:
    settings = settings or load_settings()
    store = build_blob_store(settings)
    metadata = build_metadata(settings)
    access = build_access(settings, metadata)
    packages = PackageService(
        metadata.package_records,
        metadata.accounts,
        access,
        web_base=settings.public_base_url,
        restore_window=settings.restore_window,
        protected_downloads=settings.protected_downloads,
    )
    registry = build_registry(settings, metadata, store, packages.published)
    accounts = AccountService(metadata, workflow_token_ttl=settings.workflow_token_ttl)
    signin = SignIn(
        metadata.accounts,
        metadata.sessions,
        FailureLimiter(limit=settings.sign_in_failures, window=settings.sign_in_window),
        ttl=settings.session_ttl,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                _every,
                settings.upload_sweep_interval,
                "sweeping expired uploads",
                registry.uploads.purge_expired,
            )
            tasks.start_soon(
                _every,
                settings.download_flush_interval,
                "writing download counts",
                registry.downloads.flush,
            )
            tasks.start_soon(
                _every, settings.purge_interval, "purging deleted packages", packages.purge_expired
            )
            if settings.gc_interval > 0:
                gc = build_gc(settings, metadata, store, registry)
                tasks.start_soon(_every, settings.gc_interval, "garbage collection", gc.run_once)
            yield
            tasks.cancel_scope.cancel()
        with contextlib.suppress(Exception):
            await registry.downloads.flush()
        metadata.close()

    state = {
        "registry": registry,
        "settings": settings,
        "access": access,
        "packages": packages,
        "accounts": accounts,
        "administration": Administration(accounts),
        "immutability": ImmutableTagService(packages, metadata.package_records, metadata.immutable),
        "usage": UsageService(
            packages, metadata.package_records, metadata.accounts, metadata.usage
        ),
        "signin": signin,
    }
    site = Starlette(lifespan=lifespan, routes=HEALTH_ROUTES, exception_handlers={404: _not_found})
    site.state.settings = settings
    site.state.registry = registry
    site.state.health = HealthService(metadata.ping, store)
    site.mount("/api/v3", create_rest_app(state))
    site.mount("/", create_web_app(state))
    return CargobayApp(OciApp(ROUTES, state), site)


async def _not_found(request: Request, exc: Exception) -> Response:
    """Paths nothing routes (e.g. control characters the routes can't match)."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"message": "Not Found", "documentation_url": ""}, 404)
    return PlainTextResponse("Not Found", 404)


class CargobayApp:
    """The whole ASGI application: ``/v2`` on the registry's own dispatcher, the rest (and the
    lifespan) on Starlette."""

    def __init__(self, oci: OciApp, site: Starlette) -> None:
        self.oci = oci
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            scope["path"].startswith("/v2") or scope["path"] == "/token"
        ):
            await self.oci(scope, receive, send)
        else:
            await self.site(scope, receive, send)
