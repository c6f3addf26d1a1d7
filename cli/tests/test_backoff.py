from datetime import UTC, datetime

from cohort_cli.backoff import RetryPolicy, is_retryable, parse_retry_after

POLICY = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=4.0, max_retry_after=60.0)


def test_delays_double_up_to_the_cap_with_jitter_in_the_upper_half():
    assert [POLICY.delay(n, rand=lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [POLICY.delay(n, rand=lambda: 0.0) for n in range(1, 4)] == [0.25, 0.5, 1.0]


def test_retry_after_wins_when_longer_than_the_backoff():
    assert POLICY.delay(1, retry_after=7.0, rand=lambda: 1.0) == 7.0
    assert POLICY.delay(4, retry_after=1.0, rand=lambda: 1.0) == 4.0


def test_attempts_are_bounded_and_an_absurd_retry_after_gives_up():
    assert not POLICY.gives_up(4)
    assert POLICY.gives_up(5)
    assert POLICY.gives_up(1, retry_after=3600.0)


def test_retry_after_is_read_as_seconds_or_an_http_date():
    now = datetime(2026, 1, 21, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 21 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_only_server_errors_and_rate_limits_are_retried():
    assert all(is_retryable(s) for s in (429, 500, 502, 503, 504, 599))
    assert not any(is_retryable(s) for s in (400, 401, 403, 404, 409, 413))
