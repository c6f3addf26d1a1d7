"""The CLI commands through typer's CliRunner, against the fake services (no real service)."""

import json

import httpx
import pytest
from cohort_cli.context import ClientHooks
from cohort_cli.main import app
from typer.testing import CliRunner

from .conftest import ADMIN_TOKEN, DATA_IMPORT_KEY, PARTNER_KEY


@pytest.fixture
def cohort(services):
    """Run `cohort ARGS` against the fake services, with the operator token in the environment."""
    runner = CliRunner(env={"ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200", "COHORT_SEGMENT_URL": None})

    def run(*args: str, env: dict | None = None, hooks: ClientHooks | None = None):
        return runner.invoke(app, list(args), env=env, obj=hooks or services.hooks())

    return run


def test_keys_create_list_and_invalidate(cohort, services):
    created = cohort("keys", "create", "demo")
    assert created.exit_code == 0, created.output
    assert "dik-new" in created.stdout and "cannot be shown again" in created.stderr
    listed = cohort("keys", "list", "demo")
    assert "k1" in listed.stdout and "dik-…6789" in listed.stdout
    gone = cohort("keys", "invalidate", "demo", "k1")
    assert gone.exit_code == 0 and "invalidated" in gone.stdout
    assert [(c.method, c.path) for c in services.calls] == [
        ("POST", "/workspaces/demo/data-import-keys"),
        ("GET", "/workspaces/demo/data-import-keys"),
        ("DELETE", "/workspaces/demo/data-import-keys/k1"),
    ]
    assert all(c.headers["authorization"] == f"Bearer {ADMIN_TOKEN}" for c in services.calls)


def test_rest_keys_create_list_and_invalidate(cohort, services):
    created = cohort("rest-keys", "create", "demo", "--name", "backend", "--permission", "users.track",
                     "--permission", "users.export.ids")
    assert created.exit_code == 0, created.output
    assert "rak-new" in created.stdout and "http://127.0.0.1:8080" in created.stdout
    assert "cannot be shown again" in created.stderr
    assert services.calls[-1].body == {"name": "backend", "permissions": ["users.track", "users.export.ids"]}
    every = cohort("--json", "rest-keys", "create", "demo", "--name", "all")
    assert json.loads(every.stdout)["permissions"] == [
        "users.track", "users.alias.new", "users.identify", "users.merge", "users.delete", "users.export.ids"]
    listed = cohort("rest-keys", "list", "demo")
    assert "rak_…abcd" in listed.stdout and "users.track" in listed.stdout and "backend" in listed.stdout
    gone = cohort("rest-keys", "invalidate", "demo", "r1")
    assert gone.exit_code == 0 and "invalidated" in gone.stdout
    assert [(c.method, c.path) for c in services.calls][-2:] == [
        ("GET", "/workspaces/demo/rest-api-keys"), ("DELETE", "/workspaces/demo/rest-api-keys/r1")]


def test_json_output_is_the_servers_answer(cohort):
    result = cohort("--json", "keys", "create", "demo")
    assert json.loads(result.stdout)["data_import_key"] == "dik-new"


def test_a_server_error_prints_its_message_and_exits_non_zero(cohort):
    result = cohort("keys", "invalidate", "demo", "nope")
    assert result.exit_code == 1
    assert "HTTP 404: key_id not found" in result.stderr


def test_the_token_is_never_printed(cohort, services):
    services.fail("/cohorts$", httpx.Response(500, json={"message": f"token {ADMIN_TOKEN} rejected"}))
    result = cohort("cohorts", "list", "demo")
    assert result.exit_code == 1 and "token *** rejected" in result.stderr
    assert ADMIN_TOKEN not in result.output
    assert ADMIN_TOKEN not in cohort("--help").output


def test_without_a_token_operator_commands_say_how_to_give_one(cohort, services):
    result = cohort("cohorts", "list", "demo", env={"ADMIN_TOKEN": None})
    assert result.exit_code == 2 and "ADMIN_TOKEN" in result.output
    assert services.calls == []
    wrong = cohort("--admin-token", "nope", "cohorts", "list", "demo")
    assert wrong.exit_code == 1 and "HTTP 401: Invalid or missing operator token" in wrong.stderr


