"""Settings of the ingest service: the common ones plus its own, prefixed `INGEST_`.

`PARTNER_API_KEYS` keeps the name docs/producer-api.md gives it (no prefix). It is a secret: it never
prints, and a malformed value is reported by partner name only.
"""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime

from cohort_shared.schemas import PARTNER_PATTERN
from cohort_shared.settings import CommonSettings, env
from pydantic import AwareDatetime, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from .domain.rate_limit import Limit
from .domain.rest_api_keys import parse_rate_limits

RETENTION_CUTOFF = datetime(2010, 1, 1, tzinfo=UTC)


class IngestSettings(CommonSettings):
    """Where ingest listens, its limits, and the partner keys it accepts."""

    # hide_input_in_errors: a malformed PARTNER_API_KEYS must not print its keys in the error.
    model_config = SettingsConfigDict(
        env_prefix="INGEST_", frozen=True, extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    host: str = Field("0.0.0.0", description="interface to listen on")
    port: int = Field(8080, ge=1, le=65535, description="where the HTTP API listens")
    public_url: str | None = Field(
        None, description="base URL producers call, returned as rest_endpoint; unset: http://127.0.0.1:<port>"
    )
    retention_cutoff: AwareDatetime = Field(RETENTION_CUTOFF, description="changes stamped earlier are dropped")
    rate_limit_per_hour: int = Field(250_000, ge=1, description="requests per data import key per hour")
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="larger request bodies get a 413")
    publish_timeout_seconds: float = Field(5.0, gt=0, description="longest wait for Kafka's ack before a 503")
    rest_rate_limits: str = Field(
        "", description="Braze REST API limits per workspace, overriding the defaults Braze documents: "
                        "<group>=<requests>/<seconds>,… (groups users.track, users.profiles, users.export.ids)")
    export_batch_records: int = Field(
        500, ge=1, le=10000, description="records of the export view's inputs applied per Kafka transaction")
    segment_store_url: str = Field(
        "http://127.0.0.1:8082", description="segment-store's operator API, where /users/export/ids reads each "
                                             "user's cohorts (with ADMIN_TOKEN)")
    segment_store_timeout_seconds: float = Field(
        5.0, gt=0, description="longest wait for segment-store's answer before an export gets a 503")
    partner_api_keys: SecretStr | None = Field(
        None, validation_alias=env("PARTNER_API_KEYS"), description="mixpanel=<key>,amplitude=<key>"
    )

    @field_validator("rest_rate_limits")
    @classmethod
    def _rest_rate_limits_parse(cls, value: str) -> str:
        parse_rate_limits(value)
        return value

    def rest_limits(self) -> dict[str, Limit]:
        """Each Braze REST budget group's limit per workspace."""
        return {group: Limit(n, seconds) for group, (n, seconds) in parse_rate_limits(self.rest_rate_limits).items()}

    def member_id(self) -> str:
        """The export view's static group member and transactional ID: INSTANCE_ID, else <hostname>-<port>."""
        return self.instance_id or f"{socket.gethostname()}-{self.port}"

    @field_validator("partner_api_keys")
    @classmethod
    def _partner_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_partner_keys(value.get_secret_value())
        return value

    def partner_keys(self) -> dict[str, SecretStr]:
        """Each configured partner's key; no partners (every partner call refused) when unset."""
        if self.partner_api_keys is None:
            return {}
        return parse_partner_keys(self.partner_api_keys.get_secret_value())

    @property
    def rest_endpoint(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")


def parse_partner_keys(raw: str) -> dict[str, SecretStr]:
    """`mixpanel=<key>,amplitude=<key>` → {partner: key}. Errors name the entry, never the key."""
    keys: dict[str, SecretStr] = {}
    for position, entry in enumerate(part.strip() for part in raw.split(",")):
        if not entry:
            continue
        partner, sep, key = entry.partition("=")
        partner, key = partner.strip(), key.strip()
        if not sep or not key:
            raise ValueError(f"PARTNER_API_KEYS entry {position + 1} must be <partner>=<key>")
        if not re.fullmatch(PARTNER_PATTERN, partner):
            raise ValueError(f"PARTNER_API_KEYS entry {position + 1}: partner name must match {PARTNER_PATTERN}")
        if partner in keys:
            raise ValueError(f"PARTNER_API_KEYS names {partner} twice")
        keys[partner] = SecretStr(key)
    return keys
