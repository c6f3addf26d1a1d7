"""Thousands of generated bodies at both partner endpoints: never a 5xx, always a JSON message,
and every 202 accounts for each identifier it was sent (in-memory publisher: no broker)."""

import asyncio
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import PARTNER_KEY, make_harness

EXAMPLES = 2500  # each posts to both endpoints: 5,000 requests, ~20 s on 2 cores

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=12)
identifier = st.text(max_size=12) | st.sampled_from(["null", "anonymous", "", " ", "ü🙂", "x" * 513]) | any_json
times = st.datetimes().map(lambda d: d.isoformat()) | st.sampled_from(
    ["2009-12-31T23:59:59Z", "2010-01-01T00:00:00Z", "2026-01-21T19:20:30+05:00", "0001-01-01T00:00:00+05:00", "soon"]) | any_json
alias = st.fixed_dictionaries({"alias_name": identifier, "alias_label": identifier}) | any_json
entry = st.dictionaries(
    st.sampled_from(["user_ids", "device_ids", "aliases", "should_remove", "timestamp", "user_id", "extra"]),
    st.one_of(st.lists(identifier, max_size=5), st.lists(alias, max_size=3), st.booleans(), times, any_json),
    max_size=5,
) | st.fixed_dictionaries({"user_ids": st.lists(st.text(max_size=10), min_size=1, max_size=5)},
                          optional={"should_remove": st.booleans(), "timestamp": times})
cohort_id = st.text(min_size=1, max_size=30) | any_json


def shaped_body(secret: str):
    """Mostly well-keyed bodies, so generation reaches the field checks, with every field sometimes wrong."""
    key = st.just(PARTNER_KEY) | st.just(PARTNER_KEY) | any_json
    client_secret = st.just(secret) | st.just(secret) | any_json
    return st.fixed_dictionaries(
        {"partner_api_key": key, "client_secret": client_secret},
        optional={"cohort_id": cohort_id, "name": st.text(max_size=20) | any_json, "created_at": times,
                  "cohort_changes": st.lists(entry, max_size=6) | any_json, "other": any_json},
    )


def valid_body(secret: str):
    """Bodies valid for both endpoints (a name and changes), so 202s and their counts get exercised."""
    good_entry = st.fixed_dictionaries(
        {"user_ids": st.lists(st.text(max_size=10), min_size=1, max_size=5)},
        optional={"device_ids": st.lists(st.text(max_size=10), max_size=3),
                  "aliases": st.lists(st.fixed_dictionaries({"alias_name": st.text(max_size=8), "alias_label": st.text(max_size=8)}), max_size=2),
                  "should_remove": st.booleans(), "timestamp": st.datetimes().map(lambda d: d.isoformat()) | st.none()},
    )
    return st.fixed_dictionaries({
        "partner_api_key": st.just(PARTNER_KEY), "client_secret": st.just(secret),
        "cohort_id": st.text(min_size=1, max_size=30), "name": st.text(min_size=1, max_size=20).filter(str.strip),
        "created_at": st.datetimes().map(lambda d: d.isoformat()),
        "cohort_changes": st.lists(good_entry, min_size=1, max_size=5),
    })


def raw_bodies(secret: str):
    # json.dumps, not orjson: it also writes integers past 64 bits and Infinity for the server to refuse.
    as_json = (valid_body(secret) | shaped_body(secret) | any_json).map(lambda body: json.dumps(body).encode())
    odd = st.sampled_from([b'{"partner_api_key": "\\ud800"}', b"[" * 5000, b"1e400", b'{"a": 1, "a": 2}', b"\xef\xbb\xbf{}"])
    content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "",
                                     "application/x-www-form-urlencoded", "application/vnd.x+json", "multipart/form-data"])
    return st.tuples(as_json | odd | st.binary(max_size=200), content_types)


def identifiers_in(body) -> int | None:
    try:
        return sum(len(e.get(k, [])) for e in body["cohort_changes"] for k in ("user_ids", "device_ids", "aliases"))
    except Exception:  # noqa: BLE001 - not a countable body
        return None


@pytest.mark.slow
def test_no_generated_body_gets_a_5xx():
    loop = asyncio.new_event_loop()
    harness, client = loop.run_until_complete(make_harness(rate_limit=10**9))
    secret = loop.run_until_complete(harness.new_key())
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(raw_bodies(secret))
    def check(raw_and_type):
        raw, content_type = raw_and_type
        headers = {"content-type": content_type} if content_type else {}
        for path in ("/partners/mixpanel/cohorts", "/partners/mixpanel/cohorts/users"):
            harness.publisher.published.clear()
            response = loop.run_until_complete(client.post(path, content=raw, headers=headers))
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (path, raw[:300], response.text)
            answer = response.json()
            assert isinstance(answer.get("message"), str) and answer["message"]
            if response.status_code == 202 and path.endswith("/users"):
                sent = identifiers_in(orjson.loads(raw))
                assert answer["accepted"] + answer["dropped"]["pre_2010"] == sent
                changes = [m for t, m in harness.publisher.published if t.endswith("cohort.changes")]
                assert sum(len(m.changes) for m in changes) == answer["accepted"]

    try:
        check()
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    print(f"statuses over {sum(seen.values())} requests: {dict(sorted(seen.items()))}")
    # The generator must reach past the key checks, or the test proves little.
    assert seen.get(202, 0) > 100 and seen.get(400, 0) > 100 and seen.get(401, 0) > 100, seen
