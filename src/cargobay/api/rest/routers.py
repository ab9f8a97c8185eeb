"""Every router of the REST API, registered in this one place (by :mod:`cargobay.api.rest.app`)."""

from __future__ import annotations

from fastapi import APIRouter

from cargobay.api.rest import (
    accounts,
    audit,
    immutability,
    packages,
    quotas,
    retention,
    trust,
    usage,
    webhooks,
)

ROUTERS: tuple[APIRouter, ...] = (
    packages.router,
    immutability.router,
    retention.router,
    usage.router,
    quotas.router,
    accounts.router,
    trust.router,
    audit.router,
    webhooks.router,
)
