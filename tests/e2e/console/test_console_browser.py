"""The operator console end to end, in Debian's chromium: sign-in, keys, a CLI sync watched in
the browser, the segment builder against the API, user lookup, invalidation, the live feed;
and, over plain HTTP, that every page needs a session and every form its CSRF token."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import httpx
import pytest
from console.entrypoints import activity, auth, cohorts, partners, segments, users
from playwright.sync_api import expect

from .conftest import doc_image

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
SAMPLE_PARAMS = {"ws": "acme", "partner": "mixpanel", "cohort_id": "c1", "key_id": "k1", "segment_id": "s1",
                 "user_ref": "external_id:u1"}


def partner_keys(stack) -> dict[str, str]:
    """The partner keys the stack's ingest was given (the environment's, if it named some)."""
    return dict(entry.split("=", 1) for entry in stack.env["PARTNER_API_KEYS"].split(","))


def fresh_workspace() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


def sign_in(page, token: str) -> None:
    page.goto("/signin")
    page.get_by_label("Operator token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def settled(page) -> None:
    """Until htmx has swapped and settled what it just received: it attaches the new content's
    triggers while settling, and a change made before that sends nothing (a person is never
    that fast; a test is)."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")


def wait_until(probe, until, timeout: float = 30.0):
    """Poll an HTTP probe until `until(answer)` holds (the services apply changes asynchronously)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if until(answer):
            return answer
        assert time.monotonic() < deadline, f"not within {timeout} s: {answer}"
        time.sleep(0.1)


class Workspace:
    """A workspace set up through the operator and partner APIs."""

    def __init__(self, stack, admin: httpx.Client, ws: str) -> None:
        self.stack, self.admin, self.ws = stack, admin, ws
        self.key = ""

    def url(self, service: str, path: str) -> str:
        return f"{self.stack.urls[service]}/workspaces/{self.ws}{path}"

    def new_key(self) -> dict:
        created = self.admin.post(self.url("ingest", "/data-import-keys"))
        assert created.status_code == 201, created.text
        self.key = created.json()["data_import_key"]
        return created.json()

    def track(self, *external_ids: str) -> None:
        answer = self.admin.post(self.url("ingest", "/users/track"),
                                 json={"attributes": [{"external_id": e} for e in external_ids]})
        assert answer.status_code == 202, answer.text
        for external_id in external_ids:
            wait_until(lambda e=external_id: self.admin.get(self.url("identity_resolution", f"/identities/external_id:{e}")),
                       lambda a: a.status_code == 200)

    def partner(self, path: str, body: dict, key: str | None = None) -> httpx.Response:
        keys = {"partner_api_key": partner_keys(self.stack)["mixpanel"],
                "client_secret": self.key if key is None else key}
        return httpx.post(f"{self.stack.urls['ingest']}/partners/mixpanel{path}", json={**keys, **body}, timeout=30)

    def cohort(self, cohort_id: str, name: str, members: list[str]) -> None:
        named = self.partner("/cohorts", {"cohort_id": cohort_id, "name": name,
                                          "created_at": "2026-01-21T19:20:30+05:00"})
        assert named.status_code == 202, named.text
        added = self.partner("/cohorts/users", {"cohort_id": cohort_id, "cohort_changes": [{"user_ids": members}]})
        assert added.status_code == 202, added.text
        wait_until(lambda: self.admin.get(self.url("segment_store", f"/cohorts/{cohort_id}")),
                   lambda a: a.status_code == 200 and a.json()["member_count"] == len(members))


@pytest.fixture(scope="module")
def populated(stack) -> Workspace:
    """u0…u9 exist; "Churn risk" holds u0…u5 and "VIP" u4…u7."""
    with httpx.Client(headers=stack.admin, timeout=30) as admin:
        w = Workspace(stack, admin, fresh_workspace())
        w.new_key()
        w.track(*(f"u{i}" for i in range(10)))
        w.cohort("mp_churn", "Churn risk", [f"u{i}" for i in range(6)])
        w.cohort("mp_vip", "VIP", [f"u{i}" for i in range(4, 8)])
    w.admin = None  # type: ignore[assignment]
    return w


@pytest.fixture
def signed_in(page, stack):
    sign_in(page, stack.env["ADMIN_TOKEN"])
    expect(page).to_have_url(re.compile(r"/w/default/partners$"))
    return page


def guarded_routes() -> list[tuple[str, str]]:
    routes = []
    for router in (auth.signed_in, partners.router, cohorts.router, segments.router, users.router, activity.router):
        for route in router.routes:
            path = re.sub(r"\{(\w+)(?::path)?\}", lambda m: SAMPLE_PARAMS[m.group(1)], route.path)
            routes += [(method, path) for method in route.methods if method != "HEAD"]
    return routes


def test_every_page_refuses_an_unauthenticated_request(console_url):
    routes = guarded_routes()
    assert len(routes) >= 25
    with httpx.Client(base_url=console_url, follow_redirects=False) as client:
        forged = {"console_session": "abc.9999999999.forged"}
        for method, path in routes:
            for headers, cookies in (({"accept": "text/html"}, {}), ({}, {}), ({"hx-request": "true"}, forged)):
                client.cookies.clear()
                for name, value in cookies.items():
                    client.cookies.set(name, value)
                answer = client.request(method, path, headers=headers, data={"ws": "x"})
                if answer.status_code == 303:
                    assert answer.headers["location"] == "/signin", (method, path)
                else:
                    assert answer.status_code == 401, (method, path, answer.status_code)
                assert "acme" not in answer.text


def session_client(console_url: str, token: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=console_url, follow_redirects=False)
    form = client.get("/signin")
    signin_token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    assert client.post("/signin", data={"token": token, "csrf_token": signin_token}).status_code == 303
    page = client.get("/w/acme/partners/mixpanel")
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_a_form_posted_without_its_csrf_token_is_refused(console_url, stack, admin):
    ws = fresh_workspace()
    client, token = session_client(console_url, stack.env["ADMIN_TOKEN"])
    other, other_token = session_client(console_url, stack.env["ADMIN_TOKEN"])
    generate = f"/w/{ws}/partners/mixpanel/keys"
    try:
        assert client.post(generate, data={}).status_code == 403
        altered = ("y" if token[0] == "x" else "x") + token[1:]  # one character off, never the token itself
        assert client.post(generate, data={"csrf_token": altered}).status_code == 403
        assert client.post(generate, data={"csrf_token": other_token}).status_code == 403  # another session's
        assert client.post(generate, data={"csrf_token": token}, headers={"origin": "https://evil.example"}).status_code == 403
        assert client.post("/signout", data={}).status_code == 403
        keys = admin.get(f"{stack.urls['ingest']}/workspaces/{ws}/data-import-keys").json()["keys"]
        assert keys == []  # nothing refused had any effect
        assert client.post(generate, data={"csrf_token": token}).status_code == 201
        assert client.post(generate, headers={"x-csrf-token": token}).status_code == 201  # as htmx sends it
        # sign-in itself: without the token of its form, even the right admin token is refused
        fresh = httpx.Client(base_url=console_url, follow_redirects=False)
        with fresh:
            refused = fresh.post("/signin", data={"token": stack.env["ADMIN_TOKEN"]})
            assert refused.status_code == 401 and "console_session" not in refused.cookies
    finally:
        client.close()
        other.close()


def test_sign_in_refuses_a_wrong_token_and_signs_out(page, stack):
    sign_in(page, "not-the-token")
    expect(page.get_by_role("alert")).to_have_text("Sign-in failed.")
    assert not [c for c in page.context.cookies() if c["name"] == "console_session"]

    sign_in(page, stack.env["ADMIN_TOKEN"])
    expect(page).to_have_url(re.compile(r"/w/default/partners$"))
    expect(page.get_by_role("link", name="Mixpanel")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.goto("/w/default/cohorts")
    expect(page).to_have_url(re.compile(r"/signin$"))


def test_a_new_key_is_shown_once_and_a_cli_sync_shows_up_in_the_cohort(signed_in, stack, admin, tmp_path):
    page = signed_in
    w = Workspace(stack, admin, fresh_workspace())
    w.track(*(f"s{i}" for i in range(8)))
    page.goto(f"/w/{w.ws}/partners/mixpanel")
    page.get_by_role("button", name="Generate data import key").click()
    key = page.locator("#new-key-value").inner_text().strip()
    expect(page.locator("#new-key-endpoint")).to_have_text(stack.urls["ingest"])
    expect(page.get_by_role("button", name="Copy").first).to_be_visible()
    page.goto(f"/w/{w.ws}/partners/mixpanel")  # once: never again
    expect(page.locator("#keys tbody tr")).to_have_count(1)
    assert key not in page.content()

    page.goto(f"/w/{w.ws}/cohorts")
    export = tmp_path / "churn.csv"
    export.write_text("user_id\n" + "".join(f"s{i}\n" for i in range(8)) + "ghost1\nghost2\n")
    sync = subprocess.run(
        [sys.executable, "-m", "cohort_cli", "--ingest-url", stack.urls["ingest"], "sync", str(export),
         "--cohort-id", "mp_churn", "--name", "Churn risk", "--workspace", w.ws, "--state-dir", str(tmp_path / "s")],
        env={**stack.env, "COHORT_PARTNER_KEY": partner_keys(stack)["mixpanel"], "COHORT_DATA_IMPORT_KEY": key},
        capture_output=True, text=True, timeout=120)
    assert sync.returncode == 0, sync.stderr
    row = page.locator('tr[data-cohort-id="mp_churn"]')
    expect(row.locator(".member-count")).to_have_text("8", timeout=30_000)  # the page polls; no reload

    row.get_by_role("link", name="Churn risk").click()
    report = page.locator("#sync-report")
    expect(report.locator('[data-count="received"]')).to_have_text("10")
    expect(report.locator('[data-count="applied"]')).to_have_text("8")
    expect(report.locator('[data-count="unmatched:unknown_external_id"]')).to_have_text("2")
    expect(report.locator('[data-count="pre_2010"]')).to_have_text("0")
    expect(page.locator("#members tbody tr")).to_have_count(8)
    doc_image(page, "console-sync-report.png")


def test_the_segment_builder_sizes_match_the_api(signed_in, stack, admin, populated):
    page, ws = signed_in, populated.ws
    page.goto(f"/w/{ws}/segments/new")
    page.get_by_label("Segment name").fill("Churn risk, not VIP")
    page.get_by_label("Row 1 cohort").select_option("mixpanel/mp_churn")
    expect(page.locator("#segment-size")).to_have_attribute("data-size", "6")
    page.get_by_role("button", name="Add row").click()
    expect(page.get_by_label("Row 2 mode")).to_be_attached()
    settled(page)
    page.get_by_label("Row 2 mode").select_option("excludes")
    page.get_by_label("Row 2 cohort").select_option("mixpanel/mp_vip")
    expect(page.locator("#segment-size")).to_have_attribute("data-size", "4")  # u0…u3
    expect(page.locator("#reading")).to_have_text('Mixpanel_Cohorts includes "Churn risk" and '
                                                  'Mixpanel_Cohorts excludes "VIP"')
    doc_image(page, "console-segment-builder.png")
    page.get_by_label("Combine rows with").select_option("any")
    expect(page.locator("#segment-size")).to_have_attribute("data-size", "8")  # churn, or not VIP: u0…u5, u8, u9
    page.get_by_label("Combine rows with").select_option("all")
    expect(page.locator("#segment-size")).to_have_attribute("data-size", "4")
    page.get_by_role("button", name="Save segment").click()

    expect(page).to_have_url(re.compile(rf"/w/{ws}/segments/[0-9a-f]+$"))
    segment_id = page.url.rsplit("/", 1)[1]
    saved = admin.get(f"{stack.urls['segment_store']}/workspaces/{ws}/segments/{segment_id}").json()
    assert saved["size"] == 4
    assert saved["filter"] == {"all": [{"Mixpanel_Cohorts": {"includes": ["mp_churn"]}},
                                       {"Mixpanel_Cohorts": {"excludes": ["mp_vip"]}}]}
    expect(page.locator("#segment-size")).to_have_attribute("data-size", str(saved["size"]))
    expect(page.locator("#members tbody tr")).to_have_count(4)

    page.get_by_label("user_ref").fill("external_id:u2")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#contains-answer")).to_contain_text("Yes")
    page.get_by_label("user_ref").fill("external_id:u5")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#contains-answer")).to_contain_text("No")


def test_user_lookup_shows_identifiers_and_cohorts(signed_in, stack, admin, populated):
    page, ws = signed_in, populated.ws
    page.goto(f"/w/{ws}/users")
    page.get_by_label("user_ref").fill("external_id:u4")
    page.get_by_role("button", name="Look up").click()
    user_id = admin.get(f"{stack.urls['identity_resolution']}/workspaces/{ws}/identities/external_id:u4").json()["user_id"]
    expect(page.locator("#user-id")).to_have_text(user_id)
    expect(page.locator("#external-id")).to_have_text("u4")
    expect(page.locator("#user-cohorts li")).to_have_count(2)
    expect(page.locator("#user-cohorts")).to_contain_text("Churn risk")
    expect(page.locator("#user-cohorts")).to_contain_text("VIP")

    page.get_by_label("user_ref").fill("external_id:nobody")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("alert")).to_contain_text("no profile")


def test_invalidating_a_key_refuses_the_next_partner_request(signed_in, stack, admin):
    page = signed_in
    w = Workspace(stack, admin, fresh_workspace())
    created = w.new_key()
    assert w.partner("/cohorts", {"cohort_id": "c", "name": "C", "created_at": "2026-01-21T19:20:30Z"}).status_code == 202

    page.goto(f"/w/{w.ws}/partners/mixpanel")
    row = page.locator(f'tr[data-key-id="{created["key_id"]}"]')
    expect(row).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d"))  # last used: just now
    row.get_by_role("link", name="Invalidate…").click()
    expect(page.get_by_role("heading", name="Invalidate this data import key?")).to_be_visible()
    page.get_by_role("button", name="Invalidate key").click()
    expect(page.get_by_role("status")).to_contain_text("invalidated")
    expect(page.locator(f'tr[data-key-id="{created["key_id"]}"]')).to_have_count(0)

    refused = w.partner("/cohorts", {"cohort_id": "c", "name": "C", "created_at": "2026-01-21T19:20:30Z"})
    assert (refused.status_code, refused.json()["message"]) == (401, "Invalid client secret")


def test_the_live_feed_shows_committed_changes_and_pauses(signed_in, stack, admin, populated):
    page, ws = signed_in, populated.ws
    with httpx.Client(headers=stack.admin, timeout=30) as client:
        w = Workspace(stack, client, ws)
        w.key = populated.key
        page.goto(f"/w/{ws}/feed")
        expect(page.locator("#feed")).to_have_attribute("data-ready", "true")
        assert w.partner("/cohorts/users", {"cohort_id": "mp_vip", "cohort_changes": [{"user_ids": ["u8"]}]}).status_code == 202
        expect(page.locator("#feed tbody tr")).to_have_count(1)
        expect(page.locator("#feed tbody tr").first).to_contain_text("u8")

        page.get_by_role("button", name="Pause").click()
        assert w.partner("/cohorts/users", {"cohort_id": "mp_vip", "cohort_changes": [
            {"user_ids": ["u8"], "should_remove": True}]}).status_code == 202
        expect(page.locator("#feed-status")).to_have_text("paused, 1 waiting")
        expect(page.locator("#feed tbody tr")).to_have_count(1)
        page.get_by_role("button", name="Resume").click()
        expect(page.locator("#feed tbody tr")).to_have_count(2)
        expect(page.locator("#feed tbody tr").first).to_contain_text("removed")


def test_a_rest_api_key_is_shown_once_and_refused_once_invalidated(signed_in, stack):
    page, ws = signed_in, fresh_workspace()
    page.goto(f"/w/{ws}/rest-api-keys")
    page.get_by_label("Name").fill("backend")
    page.get_by_role("button", name="Generate REST API key").click()
    key = page.locator("#new-key-value").inner_text().strip()
    track = {"attributes": [{"external_id": "r1"}]}
    accepted = httpx.post(f"{stack.urls['ingest']}/users/track", json=track, headers={"Authorization": f"Bearer {key}"})
    assert accepted.status_code == 201, accepted.text

    page.goto(f"/w/{ws}/rest-api-keys")
    assert key not in page.content()
    page.get_by_role("link", name="Invalidate…").click()
    page.get_by_role("button", name="Invalidate key").click()
    expect(page.get_by_role("status")).to_contain_text("invalidated")
    refused = httpx.post(f"{stack.urls['ingest']}/users/track", json=track, headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401


def test_webhooks_show_their_delivery_state(signed_in, stack, admin):
    page, ws = signed_in, fresh_workspace()
    hook = admin.post(f"{stack.urls['delivery']}/workspaces/{ws}/webhooks",
                      json={"url": "http://127.0.0.1:9/hook", "description": "CRM sync",
                            "filter": {"changes": ["added"]}})
    assert hook.status_code == 201, hook.text
    page.goto(f"/w/{ws}/webhooks")
    row = page.locator("#webhooks tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("http://127.0.0.1:9/hook")
    expect(row).to_contain_text("CRM sync")
    expect(row).to_contain_text("active")
