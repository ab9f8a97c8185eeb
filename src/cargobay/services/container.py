"""The services of one running registry, typed, in one frozen container: the composition root
(:func:`cargobay.app.create_app`) builds it once, and the entry points (``/v2``, the REST API,
the pages) and the background jobs take what they need from it by attribute."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.services.access import AccessService
from cargobay.services.accounts import AccountService
from cargobay.services.administration import Administration
from cargobay.services.audit import AuditLog
from cargobay.services.immutability import ImmutableTagService
from cargobay.services.jobs import JobRunner
from cargobay.services.packages import PackageService
from cargobay.services.quotas import QuotaService
from cargobay.services.registry import Registry
from cargobay.services.retention import RetentionService
from cargobay.services.signin import SignIn
from cargobay.services.trusted_publishing import TrustedPublishing
from cargobay.services.usage import UsageService
from cargobay.services.webhooks import Webhooks
from cargobay.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    #: ``/v2``: blobs, uploads, manifests, download counts.
    registry: Registry
    access: AccessService
    packages: PackageService
    accounts: AccountService
    administration: Administration
    immutability: ImmutableTagService
    retention: RetentionService
    usage: UsageService
    quotas: QuotaService
    signin: SignIn
    trusted_publishing: TrustedPublishing
    audit: AuditLog
    webhooks: Webhooks
    #: The background jobs (upload expiry, download counts, purge, retention, GC, webhooks).
    jobs: JobRunner
