"""A delivery as the Standard Webhooks format has it: the body `{"type", "timestamp",
"data"}` and the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers, signed
with the `standardwebhooks` package. The body of an event is the same on every attempt; the
timestamp header (and so the signature) is that of the attempt, as receivers check it is
recent."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

import orjson
from standardwebhooks.webhooks import Webhook

EVENT_TYPE = "membership.changed"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def body_of(event: dict) -> bytes:
    """The POST body for a §5 event; its timestamp is when the change happened."""
    return orjson.dumps({"type": EVENT_TYPE, "timestamp": event["occurred_at"], "data": event})


class Signer:
    """Signs with the current secret and, during a rotation's grace period, the previous one
    too (space-separated signatures, which Standard Webhooks verifiers accept)."""

    def __init__(self, *secrets_in_clear: str) -> None:
        self._webhooks = [Webhook(secret) for secret in secrets_in_clear]

    def headers(self, event_id: str, body: bytes, now: datetime) -> dict[str, str]:
        stamp = now.astimezone(UTC)
        text = body.decode()
        signatures = " ".join(webhook.sign(event_id, stamp, text) for webhook in self._webhooks)
        return {"webhook-id": event_id, "webhook-timestamp": str(int(stamp.timestamp())),
                "webhook-signature": signatures, "content-type": "application/json"}
