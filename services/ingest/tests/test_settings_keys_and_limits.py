"""Settings, the data import key rules, the rate-limit window, and FastAPI's own validation errors."""

from datetime import UTC, datetime

import pytest
from ingest.adapters.key_store import InMemoryKeyStore
from ingest.adapters.rate_limiter import InMemoryRateLimiter
from ingest.domain.rate_limit import current_window
from ingest.domain.workspace_keys import KeyOwner, issue_key, key_hash, masked, plausible_client_secret
from ingest.settings import IngestSettings, parse_partner_keys
from pydantic import ValidationError

from .conftest import make_harness, make_settings


def test_partner_keys_parse_and_never_print():
    settings = make_settings(partner_api_keys=" mixpanel = k1 , amplitude=k2,")
    assert {p: k.get_secret_value() for p, k in settings.partner_keys().items()} == {"mixpanel": "k1", "amplitude": "k2"}
    shown = str(settings.masked()) + repr(settings)
    assert "k1" not in shown and "unit-admin-token" not in shown


@pytest.mark.parametrize("raw", ["mixpanel", "mixpanel=", "Mix Panel=secretkey", "mixpanel=a,mixpanel=b"])
def test_malformed_partner_keys_fail_at_start_without_showing_a_key(raw):
    with pytest.raises(ValidationError) as caught:
        make_settings(partner_api_keys=raw)
    assert "secretkey" not in str(caught.value)


def test_defaults(monkeypatch):
    for name in ("INGEST_PORT", "INGEST_RETENTION_CUTOFF", "INGEST_RATE_LIMIT_PER_HOUR", "INGEST_MAX_BODY_BYTES",
                 "PARTNER_API_KEYS", "INGEST_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = IngestSettings()
    assert settings.port == 8080 and settings.rate_limit_per_hour == 250_000
    assert settings.max_body_bytes == 2 * 1024 * 1024
    assert settings.retention_cutoff == datetime(2010, 1, 1, tzinfo=UTC)
    assert settings.partner_keys() == {} and settings.rest_endpoint == "http://127.0.0.1:8080"


def test_environment_names(monkeypatch):
    monkeypatch.setenv("INGEST_PORT", "9090")
    monkeypatch.setenv("INGEST_RETENTION_CUTOFF", "2015-06-01T00:00:00Z")
    monkeypatch.setenv("INGEST_RATE_LIMIT_PER_HOUR", "10")
    monkeypatch.setenv("PARTNER_API_KEYS", "heap=h1")
    settings = IngestSettings()
    assert (settings.port, settings.rate_limit_per_hour, settings.rest_endpoint) == (9090, 10, "http://127.0.0.1:9090")
    assert settings.retention_cutoff == datetime(2015, 6, 1, tzinfo=UTC)
    assert list(settings.partner_keys()) == ["heap"]
    assert parse_partner_keys("") == {}


def test_issued_keys_are_random_and_kept_only_as_hash_and_mask():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first, second = issue_key(now), issue_key(now)
    assert first.secret != second.secret and first.key_id != second.key_id
    record = first.record
    assert record.key_hash == key_hash(first.secret) and len(record.key_hash) == 64
    assert first.secret not in repr(record)
    assert record.masked == masked(first.secret) and len(record.masked) == 13


def test_only_plausible_client_secrets_are_looked_up():
    assert plausible_client_secret("dik_x")
    assert not any(plausible_client_secret(v) for v in ("", None, 5, ["a"], "x" * 257))


async def test_in_memory_key_store_round_trip():
    store, issued = InMemoryKeyStore(), issue_key(datetime(2026, 1, 1, tzinfo=UTC))
    await store.add("acme", issued.record)
    assert await store.owner_of(issued.secret) == KeyOwner("acme", issued.key_id)
    assert await store.delete("acme", issued.key_id) and await store.owner_of(issued.secret) is None


def test_windows_are_hours_and_retry_after_counts_to_the_next():
    assert current_window(7200.0).window_id == 2 and current_window(7200.0).seconds_left == 3600
    assert current_window(10799.5).seconds_left == 1
    assert current_window(9000).seconds_left == 1800


async def test_a_new_hour_resets_the_count():
    now = [3599.0]
    limiter, owner = InMemoryRateLimiter(1, clock=lambda: now[0]), KeyOwner("acme", "k")
    assert await limiter.retry_after(owner) is None
    assert await limiter.retry_after(owner) == 1
    now[0] = 3600.0
    assert await limiter.retry_after(owner) is None


async def test_fastapi_validation_errors_come_back_as_400_messages():
    harness, client = await make_harness()
    app = client._transport.app

    @app.get("/probe")
    async def probe(n: int) -> dict:
        return {"n": n}

    async with client:
        response = await client.get("/probe", params={"n": "seven"})
        assert (response.status_code, response.json()) == (400, {"message": "n must be an integer"})
        response = await client.get("/probe")
        assert (response.status_code, response.json()) == (400, {"message": "n is required"})
