"""Webhooks in the shape of GitHub's organization webhooks (``/orgs/{org}/hooks``: ``name:
web``, ``active``, ``events``, ``config.url``/``secret``/``content_type``; the delivery log and
redelivery), so GitHub clients (octokit's ``orgs.createWebhook``) work unchanged. The same
routes exist for the caller's own hooks (``/user/hooks``) and the site's
(``/admin/hooks``, site administrators). The secret is never shown back: ``********``."""

# No ``from __future__ import annotations``: the routes are closures (one set per prefix), and
# FastAPI must see their parameter types as objects, not names to look up in the module.

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from cargobay.api.rest.dependencies import ERROR_RESPONSES, Caller, services, urls
from cargobay.ports.webhooks import PENDING, Delivery, Hook
from cargobay.services.accounts import InvalidInput
from cargobay.services.webhooks import HookSpec, Target, Webhooks

router = APIRouter(responses=ERROR_RESPONSES, tags=["webhooks"])


class HookConfigIn(BaseModel):
    url: str | None = Field(None, max_length=2048, description="the receiver (http or https)")
    content_type: str | None = Field(None, description="json or form (the default)")
    secret: str | None = Field(
        None, max_length=255, description="signs deliveries (X-Hub-Signature-256)"
    )
    insecure_ssl: str | int | None = Field(None, description="only 0: certificates are verified")


class NewHook(BaseModel):
    name: str = Field("web", description="must be web")
    config: HookConfigIn
    events: list[str] | None = Field(
        None, description="registry_package (default), package, cargobay_package or *"
    )
    active: bool = True


class HookUpdate(BaseModel):
    name: str | None = None
    config: HookConfigIn | None = None
    events: list[str] | None = None
    active: bool | None = None


class HookConfigOut(BaseModel):
    url: str
    content_type: str
    insecure_ssl: str = "0"
    secret: str | None = Field(None, description="******** when set")


class HookOut(BaseModel):
    type: str
    id: int
    name: str = "web"
    active: bool
    events: list[str]
    config: HookConfigOut
    created_at: datetime
    updated_at: datetime
    url: str
    ping_url: str
    deliveries_url: str


class DeliveryOut(BaseModel):
    id: int
    guid: str
    delivered_at: datetime | None
    redelivery: bool
    duration: float | None
    status: str
    status_code: int
    event: str
    action: str | None
    installation_id: int | None = None
    repository_id: int | None = None
    throttled_at: datetime | None = None
    state: str = Field(description="pending (queued or waiting to retry), delivered or failed")
    attempts: int


class DeliveryRequest(BaseModel):
    headers: dict[str, str]
    payload: dict[str, Any] | None


class DeliveryResponse(BaseModel):
    headers: dict[str, str]
    payload: str | None


class DeliveryDetail(DeliveryOut):
    url: str
    request: DeliveryRequest
    response: DeliveryResponse


def _service(request: Request) -> Webhooks:
    value: Webhooks = services(request).webhooks
    return value


Service = Annotated[Webhooks, Depends(_service)]
HookId = Annotated[int, Path(ge=1, le=2**31 - 1)]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _hook_url(request: Request, target: Target, hook_id: int) -> str:
    api = urls(request).api
    if target.kind == "org":
        return f"{api}/orgs/{target.login}/hooks/{hook_id}"
    return f"{api}/{'user' if target.kind == 'user' else 'admin'}/hooks/{hook_id}"


def _out(request: Request, target: Target, hook: Hook) -> HookOut:
    url = _hook_url(request, target, hook.id)
    kind = {"org": "Organization", "user": "User", "site": "Global"}[target.kind]
    return HookOut(
        type=kind,
        id=hook.id,
        active=hook.active,
        events=list(hook.events),
        config=HookConfigOut(
            url=hook.url,
            content_type=hook.content_type,
            secret="********" if hook.secret else None,
        ),
        created_at=hook.created_at,
        updated_at=hook.updated_at,
        url=url,
        ping_url=f"{url}/pings",
        deliveries_url=f"{url}/deliveries",
    )


def _delivery(d: Delivery) -> dict[str, Any]:
    status = d.status or ("pending" if d.state == PENDING else "")
    return {
        "id": d.id,
        "guid": d.guid,
        "delivered_at": d.delivered_at,
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": status,
        "status_code": d.status_code or 0,
        "event": d.event,
        "action": d.action,
        "state": d.state,
        "attempts": d.attempts,
    }


def _detail(request: Request, target: Target, d: Delivery) -> DeliveryDetail:
    try:
        payload = json.loads(d.payload)
    except ValueError:
        payload = None
    return DeliveryDetail(
        **_delivery(d),
        url=f"{_hook_url(request, target, d.hook_id)}/deliveries/{d.id}",
        request=DeliveryRequest(headers=dict(d.request_headers), payload=payload),
        response=DeliveryResponse(headers=dict(d.response_headers), payload=d.response_body),
    )


def _spec(config: HookConfigIn | None, events: list[str] | None, active: bool | None) -> HookSpec:
    if config is not None and config.insecure_ssl not in (None, "0", 0):
        raise InvalidInput("config.insecure_ssl: only 0 (certificates are always verified)")
    return HookSpec(
        url=config.url if config else None,
        secret=config.secret if config else None,
        content_type=config.content_type if config else None,
        events=tuple(events) if events is not None else None,
        active=active,
    )