def test_a_bad_workspace_name_is_refused_before_any_request(cohort, services):
    result = cohort("keys", "list", "no/such")
    assert result.exit_code == 2 and services.calls == []


def test_service_urls_come_from_options_and_environment(cohort, services):
    cohort("--ingest-url", "http://ingest.test:9000", "keys", "list", "demo")
    cohort("cohorts", "list", "demo", env={"COHORT_SEGMENT_URL": "http://segments.test:9002"})
    cohort("identities", "show", "demo", "u1")
    assert [c.host for c in services.calls] == ["ingest.test:9000", "segments.test:9002", "127.0.0.1:8081"]


def test_cohort_tables(cohort):
    listed = cohort("cohorts", "list", "demo")
    assert "Churn risk" in listed.stdout and "1,234" in listed.stdout
    shown = cohort("cohorts", "show", "demo", "mp_1")
    for text in ("received", "1,500", "unmatched: unknown_external_id", "200", "dropped: pre_2010", "50"):
        assert text in shown.stdout
    missing = cohort("cohorts", "show", "demo", "mp_2")
    assert missing.exit_code == 1 and "cohort_id not found" in missing.stderr


def test_segments_create_and_show(cohort, services):
    created = cohort(
        "segments", "create", "demo", "At risk", "--filter", '{"Mixpanel_Cohorts": {"includes": ["mp_1"]}}'
    )
    assert created.exit_code == 0 and "seg1" in created.stdout
    assert services.calls[-1].body == {"name": "At risk", "filter": {"Mixpanel_Cohorts": {"includes": ["mp_1"]}}}
    assert "1,234" in cohort("segments", "show", "demo", "seg1").stdout
    invalid = cohort("segments", "create", "demo", "x", "--filter", '{"Heap": 1}')
    assert invalid.exit_code == 1 and "filter: unknown partner cohorts key" in invalid.stderr
    not_json = cohort("segments", "create", "demo", "x", "--filter", "{nope")
    assert not_json.exit_code == 2 and "--filter is not valid JSON" in not_json.stderr


def test_user_cohorts_and_identity(cohort, services):
    memberships = cohort("users", "cohorts", "demo", "alias:email:a@x.com")
    assert "usr_9" in memberships.stdout and "mp_1" in memberships.stdout
    assert services.calls[-1].path == "/workspaces/demo/users/alias:email:a@x.com/cohorts"
    profile = cohort("identities", "show", "demo", "external_id:u/9")
    assert "email:a@x.com" in profile.stdout and "d5" in profile.stdout
    assert "attribute: plan" in profile.stdout and '"pro"' in profile.stdout and "12" in profile.stdout
    assert services.calls[-1].raw_path == "/workspaces/demo/identities/external_id:u%2F9"


def test_profiles_load_sends_three_phases(cohort, services, tmp_path):
    path = tmp_path / "profiles.jsonl"
    path.write_text(
        '{"external_id": "u1", "alias_name": "a@x.com", "alias_label": "email"}\n'
        '{"device_id": "d1", "identify_external_id": "u2"}\n'
    )
    result = cohort("profiles", "load", "demo", str(path))
    assert result.exit_code == 0, result.output
    assert "2 rows -> 2 tracked, 1 aliases, 1 identified; accepted 4" in result.stdout
    sent = [c for c in services.calls if c.method == "POST"]
    assert [c.path.rsplit("/demo/", 1)[1] for c in sent] == ["users/track", "users/alias/new", "users/identify"]
    # Then the reports of what identity-resolution skipped, one per request.
    asked = [c.path.rsplit("/", 1)[1] for c in services.calls if "/identity-requests/" in c.path]
    assert len(asked) == 3 and all(c.host == "127.0.0.1:8081" for c in services.calls if c.method == "GET")
    assert "skipped by identity-resolution: unknown_external_id 3" in result.stdout


def test_profiles_load_retries_server_errors_and_reports_bad_rows(cohort, services, tmp_path):
    path = tmp_path / "profiles.csv"
    path.write_text("external_id,device_id\nu1,\n")
    services.fail("/users/track$", httpx.Response(503, json={"message": "try later"}))
    result = cohort("profiles", "load", "demo", str(path), "--retry-base-delay", "0")
    assert result.exit_code == 0 and "1 retries" in result.stdout
    path.write_text("external_id,alias_name\nu1,a@x.com\n")
    bad = cohort("profiles", "load", "demo", str(path))
    assert bad.exit_code == 2 and "line 2, column 'alias_label'" in bad.stderr


