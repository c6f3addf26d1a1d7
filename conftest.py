"""Fixtures for every test in the repo.

Integration and end-to-end tests need a real Kafka broker and Redis server: they take
`KAFKA_BOOTSTRAP_SERVERS` / `REDIS_URL` when set (`make test` sets them after starting the
local stack), else start testcontainers where a Docker engine answers, else fail saying how
to start them. Every test gets fresh topic names, consumer groups and Redis key prefixes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from cohort_shared.settings import CommonSettings
from cohort_shared.testing import forget_keys, forget_topics, unique

HOW_TO_START = (
    "needs a real Kafka broker and Redis server: run `make up` (or `make test`, which starts "
    "them), or set KAFKA_BOOTSTRAP_SERVERS and REDIS_URL"
)


def _docker_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # noqa: BLE001 - no engine, no containers
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    if not _docker_answers():
        pytest.fail(f"Kafka not configured: this test {HOW_TO_START}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if not _docker_answers():
        pytest.fail(f"Redis not configured: this test {HOW_TO_START}")
    from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7") as redis:
        yield f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"


@pytest.fixture
def stack_env(kafka_bootstrap: str, redis_url: str) -> dict[str, str]:
    """Environment for one test: the real broker and Redis, fresh topic and key prefixes."""
    test_id = unique("t")
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REDIS_URL": redis_url,
        "TOPIC_PREFIX": f"{test_id}.",
        "REDIS_KEY_PREFIX": f"{test_id}:",
        "TOPIC_PARTITIONS": "3",
        "ADMIN_TOKEN": "test-admin-token",
    }


@pytest.fixture
def common_settings(stack_env: dict[str, str]) -> CommonSettings:
    return CommonSettings(**{k: v for k, v in stack_env.items()})


@pytest.fixture
async def redis_client(common_settings: CommonSettings) -> AsyncIterator:
    """A Redis client; the test's keys are deleted afterwards."""
    from cohort_shared.state.client import connect_state

    client = connect_state(common_settings, socket_timeout=10)
    yield client
    await forget_keys(client, common_settings.redis_key_prefix)
    await client.aclose()


@pytest.fixture
async def kafka_topics(common_settings: CommonSettings) -> AsyncIterator[list[str]]:
    """Every topic (and DLQ) under the test's prefix, created, then deleted afterwards."""
    from cohort_shared.kafka import ensure_topics

    names = common_settings.topics.all()
    await ensure_topics(common_settings, names)
    yield names
    try:
        await forget_topics(common_settings.kafka_bootstrap_servers, common_settings.topic_prefix)
    except Exception:  # noqa: BLE001 - clean-up is best effort; the prefix is unique anyway
        pass
