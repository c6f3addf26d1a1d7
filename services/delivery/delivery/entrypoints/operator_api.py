"""The operator API of delivery, behind `Authorization: Bearer $ADMIN_TOKEN`: webhooks."""

from __future__ import annotations

from cohort_shared.openapi import json_body
from fastapi import APIRouter, Query, Request, Response

from ..domain.webhooks import CreateWebhookBody, ReplayBody, UpdateWebhookBody
from ..service_layer import WebhookService
from .request_body import read_json_object
from .responses import (
    AttemptList,
    CreatedWebhook,
    ReplayStarted,
    RotatedSecret,
    WebhookList,
    WebhookState,
    errors,
    state,
    view,
)

router = APIRouter(tags=["webhooks"])
BASE = "/workspaces/{ws}/webhooks"


def _service(request: Request) -> WebhookService:
    return request.app.state.webhooks


async def _state(service: WebhookService, webhook) -> WebhookState:
    return state(webhook, await service.counts(webhook), await service.replay_state(webhook))


@router.post(BASE, status_code=201, response_model=CreatedWebhook, responses=errors(400, 401, 413, 503),
             openapi_extra=json_body(CreateWebhookBody))
async def create_webhook(ws: str, request: Request) -> CreatedWebhook:
    """Create a webhook; the only answer that shows its secret (until it is rotated)."""
    webhook, secret = await _service(request).create(ws, await read_json_object(request))
    return CreatedWebhook(**view(webhook), secret=secret)


@router.get(BASE, response_model=WebhookList, responses=errors(400, 401, 503))
async def list_webhooks(ws: str, request: Request, cursor: str | None = None,
                        limit: int | None = Query(None, ge=1, le=1000)) -> WebhookList:
    """A page of the workspace's webhooks with their delivery counts, oldest first."""
    service = _service(request)
    webhooks, next_cursor = await service.list(ws, cursor, limit)
    return WebhookList(webhooks=[await _state(service, w) for w in webhooks], next_cursor=next_cursor)


@router.get(BASE + "/{webhook_id}", response_model=WebhookState, responses=errors(400, 401, 404, 503))
async def get_webhook(ws: str, webhook_id: str, request: Request) -> WebhookState:
    """One webhook: delivered, pending, failed, the last error and the latest replay."""
    service = _service(request)
    return await _state(service, await service.find(ws, webhook_id))


@router.patch(BASE + "/{webhook_id}", response_model=WebhookState, responses=errors(400, 401, 404, 413, 503),
              openapi_extra=json_body(UpdateWebhookBody))
async def update_webhook(ws: str, webhook_id: str, request: Request) -> WebhookState:
    """Pause (its backlog is kept) or resume (its backlog goes out) a webhook."""
    service = _service(request)
    return await _state(service, await service.update(ws, webhook_id, await read_json_object(request)))


@router.post(BASE + "/{webhook_id}/rotate-secret", response_model=RotatedSecret, responses=errors(400, 401, 404, 503))
async def rotate_webhook_secret(ws: str, webhook_id: str, request: Request) -> RotatedSecret:
    """A new secret, shown once; deliveries carry both signatures for the grace period."""
    webhook, secret = await _service(request).rotate_secret(ws, webhook_id)
    return RotatedSecret(webhook_id=webhook.webhook_id, secret=secret)


@router.get(BASE + "/{webhook_id}/attempts", response_model=AttemptList, responses=errors(400, 401, 404, 503))
async def list_attempts(ws: str, webhook_id: str, request: Request,
                        limit: int | None = Query(None, ge=1, le=1000)) -> AttemptList:
    """The latest delivery attempts, newest first."""
    return AttemptList(attempts=await _service(request).attempts(ws, webhook_id, limit))


@router.post(BASE + "/{webhook_id}/replay", status_code=202, response_model=ReplayStarted,
             responses=errors(400, 401, 404, 413, 503), openapi_extra=json_body(ReplayBody))
async def replay_webhook(ws: str, webhook_id: str, request: Request) -> ReplayStarted:
    """Send again every matching event since `from` (progress: the webhook's `replay`)."""
    replay = await _service(request).replay(ws, webhook_id, await read_json_object(request))
    return ReplayStarted(webhook_id=webhook_id, replay=replay)


@router.delete(BASE + "/{webhook_id}", status_code=204, responses=errors(400, 401, 404, 503))
async def delete_webhook(ws: str, webhook_id: str, request: Request) -> Response:
    """Delete a webhook: nothing more is sent to it, its queue and history go."""
    await _service(request).delete(ws, webhook_id)
    return Response(status_code=204)
