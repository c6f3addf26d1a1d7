"""Settings base: one frozen pydantic-settings class per service derives from `CommonSettings`.

The names docs/overview.md gives (`KAFKA_BOOTSTRAP_SERVERS`, `REDIS_URL`, `TOPIC_PREFIX`,
`ADMIN_TOKEN`) are read without a prefix; each service's own settings carry its prefix
(`INGEST_`, `IDENTITY_`, `SEGMENT_`). Secrets are `SecretStr` and never print.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .topics import Topics


def env(name: str) -> Any:
    """An exact environment name for a field, whatever the class's prefix."""
    return AliasChoices(name)


class CommonSettings(BaseSettings):
    """What every service reads: where Kafka and Redis are, topic naming, the operator token."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias=env("KAFKA_BOOTSTRAP_SERVERS"),
                                         description="comma-separated host:port list of Kafka brokers")
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias=env("REDIS_URL"),
        description="may carry a password, so it never prints",
    )
    redis_cluster: Literal["auto", "true", "false"] = Field(
        "auto", validation_alias=env("REDIS_CLUSTER"),
        description="whether REDIS_URL names a Redis Cluster; auto asks the server at start-up",
    )
    topic_prefix: str = Field("", validation_alias=env("TOPIC_PREFIX"),
                              description="prefixes every topic and consumer group, membership.changes included")
    topic_partitions: int = Field(12, ge=1, le=1000, validation_alias=env("TOPIC_PARTITIONS"),
                                  description="partitions of every topic the services create (the most instances a group can use)")
    topic_replication_factor: int | None = Field(
        None, ge=1, le=32, validation_alias=env("TOPIC_REPLICATION_FACTOR"),
        description="replicas of every topic the services create; unset: the cluster's broker count, at most 3",
    )
    topic_min_insync_replicas: int | None = Field(
        None, ge=1, le=32, validation_alias=env("TOPIC_MIN_INSYNC_REPLICAS"),
        description="min.insync.replicas of those topics; unset: replication factor - 1 (at least 1)",
    )
    redis_key_prefix: str = Field(
        "", validation_alias=env("REDIS_KEY_PREFIX"), description="namespaces every Redis key"
    )
    admin_token: SecretStr | None = Field(None, validation_alias=env("ADMIN_TOKEN"),
                                          description="Bearer token of every operator API; unset: they answer 401 to everyone")
    log_level: str = Field("INFO", validation_alias=env("LOG_LEVEL"), description="DEBUG, INFO, WARNING or ERROR")
    stream_max_restarts: int = Field(
        5, ge=0, le=1000, validation_alias=env("STREAM_MAX_RESTARTS"),
        description="times a stream processor rebuilds its clients within the window before the process exits",
    )
    stream_restart_window_seconds: float = Field(300.0, gt=0, validation_alias=env("STREAM_RESTART_WINDOW_SECONDS"),
                                                  description="the window STREAM_MAX_RESTARTS counts in")
    stream_failpoint: Literal["exit-after-redis-commit"] | None = Field(
        None, validation_alias=env("STREAM_FAILPOINT"),
        description="crash tests only: end the process right after a batch's Redis commit, before its Kafka "
                    "commit (the moment a crash is hardest to survive)",
    )
    instance_id: str | None = Field(
        None,
        validation_alias=env("INSTANCE_ID"),
        description="static consumer-group member and transactional ID; unset: <hostname>-<port>",
    )

    def group_id(self, service: str) -> str:
        """The consumer group of `service`, behind the topic prefix like every topic."""
        return f"{self.topic_prefix}{service}"

    @property
    def topics(self) -> Topics:
        return _topics(self.topic_prefix)

    def masked(self) -> dict[str, Any]:
        """Every setting, secrets shown as `**********`: what a service logs at start-up."""
        return {name: (str(value) if isinstance(value, SecretStr) else value) for name, value in self}


@cache
def _topics(prefix: str) -> Topics:
    """One `Topics` per prefix: asked for by every record a batch emits."""
    return Topics(prefix)
