"""The pure rules of delivery, driven with plain values."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cohort_shared.schemas import MembershipChanged
from cryptography.exceptions import InvalidTag
from delivery.domain.attempts import judge
from delivery.domain.errors import InvalidRequest
from delivery.domain.filters import WebhookFilter
from delivery.domain.queue import QueuedEvent, next_due, sendable
from delivery.domain.retry import CircuitBreaker, RetryPolicy
from delivery.domain.secret_box import SecretBox
from delivery.domain.signing import Signer, body_of, new_secret
from delivery.domain.urls import check_url, is_refused_address
from delivery.domain.webhooks import CreateWebhookBody
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

EVENT = {"event_id": "e1", "workspace_id": "ws", "partner": "mixpanel", "cohort_id": "churn", "user_id": "u1",
         "external_id": "x1", "change": "added", "cause": "cohort_import", "occurred_at": "2026-11-29T10:00:00+00:00"}


def q(event_id: str, user: str, next_at: float = 0.0) -> QueuedEvent:
    return QueuedEvent(event_id, user, {**EVENT, "event_id": event_id, "user_id": user}, next_attempt_at=next_at)


def test_filter_fields_left_out_match_everything_and_given_ones_must_all_match():
    event = MembershipChanged.model_validate(EVENT)
    assert WebhookFilter().matches(event)
    assert WebhookFilter(partners=["mixpanel"], cohort_ids=["churn"], changes=["added"]).matches(event)
    assert not WebhookFilter(partners=["amplitude"]).matches(event)
    assert not WebhookFilter(cohort_ids=["power"]).matches(event)
    assert not WebhookFilter(changes=["removed"]).matches(event)


def test_only_the_first_queued_event_of_each_user_may_be_sent():
    window = [q("a1", "a"), q("a2", "a"), q("b1", "b"), q("c1", "c", next_at=50.0), q("c2", "c"), q("d1", "d")]
    assert [e.event_id for e in sendable(window, in_flight=[], now=10.0, limit=10)] == ["a1", "b1", "d1"]
    # a1 in flight still holds a2 back; c1 waiting for its retry holds c2 back.
    assert [e.event_id for e in sendable(window, in_flight=["a1"], now=10.0, limit=10)] == ["b1", "d1"]
    assert [e.event_id for e in sendable(window, in_flight=[], now=60.0, limit=2)] == ["a1", "b1"]
    assert next_due(window, in_flight=["a1", "b1", "d1"]) == 50.0
    assert next_due([], in_flight=[]) is None


def test_back_off_doubles_with_jitter_up_to_its_cap_and_gives_up_after_the_period():
    policy = RetryPolicy(base_seconds=1, max_delay_seconds=60, max_age_seconds=86_400)
    assert [policy.delay(n, draw=lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert [policy.delay(n, draw=lambda: 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert policy.delay(30, draw=lambda: 1.0) == 60
    assert not policy.gives_up(first_attempt_at=0, now=86_399)
    assert policy.gives_up(first_attempt_at=0, now=86_400)


def test_a_2xx_delivers_anything_else_retries_until_the_period_ends():
    policy = RetryPolicy(base_seconds=1, max_delay_seconds=60, max_age_seconds=100)
    assert judge(q("e", "u"), status_code=204, error=None, at=5, duration_ms=1, policy=policy).result == "delivered"
    retried = judge(q("e", "u"), status_code=500, error=None, at=5, duration_ms=1, policy=policy)
    assert (retried.result, retried.error, retried.queued.attempts, retried.queued.first_attempt_at) == (
        "retrying", "HTTP 500", 1, 5)
    assert 5.5 <= retried.queued.next_attempt_at <= 6
    timeout = judge(retried.queued, status_code=None, error="no answer within 10 s", at=104, duration_ms=1e4,
                    policy=policy)
    assert (timeout.result, timeout.error) == ("retrying", "no answer within 10 s")
    assert judge(retried.queued, status_code=302, error=None, at=105, duration_ms=1, policy=policy).result == "failed"


def test_the_breaker_opens_after_consecutive_failures_and_lets_one_probe_through_after_cooldown():
    breaker = CircuitBreaker(threshold=3, cooldown=10)
    for now in (1, 2):
        breaker.record(False, now)
    assert breaker.allowed_in_flight(2, 64) == 64
    breaker.record(False, 3)
    assert breaker.allowed_in_flight(5, 64) == 0
    assert breaker.allowed_in_flight(13, 64) == 1
    breaker.record(True, 14)
    assert breaker.allowed_in_flight(14, 64) == 64


def test_deliveries_verify_with_the_standardwebhooks_package_under_each_secret_in_use():
    current, previous = new_secret(), new_secret()
    body = body_of(EVENT)
    now = datetime.now(UTC)
    headers = Signer(current, previous).headers("e1", body, now)
    assert headers["webhook-id"] == "e1" and headers["webhook-timestamp"] == str(int(now.timestamp()))
    for secret in (current, previous):
        assert Webhook(secret).verify(body, headers) == {"type": "membership.changed",
                                                        "timestamp": EVENT["occurred_at"], "data": EVENT}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    stale = Signer(current).headers("e1", body, now - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError):
        Webhook(current).verify(body, stale)


def test_sealed_secrets_do_not_show_the_secret_and_open_only_for_their_webhook():
    box = SecretBox(b"k" * 32)
    secret = new_secret()
    sealed = box.seal(secret, "wh_1")
    assert secret not in sealed and secret[6:] not in base64.b64decode(sealed).decode(errors="replace")
    assert box.open(sealed, "wh_1") == secret
    with pytest.raises(InvalidTag):
        box.open(sealed, "wh_2")
    with pytest.raises(InvalidTag):
        SecretBox(b"x" * 32).open(sealed, "wh_1")


@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/hook", "url must use http or https"),
    ("https:///nohost", "url must name a host"),
    ("https://example.com:99999/", "url must be a valid URL"),
    ("", "url must be an http or https URL of at most 2048 characters"),
    (42, "url must be an http or https URL of at most 2048 characters"),
])
def test_urls_are_http_or_https_with_a_host(url, message):
    with pytest.raises(InvalidRequest) as refused:
        check_url(url)
    assert refused.value.message == message


@pytest.mark.parametrize("url", ["http://127.0.0.1:44089/hook", "https://[::1]:8443/x", "https://a.example:65535",
                                 "http://hooks.example.com/path?x=1#y"])
def test_the_documented_url_pattern_and_the_check_agree_on_valid_urls(url):
    """What the OpenAPI document's pattern allows, the check accepts (a 5-digit port too)."""
    assert CreateWebhookBody(url=url).url == check_url(url)


@pytest.mark.parametrize("url", ["https://a.example:65536", "ftp://a.example", "https://", "https://a b.example"])
def test_the_documented_url_pattern_refuses_what_the_check_refuses(url):
    with pytest.raises(ValidationError):
        CreateWebhookBody(url=url)
    with pytest.raises(InvalidRequest):
        check_url(url)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "0.0.0.0"])
def test_loopback_link_local_and_private_addresses_are_refused_unless_allowed(address):
    assert is_refused_address(address, allow_private=False)
    assert is_refused_address(address, allow_private=True) == (address == "0.0.0.0")


def test_public_addresses_are_allowed():
    assert not is_refused_address("93.184.216.34", allow_private=False)
    assert not is_refused_address("2606:2800:220:1::1", allow_private=False)
    assert is_refused_address("224.0.0.1", allow_private=True)