def sync_args(path, *extra: str) -> list[str]:
    return [
        "sync",
        str(path),
        "--cohort-id",
        "mp_1",
        "--name",
        "Churn risk",
        "--partner-key",
        PARTNER_KEY,
        "--workspace",
        "demo",
        "--state-dir",
        str(path.parent / "snapshots"),
        *extra,
    ]


def test_sync_then_resync_sends_only_the_diff(cohort, services, tmp_path):
    export = tmp_path / "cohort.csv"
    export.write_text("user_id,device_id\nu1,d1\nu2,\n")
    env = {"COHORT_DATA_IMPORT_KEY": DATA_IMPORT_KEY}
    first = cohort(*sync_args(export), env=env)
    assert first.exit_code == 0, first.output
    assert "first sync: sent 3 adds, 0 removes; accepted 3" in first.stdout
    export.write_text("user_id,device_id\nu2,\nu3,\n")
    second = cohort(*sync_args(export), env=env)
    assert "diff: sent 1 adds, 2 removes; accepted 3" in second.stdout
    assert DATA_IMPORT_KEY not in first.output + second.output
    assert all("authorization" not in c.headers for c in services.partner_calls())


def test_separate_runs_number_their_syncs_from_the_snapshot_history(cohort, services, tmp_path):
    export = tmp_path / "cohort.csv"
    env = {"COHORT_DATA_IMPORT_KEY": DATA_IMPORT_KEY}
    lines = []
    for members in ("u1", "u1\nu2", "u2"):
        export.write_text(f"user_id\n{members}\n")
        result = cohort(*sync_args(export), env=env)
        assert result.exit_code == 0, result.output
        lines.append(result.stdout.split(":", 1)[0])
    assert lines == ["sync 1 of mp_1", "sync 2 of mp_1", "sync 3 of mp_1"]

    # A failed sync leaves the history as it was: the next try carries the same number.
    services.fail("/cohorts/users$", httpx.Response(503, json={"message": "Kafka unavailable"}))
    export.write_text("user_id\nu3\n")
    failed = cohort(*sync_args(export, "--max-attempts", "1"), env=env)
    assert failed.exit_code == 1 and "sync 4 failed" in failed.stderr
    again = cohort("--json", *sync_args(export), env=env)
    assert json.loads(again.stdout)["sync"] == 4


def test_dynamic_mode_rereads_the_file_every_interval(services, tmp_path):
    export = tmp_path / "cohort.jsonl"
    export.write_text('{"user_id": "u1"}\n')
    exports = iter(['{"user_id": "u1"}\n{"user_id": "u2"}\n', '{"user_id": "u2"}\n'])
    waits = []

    async def between_syncs(seconds: float) -> None:
        waits.append(seconds)
        export.write_text(next(exports))

    hooks = ClientHooks(transport=services.transport(), sleep=between_syncs)
    args = sync_args(export, "--data-import-key", DATA_IMPORT_KEY, "--dynamic", "--interval", "5", "--max-syncs", "3")
    result = CliRunner().invoke(app, args, obj=hooks)
    assert result.exit_code == 0, result.output
    assert [line.split(": ", 1)[1].rsplit("; ", 1)[0] for line in result.stdout.splitlines()] == [
        "first sync: sent 1 adds, 0 removes; accepted 1; dropped pre-2010 0; 2 requests, 0 retries",
        "diff: sent 1 adds, 0 removes; accepted 1; dropped pre-2010 0; 2 requests, 0 retries",
        "diff: sent 0 adds, 1 removes; accepted 1; dropped pre-2010 0; 2 requests, 0 retries",
    ]
    assert waits == [5.0, 5.0]


def test_a_rejected_sync_exits_non_zero_and_keeps_no_snapshot(cohort, tmp_path):
    export = tmp_path / "cohort.csv"
    export.write_text("user_id\nu1\n")
    result = cohort(*sync_args(export, "--data-import-key", "wrong-key"))
    assert result.exit_code == 1
    assert "HTTP 401: Invalid client secret" in result.stderr and "wrong-key" not in result.output
    assert not any((tmp_path / "snapshots").rglob("*.json"))


