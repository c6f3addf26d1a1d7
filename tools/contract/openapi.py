"""Each service's OpenAPI document as its app serves it at /openapi.json, built without
starting the app (no Kafka or Redis is contacted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Settings that only let the apps be built; none of them appears in a document.
_BUILD_ONLY = {"kafka_bootstrap_servers": "127.0.0.1:9", "redis_url": "redis://127.0.0.1:9/0", "redis_cluster": "false"}


def _ingest() -> dict[str, Any]:
    from ingest.app import create_app
    from ingest.settings import IngestSettings

    return create_app(IngestSettings(**_BUILD_ONLY)).openapi()


def _identity_resolution() -> dict[str, Any]:
    from identity_resolution.app import create_app
    from identity_resolution.settings import IdentitySettings

    return create_app(IdentitySettings(**_BUILD_ONLY)).openapi()


def _segment_store() -> dict[str, Any]:
    from segment_store.app import create_app
    from segment_store.settings import SegmentSettings

    return create_app(SegmentSettings(**_BUILD_ONLY)).openapi()


def _delivery() -> dict[str, Any]:
    from delivery.app import create_app
    from delivery.settings import DeliverySettings

    # Only to build the app: 32 zero bytes, never a deployment's key.
    return create_app(DeliverySettings(**_BUILD_ONLY, secret_key="A" * 43 + "=")).openapi()


SERVICES: dict[str, Callable[[], dict[str, Any]]] = {
    "ingest": _ingest,
    "identity-resolution": _identity_resolution,
    "segment-store": _segment_store,
    "delivery": _delivery,
}


def openapi_documents() -> dict[str, dict[str, Any]]:
    """`docs/api/<service>.openapi.json` → the document the service serves."""
    return {f"api/{name}.openapi.json": build() for name, build in SERVICES.items()}
