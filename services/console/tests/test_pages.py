"""The console app over HTTP, on fake services: the guard on every route, CSRF, sign-in, and
pages that degrade to "not available" when an optional API is missing."""

import re

import httpx
import pytest
from console.entrypoints import activity, auth, cohorts, partners, segments, users
from console.settings import ConsoleSettings

from .conftest import TOKEN, form_token

PARAMS = {"ws": "acme", "partner": "mixpanel", "cohort_id": "mp_1", "key_id": "k1", "segment_id": "s1",
          "user_ref": "external_id:u1"}
GUARDED = [(method, re.sub(r"\{(\w+)(?::path)?\}", lambda m: PARAMS[m.group(1)], route.path))
           for router in (auth.signed_in, partners.router, cohorts.router, segments.router, users.router, activity.router)
           for route in router.routes for method in route.methods if method != "HEAD"]


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_every_route_but_sign_in_refuses_without_a_session(client, services, method, path):
    page = await client.request(method, path, headers={"accept": "text/html"})
    assert (page.status_code, page.headers.get("location")) in ((303, "/signin"), (401, None))
    fragment = await client.request(method, path, headers={"hx-request": "true"})
    assert fragment.status_code == 401
    assert services.calls == []  # nothing was asked of the services


async def test_a_wrong_token_is_refused_alike_whatever_it_is(client, sign_in):
    answers = [await sign_in(token) for token in ("", "wrong", TOKEN[:-1], TOKEN + "x")]
    assert {a.status_code for a in answers} == {401}
    bodies = {re.sub(r'value="[^"]+"', "", a.text) for a in answers}
    assert len(bodies) == 1 and "Sign-in failed." in bodies.pop()
    assert all("console_session" not in a.cookies for a in answers)


async def test_signing_in_sets_a_strict_http_only_cookie(sign_in):
    answer = await sign_in()
    assert (answer.status_code, answer.headers["location"]) == (303, "/w/acme/partners")
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("console_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


async def test_no_admin_token_configured_lets_nobody_sign_in(services):
    from console.app import create_app

    from .conftest import make_settings

    app = create_app(make_settings(admin_token=None), api=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as c:
        assert (await c.get("/signin")).status_code == 200
        for token in ("", "anything"):
            answer = await c.post("/signin", data={"token": token, "csrf_token": ""})
            assert answer.status_code == 401 and "console_session" not in answer.cookies


async def test_forms_need_their_csrf_token(client, services, sign_in):
    await sign_in()
    page = await client.get("/w/acme/partners/mixpanel")
    token = form_token(page.text)
    for data, headers in (({}, {}), ({"csrf_token": "forged"}, {}), ({"csrf_token": token}, {"origin": "https://evil"}),
                          ({"csrf_token": token}, {"origin": "null"})):
        refused = await client.post("/w/acme/partners/mixpanel/keys", data=data, headers=headers)
        assert refused.status_code == 403
    assert ("ingest", "POST", "/workspaces/acme/data-import-keys") not in services.calls
    behind_tls = await client.post("/w/acme/partners/mixpanel/keys", data={"csrf_token": token},
                                   headers={"origin": "https://console"})  # a proxy ends TLS before us
    assert behind_tls.status_code == 201
    created = await client.post("/w/acme/partners/mixpanel/keys", data={"csrf_token": token},
                                headers={"origin": "http://console"})
    assert created.status_code == 201
    assert "dik_secret_value" in created.text and "https://ingest.example" in created.text
    assert created.headers["cache-control"] == "no-store"


async def test_sign_out_ends_the_session_in_the_browser(client, sign_in):
    await sign_in()
    token = form_token((await client.get("/w/acme/usage")).text)
    out = await client.post("/signout", data={"csrf_token": token})
    assert out.status_code == 303 and 'console_session=""' in out.headers["set-cookie"]
    client.cookies.clear()
    assert (await client.get("/w/acme/usage")).status_code == 401


async def test_optional_apis_not_there_are_shown_as_not_available(client, services, sign_in):
    await sign_in()
    services.unreachable.add("delivery")
    webhooks = await client.get("/w/acme/webhooks")
    assert webhooks.status_code == 200 and "Not available" in webhooks.text
    rest = await client.get("/w/acme/rest-api-keys")  # ingest answers 404: no such API there
    assert rest.status_code == 200 and "Not available" in rest.text


async def test_optional_apis_are_shown_once_they_answer(client, services, sign_in):
    await sign_in()
    services.routes[("delivery", "GET", "/workspaces/acme/webhooks")] = {"webhooks": [
        {"webhook_id": "h1", "url": "https://hooks.example/x", "description": None, "filter": {}, "status": "active",
         "delivered": 7, "pending": 2, "failed": 1, "last_error": "HTTP 500"}], "next_cursor": None}
    services.routes[("ingest", "GET", "/workspaces/acme/rest-api-keys")] = {"keys": [
        {"key_id": "r1", "masked": "rak_…wxyz", "name": "backend", "permissions": ["users.track"],
         "created_at": "2026-11-29T20:00:00Z", "last_used_at": None}], "next_cursor": None}
    webhooks = (await client.get("/w/acme/webhooks")).text
    assert "https://hooks.example/x" in webhooks and "HTTP 500" in webhooks and "Not available" not in webhooks
    rest = (await client.get("/w/acme/rest-api-keys")).text
    assert "rak_…wxyz" in rest and "backend" in rest and "Not available" not in rest


async def test_an_unreachable_core_service_is_a_page_saying_so(client, services, sign_in):
    await sign_in()
    services.unreachable.add("segment")
    answer = await client.get("/w/acme/cohorts")
    assert answer.status_code == 502 and "segment-store is not answering" in answer.text


async def test_the_builder_sizes_the_filter_without_saving(client, services, sign_in):
    await sign_in()
    token = form_token((await client.get("/w/acme/segments/new")).text)
    answer = await client.post("/w/acme/segments/builder", headers={"hx-request": "true", "x-csrf-token": token},
                               data={"name": "x", "combine": "all", "mode": "includes", "cohort": "mixpanel/mp_1"})
    assert answer.status_code == 200 and 'data-size="3"' in answer.text
    assert ("segment", "POST", "/workspaces/acme/segments") not in services.calls


async def test_usage_draws_the_hours_it_is_given(client, services, sign_in):
    await sign_in()
    page = await client.get("/w/acme/usage")
    assert page.status_code == 200 and 'data-points="42"' in page.text and "<rect" in page.text


async def test_a_bad_workspace_name_is_refused_before_any_call(client, services, sign_in):
    await sign_in()
    answer = await client.get("/w/bad%20name/cohorts")
    assert answer.status_code == 400 and services.calls == []


async def test_pages_carry_security_headers(client, sign_in):
    page = await client.get("/signin")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


async def test_the_feed_streams_the_workspaces_changes(client, feed, sign_in):
    await sign_in()
    feed.events += [{"workspace_id": "acme", "user_id": "u", "change": "added"},
                    {"workspace_id": "other", "user_id": "v", "change": "added"}]
    async with client.stream("GET", "/w/acme/feed/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = b"".join([chunk async for chunk in stream.aiter_bytes()])
    assert b"event: ready" in body and b'"user_id":"u"' in body and b'"user_id":"v"' not in body


def test_partners_come_from_the_setting_or_the_partner_key_names():
    assert ConsoleSettings(partner_api_keys="mixpanel=a, Amplitude=b").partner_names() == ["mixpanel", "amplitude"]
    assert ConsoleSettings(partners="heap,census", partner_api_keys="mixpanel=a").partner_names() == ["heap", "census"]
    assert ConsoleSettings().partner_names() == []
