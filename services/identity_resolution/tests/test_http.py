"""The identity lookup API and the settings, without a broker: the app's reader is a fake."""

import httpx
from identity_resolution.app import create_app
from identity_resolution.domain.book import Profile
from identity_resolution.domain.identifiers import alias_key
from identity_resolution.settings import IdentitySettings

ADMIN = {"Authorization": "Bearer t0ken"}
PROFILE = Profile("u" + "0" * 23, "anonymous", "u9", {alias_key("email", "a@x.com")}, {"d2", "d1"},
                  {"plan": "pro", "email": "a@x.com"})


class FakeReader:
    def __init__(self):
        self.asked = []

    async def find(self, workspace_id, ref):
        self.asked.append((workspace_id, ref))
        return PROFILE if ref.value in ("u9", "d1", "a/b") else None


def client(token="t0ken") -> tuple[httpx.AsyncClient, FakeReader]:
    app = create_app(IdentitySettings(ADMIN_TOKEN=token))  # no lifespan: nothing connects
    app.state.profiles = reader = FakeReader()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity"), reader


async def test_a_profile_by_any_user_ref():
    http, reader = client()
    expected = {"user_id": PROFILE.user_id, "external_id": "u9", "identified": True,
                "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}], "device_ids": ["d1", "d2"],
                "custom_attributes": {"email": "a@x.com", "plan": "pro"}}
    for ref in ("external_id:u9", "device_id:d1", "alias:email:a/b"):
        response = await http.get(f"/workspaces/acme/identities/{ref}", headers=ADMIN)
        assert (response.status_code, response.json()) == (200, expected), ref
    assert [r.kind for _, r in reader.asked] == ["external_id", "device_id", "alias"]
    assert reader.asked[2][1].label == "email"


async def test_errors_are_json_messages():
    http, _ = client()
    cases = {
        "/workspaces/acme/identities/external_id:nobody": (404, "user_ref names no profile in this workspace"),
        "/workspaces/acme/identities/alias:email": (400, "user_ref alias: must be alias:<alias_label>:<alias_name>"),
        "/workspaces/a%20b/identities/external_id:u9": (400, "workspace must match [A-Za-z0-9_-]{1,64}"),
    }
    for path, (status, message) in cases.items():
        response = await http.get(path, headers=ADMIN)
        assert (response.status_code, response.json()) == (status, {"message": message}), path
    response = await http.get("/workspaces/acme/identities/external_id:u9", headers={"Authorization": "Bearer nope"})
    assert (response.status_code, response.json()) == (401, {"message": "Invalid or missing operator token"})


async def test_without_an_admin_token_everyone_gets_401():
    http, _ = client(token="")
    assert (await http.get("/workspaces/acme/identities/external_id:u9", headers=ADMIN)).status_code == 401


def test_settings_read_their_environment_names(monkeypatch):
    monkeypatch.setenv("IDENTITY_PORT", "9191")
    monkeypatch.setenv("IDENTITY_PARK_WINDOW_SECONDS", "60")
    monkeypatch.setenv("INSTANCE_ID", "pod-3")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@redis:6379/0")
    settings = IdentitySettings()
    assert (settings.port, settings.park_window_seconds, settings.max_batch_records) == (9191, 60, 50)
    assert settings.member_id() == "pod-3"
    assert "hunter2" not in str(settings.masked())
