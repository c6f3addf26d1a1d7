"""Generated bodies at every Braze REST route: never a 5xx, always a JSON `message`, and a
201's counts agree with what was published (in-memory adapters: no broker)."""

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import make_harness

EXAMPLES = 600  # each posts to all six routes: 3,600 requests

PATHS = ("/users/track", "/users/alias/new", "/users/identify", "/users/merge", "/users/delete", "/users/export/ids")
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                        max_leaves=10)
text = st.text(max_size=10) | st.sampled_from(["", "null", "x" * 513, "ü🙂"]) | any_json
alias = st.fixed_dictionaries({"alias_name": text, "alias_label": text}) | any_json
user = st.fixed_dictionaries({}, optional={"external_id": text, "user_alias": alias, "braze_id": text,
                                           "_update_existing_only": st.booleans() | any_json, "email": text,
                                           "plan": any_json})
event = user.flatmap(lambda u: st.fixed_dictionaries(
    {}, optional={"name": text, "time": st.sampled_from(["2026-01-01T00:00:00Z", "soon"]) | any_json,
                  "product_id": text, "currency": st.sampled_from(["EUR", "EURO"]) | any_json,
                  "price": st.floats(allow_nan=False) | any_json, "quantity": st.integers() | any_json,
                  "properties": any_json}).map(lambda extra: {**u, **extra}))
identifier = st.fixed_dictionaries({}, optional={"external_id": text, "user_alias": alias, "device_id": text}) | any_json
body = st.fixed_dictionaries({}, optional={
    "attributes": st.lists(user, max_size=4) | any_json,
    "events": st.lists(event, max_size=3) | any_json,
    "purchases": st.lists(event, max_size=3) | any_json,
    "user_aliases": st.lists(st.fixed_dictionaries({"alias_name": text, "alias_label": text},
                                                   optional={"external_id": text}), max_size=3) | alias,
    "aliases_to_identify": st.lists(st.fixed_dictionaries({"external_id": text, "user_alias": alias}), max_size=3) | any_json,
    "merge_updates": st.lists(st.fixed_dictionaries({"identifier_to_merge": identifier, "identifier_to_keep": identifier}),
                              max_size=3) | any_json,
    "external_ids": st.lists(text, max_size=4) | any_json, "braze_ids": st.lists(text, max_size=3) | any_json,
    "device_id": text, "braze_id": text, "email_address": text, "phone": text,
    "fields_to_export": st.lists(text, max_size=3) | any_json,
})
name = st.text(min_size=1, max_size=10)
valid_alias = st.fixed_dictionaries({"alias_name": name, "alias_label": name})
valid_body = st.fixed_dictionaries({
    # Valid at every route at once, so each such example reaches a 201 six times.
    "attributes": st.lists(st.fixed_dictionaries({"external_id": name}, optional={"plan": any_json}), min_size=1, max_size=3),
    "user_aliases": st.lists(valid_alias, min_size=1, max_size=3),
    "aliases_to_identify": st.lists(st.fixed_dictionaries({"external_id": name, "user_alias": valid_alias}),
                                    min_size=1, max_size=2),
    "merge_updates": st.just([{"identifier_to_merge": {"external_id": "a"}, "identifier_to_keep": {"external_id": "b"}}]),
    "external_ids": st.lists(name, min_size=1, max_size=3),
})
raw = (valid_body | body | any_json).map(lambda b: json.dumps(b).encode()) | st.binary(max_size=100)


@pytest.mark.slow
def test_no_generated_braze_body_gets_a_5xx():
    loop = asyncio.new_event_loop()
    harness, client = loop.run_until_complete(make_harness(rest_rate_limits="users.track=1000000/3600,"
                                                           "users.profiles=1000000/3600,"
                                                           "users.export.ids=1000000/3600"))
    key = loop.run_until_complete(harness.new_rest_key())
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(raw, st.sampled_from([key, key, key, "rak_unknown", ""]))
    def check(content, token):
        for path in PATHS:
            harness.publisher.published.clear()
            response = loop.run_until_complete(client.post(path, content=content, headers={"Authorization": f"Bearer {token}"}))
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (path, content[:300], response.text)
            answer = response.json()
            assert isinstance(answer.get("message"), str) and answer["message"]
            if response.status_code == 201 and path != "/users/export/ids":
                [(_, published)] = harness.publisher.published
                counted = sum(v for k, v in answer.items() if k.endswith("_processed") or k == "deleted")
                entries = sum(len(v) for v in published.model_dump().values() if isinstance(v, list))
                assert counted == entries or path == "/users/merge", (path, answer, published)

    try:
        check()
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    print(f"statuses over {sum(seen.values())} requests: {dict(sorted(seen.items()))}")
    assert seen.get(201, 0) > 100 and seen.get(400, 0) > 100 and seen.get(401, 0) > 100, seen
