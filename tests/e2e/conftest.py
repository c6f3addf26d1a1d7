"""The three services as separate processes on the real Kafka and Redis, for end-to-end tests.

Each test module gets its own topic prefix, Redis key prefix and free ports, so modules never
see each other's data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cohort_shared.testing import ServiceProcesses, unique


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory) -> Iterator[ServiceProcesses]:
    test_id = unique("e")
    services = ServiceProcesses.configure(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "REDIS_URL": redis_url,
            "TOPIC_PREFIX": f"{test_id}.",
            "REDIS_KEY_PREFIX": f"{test_id}:",
            "TOPIC_PARTITIONS": "3",
            "IDENTITY_PARK_WINDOW_SECONDS": "3600",
        },
        tmp_path_factory.mktemp("e2e-logs"),
    )
    try:
        services.start_all()
        yield services
    finally:
        services.stop_all()
