"""Settings of segment-store: the common ones plus its own, prefixed `SEGMENT_`."""

from __future__ import annotations

import socket

from cohort_shared.settings import CommonSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

SERVICE = "segment-store"


class SegmentSettings(CommonSettings):
    """Where segment-store listens and how it consumes."""

    model_config = SettingsConfigDict(env_prefix="SEGMENT_", frozen=True, extra="ignore", populate_by_name=True)

    host: str = Field("0.0.0.0", description="interface to listen on")
    port: int = Field(8082, ge=1, le=65535, description="where the HTTP API listens")
    batch_max_records: int = Field(2000, ge=1, le=50_000, description="records applied per Kafka transaction, at most")
    batch_max_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024, description="and at most this many bytes of them")
    session_timeout_ms: int = Field(15_000, ge=6_000, description="consumer-group session timeout (static member)")
    segment_buckets_per_call: int = Field(
        1024, ge=1, description="member buckets one segment-evaluation script visits before yielding to other clients"
    )

    @property
    def group(self) -> str:
        return self.group_id(SERVICE)

    @property
    def instance(self) -> str:
        """Static group member and transactional ID: INSTANCE_ID, else <hostname>-<port>."""
        return self.instance_id or f"{socket.gethostname()}-{self.port}"