def test_a_sync_that_runs_out_of_retries_says_the_snapshot_is_kept(cohort, services, tmp_path):
    export = tmp_path / "cohort.csv"
    export.write_text("user_id\nu1\n")
    services.fail("/cohorts/users$", *[httpx.Response(503, json={"message": "Kafka unavailable"})] * 2)
    result = cohort(*sync_args(export, "--data-import-key", DATA_IMPORT_KEY, "--max-attempts", "2"))
    assert result.exit_code == 1
    assert "HTTP 503: Kafka unavailable (after 2 attempts)" in result.stderr and "left as it was" in result.stderr
    assert not any((tmp_path / "snapshots").rglob("*.json"))


def test_created_at_needs_a_zone(cohort, tmp_path):
    export = tmp_path / "cohort.csv"
    export.write_text("user_id\nu1\n")
    result = cohort(*sync_args(export, "--data-import-key", DATA_IMPORT_KEY, "--created-at", "2026-01-21T10:00:00"))
    assert result.exit_code == 2 and "--created-at must be an ISO-8601 time with a zone" in result.stderr
    given = cohort(*sync_args(export, "--data-import-key", DATA_IMPORT_KEY, "--created-at", "2026-01-21T10:00:00Z"))
    assert given.exit_code == 0


def test_dynamic_mode_survives_a_transient_failure_and_resends_next_time(services, tmp_path):
    export = tmp_path / "cohort.csv"
    export.write_text("user_id\nu1\n")

    async def between_syncs(seconds: float) -> None:
        export.write_text("user_id\nu1\nu2\n")

    services.fail("/cohorts/users$", httpx.Response(202, json={"accepted": 1}), httpx.Response(503, json={}))
    hooks = ClientHooks(transport=services.transport(), sleep=between_syncs)
    args = sync_args(
        export, "--data-import-key", DATA_IMPORT_KEY, "--dynamic", "--max-syncs", "3", "--max-attempts", "1"
    )
    result = CliRunner().invoke(app, args, obj=hooks)
    assert result.exit_code == 0, result.output
    assert "sync 2 failed: HTTP 503" in result.stderr
    assert [sent["user_ids"] for c in services.partner_calls() for sent in c.body["cohort_changes"]] == [
        ["u1"],
        ["u2"],
        ["u2"],
    ]


def test_lists_follow_every_page(cohort, services):
    listed = cohort("--json", "segments", "list", "demo")
    assert listed.exit_code == 0, listed.output
    assert [s["segment_id"] for s in json.loads(listed.stdout)["segments"]] == ["seg1", "seg2"]
    pages = [c for c in services.calls if c.path == "/workspaces/demo/segments"]
    assert [c.raw_path.split("?")[1] for c in pages] == ["limit=1000", "limit=1000&cursor=page-2"]


def test_repair_lists_divergences_and_asks_for_a_repair(cohort, services):
    listed = cohort("repair", "list")
    assert listed.exit_code == 0, listed.output
    assert "redis_behind" in listed.stdout and "Kafka committed up to offset 20" in listed.stdout
    assert {c.host for c in services.calls} == {"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"}
    asked = cohort("repair", "apply", "segment-store", "membership.resolved", "4", "--action", "reapply")
    assert asked.exit_code == 0 and "reapply of membership.resolved[4] requested" in asked.stdout
    assert services.calls[-1].body == {"topic": "membership.resolved", "partition": 4, "action": "reapply"}
    unknown = cohort("repair", "apply", "segment-store", "membership.resolved", "5", "--action", "accept")
    assert unknown.exit_code == 1 and "no divergence recorded" in unknown.stderr
    wrong = cohort("repair", "apply", "segment-store", "membership.resolved", "4", "--action", "skip")
    assert wrong.exit_code == 2 and services.calls[-1].body["action"] == "accept"


def test_identity_request_reports(cohort):
    shown = cohort("identities", "request", "demo", "ab" * 16)
    assert shown.exit_code == 0, shown.output
    assert "alias_requested" in shown.stdout and "unknown_external_id" in shown.stdout
    report = cohort("--json", "identities", "report", "demo")
    assert json.loads(report.stdout) == {"skipped_by_reason": {"unknown_external_id": 7}}
