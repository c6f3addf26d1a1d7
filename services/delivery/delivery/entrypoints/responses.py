"""Response bodies, as documented in /openapi.json."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ..adapters.queues import Counts
from ..domain.webhooks import Webhook


class ErrorBody(BaseModel):
    """Every 4xx/5xx: what is wrong, naming the field."""

    message: str


class WebhookView(BaseModel):
    webhook_id: str
    url: str
    description: str | None
    filter: dict
    status: str
    created_at: datetime


class CreatedWebhook(WebhookView):
    """The secret in clear: shown this once (and again only by rotating it)."""

    secret: str


class WebhookState(WebhookView):
    delivered: int = Field(description="events this webhook answered with a 2xx")
    pending: int = Field(description="events queued: not yet sent, in flight or waiting for a retry")
    failed: int = Field(description="events given up on after the retry period; replayable")
    last_error: str | None
    last_error_at: float | None = Field(description="epoch seconds")
    replay: dict | None = Field(None, description="the latest replay: from, status, queued")


class WebhookList(BaseModel):
    webhooks: list[WebhookState]
    next_cursor: str | None = Field(description="the cursor of the next page; null on the last page")


class RotatedSecret(BaseModel):
    webhook_id: str
    secret: str


class Attempt(BaseModel):
    event_id: str
    attempt: int
    at: float = Field(description="epoch seconds")
    status_code: int | None
    error: str | None
    duration_ms: float
    result: str = Field(description="delivered, retrying or failed")


class AttemptList(BaseModel):
    attempts: list[Attempt]


class ReplayStarted(BaseModel):
    webhook_id: str
    replay: dict


def view(webhook: Webhook) -> dict:
    return {"webhook_id": webhook.webhook_id, "url": webhook.url, "description": webhook.description,
            "filter": webhook.filter.model_dump(exclude_none=True), "status": webhook.status,
            "created_at": webhook.created_at}


def state(webhook: Webhook, counts: Counts, replay: dict | None) -> WebhookState:
    return WebhookState(**view(webhook), delivered=counts.delivered, pending=counts.pending, failed=counts.failed,
                        last_error=counts.last_error, last_error_at=counts.last_error_at, replay=replay)


def errors(*statuses: int) -> dict:
    return {status: {"model": ErrorBody} for status in statuses}
