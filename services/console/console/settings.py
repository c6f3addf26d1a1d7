"""Settings of the console, prefixed `CONSOLE_` (`ADMIN_TOKEN` and `KAFKA_BOOTSTRAP_SERVERS`
keep their common names: the console signs operators in with the one and follows
membership.changes on the other)."""

from __future__ import annotations

from cohort_shared.settings import CommonSettings, env
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

SERVICE = "console"


class ConsoleSettings(CommonSettings):
    """Where the console listens, where the operator APIs are, and its session rules."""

    model_config = SettingsConfigDict(
        env_prefix="CONSOLE_", frozen=True, extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    host: str = Field("0.0.0.0", description="interface to listen on")
    port: int = Field(8084, ge=1, le=65535)
    ingest_url: str = Field("http://127.0.0.1:8080", description="ingest's operator API")
    identity_url: str = Field("http://127.0.0.1:8081", description="identity-resolution's operator API")
    segment_url: str = Field("http://127.0.0.1:8082", description="segment-store's operator API")
    delivery_url: str = Field("http://127.0.0.1:8083", description="delivery's operator API (webhooks)")
    partners: str | None = Field(
        None, description="technology partners shown, comma-separated; unset: the names in PARTNER_API_KEYS"
    )
    partner_api_keys: SecretStr | None = Field(
        None, validation_alias=env("PARTNER_API_KEYS"),
        description="read for the partner names only; the keys are never used or shown",
    )
    default_workspace: str = Field("default", description="the workspace shown after sign-in")
    session_hours: float = Field(8.0, gt=0, le=24 * 7, description="a sign-in lasts this long")
    secure_cookie: bool = Field(False, description="mark the session cookie Secure (set it behind HTTPS)")
    upstream_timeout_seconds: float = Field(5.0, gt=0, description="longest wait for an operator API")
    max_feeds: int = Field(20, ge=1, description="live feeds (Kafka consumers) open at once")

    def partner_names(self) -> list[str]:
        """The configured technology partners, in the order given."""
        if self.partners is not None:
            raw = self.partners
        elif self.partner_api_keys is not None:
            raw = ",".join(entry.partition("=")[0] for entry in self.partner_api_keys.get_secret_value().split(","))
        else:
            raw = ""
        names = [name.strip().lower() for name in raw.split(",") if name.strip()]
        return list(dict.fromkeys(names))
