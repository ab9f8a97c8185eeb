"""create_app(settings): the only place where backends and services are built and routes mounted."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from cargobay.api.oci.dispatch import OciApp
from cargobay.api.oci.routes import ROUTES
from cargobay.auth.ratelimit import FailureLimiter
from cargobay.auth.registry_tokens import RegistryTokens, load_or_create_key
from cargobay.metadata.engine import make_engine, pending_migrations
from cargobay.metadata.sql import SqlMetadata
from cargobay.services.access import AccessService
from cargobay.services.blobs import BlobService
from cargobay.services.manifests import ManifestService
from cargobay.services.registry import Registry
from cargobay.services.uploads import UploadService
from cargobay.settings import Settings, load_settings
from cargobay.storage.base import BlobStore
from cargobay.storage.filesystem import FilesystemBlobStore
from cargobay.storage.memory import MemoryBlobStore

log = logging.getLogger("cargobay")


def build_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "filesystem":
        return FilesystemBlobStore(settings.data_dir)
    if settings.blob_store == "memory":
        return MemoryBlobStore()
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


def build_registry(settings: Settings, metadata: SqlMetadata, store: BlobStore) -> Registry:
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
            metadata.manifests, metadata.repositories, max_manifest_size=settings.max_manifest_size
        ),
        max_page_size=settings.max_page_size,
    )


async def _sweep_uploads(registry: Registry, interval: float) -> None:
    while True:
        await anyio.sleep(interval)
        try:
            await registry.uploads.purge_expired()
        except Exception:
            log.exception("sweeping expired uploads failed")


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
    registry = build_registry(settings, metadata, store)
    access = build_access(settings, metadata)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_sweep_uploads, registry, settings.upload_sweep_interval)
            yield
            tasks.cancel_scope.cancel()
        metadata.close()

    site = Starlette(lifespan=lifespan)
    site.state.settings = settings
    site.state.registry = registry
    state = {"registry": registry, "settings": settings, "access": access}
    return CargobayApp(OciApp(ROUTES, state), site)


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
