"""Settings of delivery: the common ones plus its own, prefixed `DELIVERY_`.

`WEBHOOK_ALLOW_PRIVATE` keeps the exact name the contract gives it. `DELIVERY_SECRET_KEY`
encrypts every webhook's signing secret at rest; it has no default, so a deployment that
forgot it fails at start instead of storing secrets in clear.
"""

from __future__ import annotations

import base64
import binascii
import socket
import tempfile

from cohort_shared.settings import CommonSettings, env
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

SERVICE = "delivery"


class DeliverySettings(CommonSettings):
    """Where delivery listens, how it consumes, and how it retries."""

    model_config = SettingsConfigDict(
        env_prefix="DELIVERY_", frozen=True, extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    host: str = Field("0.0.0.0", description="interface to listen on")
    port: int = Field(8083, ge=1, le=65535)
    secret_key: SecretStr = Field(
        description="base64 of 32 random bytes: the AES-256-GCM key webhook secrets are stored under",
    )
    allow_private: bool = Field(
        False, validation_alias=env("WEBHOOK_ALLOW_PRIVATE"),
        description="allow webhook URLs on loopback, link-local and private addresses (tests, local demos)",
    )
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="an endpoint not answering within this fails the attempt")
    retry_base_seconds: float = Field(1.0, gt=0, description="first retry after about this long, doubling each time")
    retry_max_delay_seconds: float = Field(3600.0, gt=0, description="longest wait between two attempts")
    retry_max_age_seconds: float = Field(
        86_400.0, gt=0, description="an event still failing this long after its first attempt is kept as failed"
    )
    max_in_flight: int = Field(64, ge=1, le=1000, description="concurrent requests to one webhook, at most")
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open a webhook's circuit breaker")
    breaker_cooldown_seconds: float = Field(5.0, gt=0, description="an open breaker waits this long before a probe")
    window: int = Field(512, ge=16, le=10_000, description="queued events a sender looks at to pick what it may send")
    batch_max_records: int = Field(1000, ge=1, le=50_000, description="change events fanned out per Redis round trip")
    batch_within_seconds: float = Field(0.01, gt=0, le=5, description="and the longest wait to fill such a batch")
    poll_seconds: float = Field(0.02, gt=0, le=5, description="how often a dispatcher looks for webhooks with work")
    lease_seconds: float = Field(15.0, ge=1, description="a sender's claim on a webhook lapses this long after its owner died")
    session_timeout_ms: int = Field(15_000, ge=6_000, description="consumer-group session timeout (static member)")
    attempts_kept: int = Field(1000, ge=1, le=100_000, description="attempts listed per webhook, newest first")
    secret_rotation_grace_seconds: float = Field(
        86_400.0, ge=0, description="after a rotation, deliveries are signed with the old secret too for this long"
    )
    data_dir: str = Field(
        default_factory=lambda: f"{tempfile.gettempdir()}/cohort-delivery",
        description="faust's working directory (no state is kept there)",
    )

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("DELIVERY_SECRET_KEY must be base64") from None
        if len(raw) != 32:
            raise ValueError("DELIVERY_SECRET_KEY must be base64 of 32 bytes")
        return value

    @property
    def group(self) -> str:
        return self.group_id(SERVICE)

    @property
    def instance(self) -> str:
        """Static group member: INSTANCE_ID, else <hostname>-<port>."""
        return self.instance_id or f"{socket.gethostname()}-{self.port}"

    def key_bytes(self) -> bytes:
        return base64.b64decode(self.secret_key.get_secret_value())
