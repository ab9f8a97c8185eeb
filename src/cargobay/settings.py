"""Typed settings: environment variables ``CARGOBAY_*``, an optional TOML file, then defaults.

Backends are chosen here by name; only :mod:`cargobay.app` builds them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: A DNS name: dot-separated labels of letters, digits and inner hyphens.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")

GIB = 1024**3
MIB = 1024**2


class Settings(BaseSettings):
    """Everything an operator can set; each field is also ``CARGOBAY_<FIELD>`` in the env."""

    model_config = SettingsConfigDict(env_prefix="CARGOBAY_", extra="forbid")

    #: Address to listen on; a wildcard (``0.0.0.0``, ``::``) needs ``base_url``.
    host: str = "127.0.0.1"
    #: Port to listen on.
    port: int = Field(default=5000, ge=0, le=65535)
    #: Worker processes serving requests.
    workers: int = Field(default=1, ge=1, le=256)
    #: Where the state lives: the SQLite database, blobs (filesystem store), the token key.
    #: A relative path is taken from the current directory.
    data_dir: Path = Path("./cargobay-data")

    #: ``sqlite`` (a file in ``data_dir``) or a SQLAlchemy URL.
    database_url: str = ""
    #: ``filesystem`` (under ``data_dir``), ``s3`` (the ``s3_*`` settings) or ``memory`` (tests).
    blob_store: Literal["filesystem", "s3", "memory"] = "filesystem"
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

    #: Keep the running SHA-256 of chunked uploads between requests (OpenSSL's, see
    #: ``storage/hashing.py``); False re-hashes the stored bytes when an upload is finished.
    resumable_hash: bool = True

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
    #: Most upload sessions one principal (a user, a workflow token, or anonymous callers) may
    #: have open at once; past it a new one is refused with 429 until some finish or expire.
    max_upload_sessions: int = Field(default=10_000, ge=1)
    #: ``cargobay serve`` stops within this many seconds of SIGTERM or Ctrl-C: it stops
    #: accepting, lets requests in flight finish until then, then closes what remains (an
    #: upload cut off keeps the bytes it stored and can be resumed).
    shutdown_timeout: int = Field(default=25, ge=1, le=3600)
    #: ``/readyz`` answers 503 when the data directory (local blobs, the SQLite database) has
    #: less free space than the smaller of ``min_free_space`` bytes and ``min_free_percent`` of
    #: its size, so a load balancer stops sending pushes before the disk is full. 0: no check.
    min_free_space: int = Field(default=GIB, ge=0)
    min_free_percent: float = Field(default=2.0, ge=0, le=100)
    #: SQLite ``synchronous``: ``full`` (default) makes every acknowledged write survive an OS
    #: crash or a power loss; ``normal`` is faster, but the writes acknowledged last before such
    #: a crash may be lost (the database stays consistent). See docs/deployment.md.
    sqlite_synchronous: Literal["full", "normal"] = "full"

    #: Public base URL of the site (``http(s)://hostname`` or ``http(s)://host:port`` when
    #: empty). Behind a reverse proxy that terminates TLS, its ``https://`` address.
    base_url: str = ""
    #: The site's host name (``registry.example.com``). Setting it turns on subdomain isolation:
    #: the site (pages, ``/api/v3``) answers on this name only, the registry (``/v2``,
    #: ``/token``) on ``registry_hostname`` only, any other ``Host`` gets 421. Empty: one origin.
    hostname: str = ""
    #: The registry's host name (default ``containers.<hostname>``); same scheme and port as the
    #: site.
    registry_hostname: str = ""
    #: Addresses or networks (CIDR) of reverse proxies whose ``X-Forwarded-For``,
    #: ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are believed; from anyone else they are
    #: ignored. A comma-separated list in the environment.
    trusted_proxies: str = ""
    #: Serve HTTPS with this certificate chain and key (PEM files, e.g. from ``cargobay tls
    #: init``). Workers read them when they start: after replacing the files, send SIGHUP.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: The ``service`` registry tokens are issued for (default: the registry's host[:port]).
    service: str = ""
    #: Lifetime of registry tokens handed out by ``/token``, seconds.
    token_ttl: int = Field(default=300, ge=10, le=86400)
    #: Default lifetime of workflow tokens, seconds.
    workflow_token_ttl: int = Field(default=3600, ge=60)
    #: Trusted publishing: OIDC issuers whose ID tokens ``/token`` exchanges for workflow tokens
    #: (comma-separated issuer URLs, e.g. ``https://token.actions.githubusercontent.com``). Only
    #: these are ever contacted; ``http://`` only for loopback or private addresses.
    oidc_issuers: str = ""
    #: Seconds an issuer's fetched signing keys are used before they are fetched again.
    oidc_keys_ttl: float = Field(default=600.0, ge=10, le=86400)
    #: Least seconds between two fetches of one issuer's keys (a token with a key id the cache
    #: doesn't know causes at most one refetch per interval).
    oidc_keys_refresh: float = Field(default=60.0, ge=1, le=3600)
    #: The registry-token signing key (created on first start; replicas must share it).
    token_key_file: Path | None = None
    #: Keys that encrypt stored webhook secrets, one Fernet key a line; the first encrypts, all
    #: decrypt (to rotate, add a new first line). Created with one key (0600) on first start;
    #: replicas must share it. Default: ``secret-keys`` in ``data_dir``.
    secret_key_file: Path | None = None
    #: Failed sign-ins allowed per client address and per user name in ``sign_in_window``.
    sign_in_failures: int = Field(default=10, ge=1)
    sign_in_window: float = Field(default=300.0, gt=0)
    #: Redis (``redis://[:password@]host:port/db``) where failed sign-ins are counted, shared by
    #: every worker and replica; empty: each process counts its own.
    redis_url: str = ""
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
    #: How often retention policies are applied (their cleanup of old versions), in seconds
    #: (0: never; run ``cargobay retention apply`` instead). One run at a time across workers.
    retention_interval: float = Field(default=3600.0, ge=0)
    #: How often download counts gathered in memory are written, in seconds.
    download_flush_interval: float = Field(default=2.0, gt=0)
    #: Audit-log entries older than this many seconds are removed (default: one year).
    audit_retention: float = Field(default=365 * 86400.0, gt=0)
    #: How often the audit-log retention job runs, in seconds.
    audit_prune_interval: float = Field(default=3600.0, gt=0)
    #: One log line per request on stderr (JSON; text on a terminal), with a request id.
    access_log: bool = False
    #: Send OpenTelemetry traces (OTLP/HTTP) to this collector base URL, e.g.
    #: ``http://otel-collector:4318``; empty: the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` if
    #: set, else no tracing. Needs the ``tracing`` extra.
    otel_endpoint: str = ""
    #: Serve Prometheus metrics on this port (off when unset), on ``metrics_host`` only.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    #: Webhooks may deliver to these hosts or networks although they are loopback, link-local,
    #: private, multicast or unspecified addresses (refused by default): host names or
    #: addresses/CIDRs, comma-separated (e.g. ``127.0.0.1,10.0.0.0/8,hooks.internal``).
    webhook_allowed_hosts: str = ""
    #: Seconds a webhook delivery may take to connect, and to wait for each read of the answer.
    webhook_timeout: float = Field(default=10.0, gt=0, le=120)
    #: A failing delivery is retried (exponential back-off with jitter) for this many seconds
    #: after its event, then given up; until then the hook's later deliveries wait.
    webhook_retry_for: float = Field(default=3 * 3600.0, ge=0)
    #: Follow HTTP redirects of webhook receivers (each hop checked like the first); off: a
    #: redirect is a failed delivery.
    webhook_follow_redirects: bool = False
    #: Delivery log entries (request, response) are kept this many seconds (default 30 days).
    webhook_delivery_retention: float = Field(default=30 * 86400.0, gt=0)
    #: How often the delivery job looks for new events and due retries, in seconds.
    webhook_interval: float = Field(default=1.0, gt=0)
    #: How often a worker that does not run the exclusive background jobs (purges, retention)
    #: tries to take them over, in seconds.
    job_lock_retry: float = Field(default=5.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError(
                "must be an http:// or https:// URL, e.g. https://registry.example.com"
            )
        return value

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

    @field_validator("hostname", "registry_hostname")
    @classmethod
    def _host_name(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if value and not _HOST_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a host name (no scheme, port or path)")
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: str) -> str:
        from cargobay.services.webhook_targets import AllowList

        AllowList.parse(value)  # ValueError names the bad entry
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for entry in proxy_networks(value):
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    @property
    def isolated(self) -> bool:
        """Site and registry on two host names (``hostname`` is set)."""
        return bool(self.hostname)

    @property
    def scheme(self) -> str:
        if self.base_url:
            return urlsplit(self.base_url).scheme or "http"
        return "https" if self.tls_cert else "http"

    @property
    def public_base_url(self) -> str:
        """The site's public URL (pages, ``/api/v3``), without a trailing slash."""
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.hostname:
            default = 443 if self.scheme == "https" else 80
            port = "" if self.port == default else f":{self.port}"
            return f"{self.scheme}://{self.hostname}{port}"
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def site_host(self) -> str:
        """The site's host name, without a port."""
        return self.hostname or (urlsplit(self.public_base_url).hostname or "")

    @property
    def registry_host_name(self) -> str:
        """The registry's host name, without a port."""
        if not self.hostname:
            return self.site_host
        return self.registry_hostname or f"containers.{self.hostname}"

    @property
    def registry_url(self) -> str:
        """The registry's public URL (``/v2``, ``/token``): the site's scheme and port on the
        registry host name (the site's own URL without isolation)."""
        if not self.hostname:
            return self.public_base_url
        site = urlsplit(self.public_base_url)
        port = f":{site.port}" if site.port else ""
        return f"{site.scheme}://{self.registry_host_name}{port}"

    @property
    def registry_address(self) -> str:
        """What ``docker login``/``docker pull`` name: the registry's host[:port]."""
        return urlsplit(self.registry_url).netloc

    @property
    def token_service(self) -> str:
        return self.service or self.registry_address

    @property
    def resolved_token_key_file(self) -> Path:
        return self.token_key_file or self.data_dir / "registry-token.key"

    @property
    def resolved_secret_key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret-keys"


def proxy_networks(value: str) -> list[str]:
    """The entries of a ``trusted_proxies`` list (commas or blanks between them)."""
    return [entry for entry in re.split(r"[\s,]+", value) if entry]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``$CARGOBAY_CONFIG``; ``overrides`` win (CLI flags).
    Raises :class:`cargobay.configuration.ConfigError` on a mistake."""
    from cargobay.configuration import resolve

    return resolve(overrides).settings