def _named_web(name: str | None) -> None:
    if name is not None and name != "web":
        raise InvalidInput("name must be web")


def add_routes(prefix: str, target_of: Callable[..., Target], operation: str, who: str) -> None:
    """The hook routes under ``prefix`` (``operation``: the operationId prefix)."""
    Of = Annotated[Target, Depends(target_of)]

    @router.get(f"{prefix}/hooks", description=who, operation_id=f"{operation}/list-webhooks")
    async def list_hooks(
        request: Request, who_: Caller, service: Service, target: Of
    ) -> list[HookOut]:
        return [_out(request, target, h) for h in await service.hooks(who_, target)]

    @router.post(
        f"{prefix}/hooks",
        status_code=201,
        description=who,
        operation_id=f"{operation}/create-webhook",
    )
    async def create_hook(
        request: Request, body: NewHook, who_: Caller, service: Service, target: Of
    ) -> HookOut:
        _named_web(body.name)
        hook = await service.create(who_, target, _spec(body.config, body.events, body.active))
        return _out(request, target, hook)

    @router.get(
        f"{prefix}/hooks/{{hook_id}}", description=who, operation_id=f"{operation}/get-webhook"
    )
    async def get_hook(
        request: Request, hook_id: HookId, who_: Caller, service: Service, target: Of
    ) -> HookOut:
        return _out(request, target, await service.get(who_, target, hook_id))

    @router.patch(
        f"{prefix}/hooks/{{hook_id}}", description=who, operation_id=f"{operation}/update-webhook"
    )
    async def update_hook(
        request: Request,
        hook_id: HookId,
        body: HookUpdate,
        who_: Caller,
        service: Service,
        target: Of,
    ) -> HookOut:
        _named_web(body.name)
        spec = _spec(body.config, body.events, body.active)
        return _out(request, target, await service.update(who_, target, hook_id, spec))

    @router.delete(
        f"{prefix}/hooks/{{hook_id}}",
        status_code=204,
        response_class=Response,
        description=who,
        operation_id=f"{operation}/delete-webhook",
    )
    async def delete_hook(hook_id: HookId, who_: Caller, service: Service, target: Of) -> Response:
        await service.delete(who_, target, hook_id)
        return Response(status_code=204)

    @router.post(
        f"{prefix}/hooks/{{hook_id}}/pings",
        status_code=204,
        response_class=Response,
        description=who,
        operation_id=f"{operation}/ping-webhook",
    )
    async def ping_hook(hook_id: HookId, who_: Caller, service: Service, target: Of) -> Response:
        await service.ping(who_, target, hook_id)
        return Response(status_code=204)

    @router.get(
        f"{prefix}/hooks/{{hook_id}}/deliveries",
        description=who,
        operation_id=f"{operation}/list-webhook-deliveries",
        response_model=list[DeliveryOut],
    )
    async def list_deliveries(
        request: Request,
        hook_id: HookId,
        who_: Caller,
        service: Service,
        target: Of,
        cursor: Annotated[
            str | None,
            Query(max_length=19, pattern=r"^[0-9]+$", description="from the Link header"),
        ] = None,
        per_page: Annotated[int, Query(ge=1, le=100)] = 30,
    ) -> JSONResponse:
        before = int(cursor) if cursor else None
        found = await service.deliveries(who_, target, hook_id, before=before, limit=per_page)
        headers = {}
        if len(found) == per_page:
            url = request.url.include_query_params(cursor=found[-1].id, per_page=per_page)
            headers["Link"] = f'<{url}>; rel="next"'
        body = [DeliveryOut(**_delivery(d)).model_dump(mode="json") for d in found]
        return JSONResponse(body, headers=headers)

    @router.get(
        f"{prefix}/hooks/{{hook_id}}/deliveries/{{delivery_id}}",
        description=who,
        operation_id=f"{operation}/get-webhook-delivery",
    )
    async def get_delivery(
        request: Request,
        hook_id: HookId,
        delivery_id: DeliveryId,
        who_: Caller,
        service: Service,
        target: Of,
    ) -> DeliveryDetail:
        found = await service.delivery(who_, target, hook_id, delivery_id)
        return _detail(request, target, found)

    @router.post(
        f"{prefix}/hooks/{{hook_id}}/deliveries/{{delivery_id}}/attempts",
        status_code=202,
        description=who,
        operation_id=f"{operation}/redeliver-webhook-delivery",
    )
    async def redeliver(
        hook_id: HookId, delivery_id: DeliveryId, who_: Caller, service: Service, target: Of
    ) -> dict[str, Any]:
        await service.redeliver(who_, target, hook_id, delivery_id)
        return {}


def _org(org: Annotated[str, Path(max_length=39)]) -> Target:
    return Target("org", org)


def _user() -> Target:
    return Target("user")


def _site() -> Target:
    return Target("site")


add_routes("/orgs/{org}", _org, "orgs", "an organization's hooks (its owners)")
add_routes("/user", _user, "users", "the caller's own hooks")
add_routes("/admin", _site, "enterprise-admin", "the site's hooks (site administrators)")
