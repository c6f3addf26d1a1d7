"""`make validate-deploy` passes on the repository's deploy files and rejects broken ones.

Marked `deploy`: the first run builds kustomize through the Go module proxy (up to a minute);
after that the whole module takes a few seconds. No cluster and no Docker engine needed."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from deploy.validate import (  # noqa: E402
    compose_checks,
    k8s_policy,
    k8s_schemas,
    observability_checks,
    tools,
)

pytestmark = pytest.mark.deploy
BASE = ROOT / "deploy" / "k8s" / "base"


def validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy.validate", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def base_docs() -> list[dict]:
    return k8s_schemas.render(tools.kustomize(), BASE)


def find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_the_repository_deploy_files_pass():
    done = validate()
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failed" in done.stdout


def test_a_broken_overlay_is_rejected_end_to_end(tmp_path):
    """An overlay a careless edit could produce, rendered by kustomize like the real ones."""
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(BASE, tmp_path)],
        "configMapGenerator": [{"name": "cohort-import-config", "behavior": "merge",
                                "literals": ["TOPIC_PREFIX=staging.", "KAFKA_BOOTSTRAP_SERVER=kafka:9092"]}],
        "patches": [
            {"target": {"kind": "Deployment", "name": "ingest"},
             "patch": "- {op: remove, path: /spec/template/spec/containers/0/resources/limits}\n"
                      "- {op: add, path: /spec/template/spec/containers/0/imagePullPolicyy, value: Always}"},
            {"target": {"kind": "ScaledObject", "name": "segment-store"},
             "patch": "- {op: replace, path: /spec/maxReplicaCount, value: 24}"},
            {"target": {"kind": "Secret", "name": "cohort-import-secrets"},
             "patch": "- {op: replace, path: /stringData/ADMIN_TOKEN, value: hunter2-real-token}"},
        ],
    }))
    done = validate("--kustomization", str(tmp_path))
    assert done.returncode == 1
    for expected in (
        "container ingest: no limits.cpu",
        "imagePullPolicyy",  # strict schema: an unknown (misspelt) field
        "ScaledObject/segment-store: maxReplicaCount must be set and at most TOPIC_PARTITIONS (12)",
        "kafka trigger watches group 'identity-resolution', but the service joins 'staging.identity-resolution'",
        "ADMIN_TOKEN holds something other than a placeholder",
        "no service reads a setting named KAFKA_BOOTSTRAP_SERVER",
    ):
        assert expected in done.stdout, f"{expected!r} not reported:\n{done.stdout}"


def _drop_instance_id(docs):
    env = find(docs, "StatefulSet", "segment-store")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [v for v in env if v["name"] != "INSTANCE_ID"] + [{"name": "INSTANCE_ID", "value": "segment-store"}]


def _drop_probe(docs):
    del find(docs, "StatefulSet", "identity-resolution")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]


def _literal_redis_url(docs):
    env = find(docs, "Deployment", "ingest")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [v for v in env if v["name"] != "REDIS_URL"] + [{"name": "REDIS_URL", "value": "redis://:pw@redis:6379/0"}]


def _drop_pdb(docs):
    docs.remove(find(docs, "PodDisruptionBudget", "ingest"))


def _working_partner_keys(docs):
    find(docs, "Secret", "cohort-import-secrets")["stringData"]["PARTNER_API_KEYS"] = "mixpanel=changeme"


def _literal_delivery_key(docs):
    env = find(docs, "StatefulSet", "delivery")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [v for v in env if v["name"] != "DELIVERY_SECRET_KEY"] + [
        {"name": "DELIVERY_SECRET_KEY", "value": "dGVzdC1vbmx5LWRlbGl2ZXJ5LXNlY3JldC1rZXktMzI="}]


def _delivery_without_scaling(docs):
    docs.remove(find(docs, "ScaledObject", "delivery"))


def _wrong_port(docs):
    env = find(docs, "Deployment", "ingest")["spec"]["template"]["spec"]["containers"][0]["env"]
    next(v for v in env if v["name"] == "INGEST_PORT")["value"] = "9000"


@pytest.mark.parametrize(("break_it", "expected"), [
    (_drop_instance_id, "INSTANCE_ID must come from the pod's metadata.name"),
    (_drop_probe, "readinessProbe must be an HTTP GET of /readyz"),
    (_literal_redis_url, "REDIS_URL must come from a Secret"),
    (_drop_pdb, "Deployment/ingest: no PodDisruptionBudget"),
    (_working_partner_keys, "PARTNER_API_KEYS holds something other than a placeholder that fails closed"),
    (_wrong_port, "INGEST_PORT must be set to the containerPort"),
    (_literal_delivery_key, "DELIVERY_SECRET_KEY must come from a Secret"),
    (_delivery_without_scaling, "StatefulSet/delivery: no KEDA ScaledObject scales it"),
])
def test_the_policy_rejects(base_docs, break_it, expected):
    docs = copy.deepcopy(base_docs)
    assert k8s_policy.check_policy(docs) == []
    break_it(docs)
    assert any(expected in problem for problem in k8s_policy.check_policy(docs)), k8s_policy.check_policy(docs)


def test_scaled_objects_are_held_to_kedas_own_schema(base_docs):
    schema = k8s_schemas.scaled_object_schema(tools.module_file(*tools.KEDA))
    docs = copy.deepcopy(base_docs)
    assert k8s_schemas.check_scaled_objects(docs, schema) == []
    scaled = find(docs, "ScaledObject", "identity-resolution")
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 100  # trigger metadata is strings only
    scaled["spec"]["cooldownPeriods"] = 30  # not a KEDA field
    problems = k8s_schemas.check_scaled_objects(docs, schema)
    assert any("lagThreshold" in p and "not of type 'string'" in p for p in problems), problems
    assert any("cooldownPeriods" in p for p in problems), problems


def test_built_in_kinds_are_held_to_the_kubernetes_schema(base_docs):
    docs = copy.deepcopy(base_docs)
    find(docs, "PodDisruptionBudget", "ingest")["spec"]["minAvailable"] = [1]
    assert any("PodDisruptionBudget/ingest" in p for p in k8s_schemas.check_builtin_kinds(docs))


def unsafe_compose(tmp_path: Path) -> Path:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    document["services"]["redis"]["ports"] = ["6379:6379"]
    del document["services"]["kafka"]["healthcheck"]
    del document["services"]["segment-store"]["environment"]["INSTANCE_ID"]
    document["services"]["ingest"]["depends_on"] = ["kafka", "redis"]
    document["services"]["ingest"]["restart_policy"] = "always"  # not a compose key
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_an_unsafe_compose_file_is_rejected(tmp_path):
    path = unsafe_compose(tmp_path)
    (tmp_path / ".dockerignore").write_text(".git\n.venv/\n")
    problems = compose_checks.check_compose_policy(path, tmp_path / ".dockerignore")
    for expected in ("redis: port 6379:6379 is published on every interface", "kafka: needs a healthcheck",
                     "segment-store: needs a stable INSTANCE_ID",
                     "ingest: must wait for kafka with depends_on condition service_healthy",
                     ".dockerignore: must keep .local/ out of images"):
        assert any(expected in p for p in problems), (expected, problems)
    schema = tools.module_file(*tools.COMPOSE_SPEC)
    assert any("restart_policy" in p for p in compose_checks.check_compose_schema(path, schema))
    config = compose_checks.check_docker_compose_config(tools.docker_compose(), path)
    assert config and "restart_policy" in config[0]


def test_rules_and_dashboard_name_only_exported_metrics(tmp_path):
    rules = yaml.safe_load((ROOT / "deploy" / "observability" / "alerts.yml").read_text())
    rules["groups"][0]["rules"] = [r for r in rules["groups"][0]["rules"] if r["alert"] != "StreamLoopDown"]
    rules["groups"][0]["rules"][0]["expr"] = "sum by (grop) (stream_consumer_lags) > 1000"
    broken_rules = tmp_path / "alerts.yml"
    broken_rules.write_text(yaml.safe_dump(rules))
    problems = observability_checks.check_rules(broken_rules)
    assert any("stream_consumer_lags is not a metric" in p for p in problems), problems
    assert any("label grop is on none of the metrics" in p for p in problems), problems
    assert any("no alert StreamLoopDown" in p for p in problems), problems

    dashboard = json.loads((ROOT / "deploy" / "observability" / "grafana-dashboard.json").read_text())
    dashboard["panels"][1]["targets"][0]["expr"] = "sum(rate(stream_record_total[5m]))"
    broken_dashboard = tmp_path / "dashboard.json"
    broken_dashboard.write_text(json.dumps(dashboard))
    problems = observability_checks.check_dashboard(broken_dashboard)
    assert any("stream_record_total is not a metric" in p for p in problems), problems


def test_promtool_rejects_a_rule_that_no_longer_meets_its_unit_test(tmp_path):
    promtool = tools.promtool()
    text = (ROOT / "deploy" / "observability" / "alerts.yml").read_text()
    (tmp_path / "alerts.yml").write_text(text.replace("increase(stream_dead_letters_total[15m])) > 0",
                                                      "increase(stream_dead_letters_total[15m])) > 5"))
    (tmp_path / "tests").mkdir()
    test_file = tmp_path / "tests" / "alerts_test.yml"
    test_file.write_text((ROOT / "deploy" / "observability" / "tests" / "alerts_test.yml").read_text())
    problems = observability_checks.run_promtool(promtool, tmp_path / "alerts.yml", [test_file])
    assert problems and "StreamDeadLettersIncreasing" in problems[0]
