"""Settings of identity-resolution: the common ones plus its own, prefixed `IDENTITY_`."""

from __future__ import annotations

import socket

from cohort_shared.settings import CommonSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

SERVICE = "identity-resolution"


class IdentitySettings(CommonSettings):
    """Everything the service reads from the environment; frozen, secrets masked."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", frozen=True, extra="ignore", populate_by_name=True)

    host: str = Field("0.0.0.0", description="where the HTTP API listens")
    port: int = Field(8081, ge=1, le=65535, description="where the HTTP API listens")
    park_window_seconds: int = Field(
        86400, ge=1, description="how long an unknown identifier's change waits"
    )
    max_parked_per_workspace: int = Field(
        1_000_000, ge=0, description="parked changes a workspace may have; "
        "beyond it a change is unmatched parking_full"
    )
    # A cohort.changes record carries up to 1,000 identifiers: 50 records are up to 50,000
    # changes in one Kafka transaction, well inside its 30 s timeout.
    max_batch_records: int = Field(
        50, ge=1, le=10000, description="input records per Kafka transaction"
    )

    def member_id(self) -> str:
        """Static group member and transactional ID: INSTANCE_ID, else <hostname>-<port>."""
        return self.instance_id or f"{socket.gethostname()}-{self.port}"
