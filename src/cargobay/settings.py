"""Typed settings: environment variables ``CARGOBAY_*``, an optional TOML file, then defaults.

Backends are chosen here by name; only :mod:`cargobay.app` builds them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

GIB = 1024**3
MIB = 1024**2


class Settings(BaseSettings):
    """Everything an operator can set; each field is also ``CARGOBAY_<FIELD>`` in the env."""

    model_config = SettingsConfigDict(env_prefix="CARGOBAY_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=256)
    data_dir: Path = Path("./cargobay-data")

    #: ``sqlite`` (a file in ``data_dir``) or a SQLAlchemy URL.
    database_url: str = ""
    #: ``filesystem`` (under ``data_dir``), ``s3`` (the ``s3_*`` settings) or ``memory`` (tests).
    blob_store: str = "filesystem"
    #: S3 (``blob_store = "s3"``): endpoint of an S3-compatible service (empty: AWS S3), the
    #: bucket (created if missing), its region, credentials (empty: boto3's usual sources) and a
    #: key prefix for everything cargobay stores.
    s3_endpoint_url: str = ""
    s3_bucket: str = "cargobay"
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_prefix: str = ""
    #: Seconds a presigned blob URL stays valid.
    s3_presign_expiry: int = Field(default=300, ge=1, le=7 * 86400)
    #: Answer blob GETs with a 307 redirect to the store's own URL for the blob (a presigned S3
    #: URL) where the store has one; False streams every blob through the registry.
    blob_redirect: bool = True

    #: Largest blob accepted, in bytes (10 GB by default).
    max_blob_size: int = Field(default=10 * 1000**3, ge=1)
    #: Largest manifest accepted, in bytes.
    max_manifest_size: int = Field(default=4 * MIB, ge=1024)
    #: An upload session idle this many seconds expires and its data is removed.
    upload_timeout: float = Field(default=600.0, gt=0)
    #: How often expired uploads are swept, in seconds.
    upload_sweep_interval: float = Field(default=60.0, gt=0)
    #: Most requests one worker runs at once (others wait in the server, not in Python).
    #: Lower values cut tail latency under many small requests, but long uploads hold their
    #: slot for their whole duration. 0: no limit.
    backpressure: int = Field(default=0, ge=0)
    #: Largest page of tags or repositories a client may ask for.
    max_page_size: int = Field(default=10_000, ge=1)

    #: Public base URL of the registry (``http://host:port`` when empty).
    base_url: str = ""
    #: The ``service`` registry tokens are issued for (default: the base URL's host[:port]).
    service: str = ""
    #: Lifetime of registry tokens handed out by ``/token``, seconds.
    token_ttl: int = Field(default=300, ge=10, le=86400)
    #: Default lifetime of workflow tokens, seconds.
    workflow_token_ttl: int = Field(default=3600, ge=60)
    #: The registry-token signing key (created on first start; replicas must share it).
    token_key_file: Path | None = None
    #: Failed sign-ins allowed per client address and per user name in ``sign_in_window``.
    sign_in_failures: int = Field(default=10, ge=1)
    sign_in_window: float = Field(default=300.0, gt=0)
    #: Web sign-in sessions last this many seconds (7 days).
    session_ttl: float = Field(default=7 * 86400.0, gt=60)

    #: Deleted packages and versions can be restored for this many seconds (30 days), then
    #: they are purged.
    restore_window: float = Field(default=30 * 86400.0, gt=0)
    #: How often deleted content past the restore window is purged, in seconds.
    purge_interval: float = Field(default=3600.0, gt=0)
    #: Public packages with a version downloaded more often than this can only be deleted by
    #: a site administrator.
    protected_downloads: int = Field(default=5000, ge=0)
    #: Run the garbage collector every this many seconds in the server (0: never; run
    #: ``cargobay gc`` instead). With several workers or replicas one run happens at a time.
    gc_interval: float = Field(default=0.0, ge=0)
    #: Seconds a blob stays after it became unreferenced, or since it was last uploaded, before
    #: the garbage collector may remove it (1 day: far more than an upload session plus a
    #: registry token's lifetime, the longest a push can take between its blobs and manifest).
    gc_grace: float = Field(default=86400.0, ge=0)
    #: How often download counts gathered in memory are written, in seconds.
    download_flush_interval: float = Field(default=2.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("CARGOBAY_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url and self.database_url != "sqlite":
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cargobay.db').resolve()}"

    @property
    def public_base_url(self) -> str:
        return self.base_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def token_service(self) -> str:
        return self.service or urlsplit(self.public_base_url).netloc

    @property
    def resolved_token_key_file(self) -> Path:
        return self.token_key_file or self.data_dir / "registry-token.key"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``$CARGOBAY_CONFIG``; ``overrides`` win (CLI flags)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
