"""Our own rules for the rendered Kubernetes manifests, beyond what a schema can say."""

from __future__ import annotations

import base64
import re

from .k8s_schemas import name_of
from .settings_names import (
    SECRET_NAMES,
    STREAM_PROCESSORS,
    any_service_reads,
    env_names,
    group_id,
    partner_keys_parse,
)

WORKLOADS = ("Deployment", "StatefulSet")
PORT_SETTINGS = {"ingest": "INGEST_PORT", "identity-resolution": "IDENTITY_PORT", "segment-store": "SEGMENT_PORT",
                 "delivery": "DELIVERY_PORT", "console": "CONSOLE_PORT"}
DEFAULT_PARTITIONS = 12
PLACEHOLDER = re.compile(r"^<placeholder: [^\n]*>$")
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]*:[^/@\s]+@")


def check_policy(docs: list[dict]) -> list[str]:
    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    config = _config_maps(by_kind.get("ConfigMap", []))
    problems: list[str] = []
    for workload in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", []):
        problems += _workload(workload, config)
    problems += _scaled_objects(by_kind, config)
    problems += _secrets(by_kind.get("Secret", []))
    problems += _companions(by_kind)
    return problems


def _config_maps(maps: list[dict]) -> dict[str, dict[str, str]]:
    return {m["metadata"]["name"]: m.get("data") or {} for m in maps}


def _env_of(container: dict, config: dict[str, dict[str, str]]) -> dict[str, dict]:
    """Each environment name the container gets, with where it comes from."""
    env: dict[str, dict] = {}
    for source in container.get("envFrom", []):
        for key, value in config.get(source.get("configMapRef", {}).get("name"), {}).items():
            env[key] = {"value": value, "shared": True}  # the same ConfigMap goes to every service
    for variable in container.get("env", []):
        env[variable["name"]] = variable
    return env


def _workload(workload: dict, config: dict[str, dict[str, str]]) -> list[str]:
    name, spec = name_of(workload), workload["spec"]["template"]["spec"]
    problems = []
    for container in spec.get("initContainers", []) + spec["containers"]:
        where = f"{name} container {container['name']}"
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    problems.append(f"{where}: no {kind}.{resource}")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{where}: {probe} must be an HTTP GET of {path}")
        env = _env_of(container, config)
        service = container["name"]
        for variable, source in env.items():
            if service in PORT_SETTINGS and not source.get("shared") and variable not in env_names(service):
                problems.append(f"{where}: {service} reads no setting named {variable}")
            if variable in SECRET_NAMES and "valueFrom" not in source:
                problems.append(f"{where}: {variable} must come from a Secret (secretKeyRef), not a value")
        port_setting = PORT_SETTINGS.get(service)
        if port_setting:
            declared = {p["containerPort"] for p in container.get("ports", [])}
            if str(env.get(port_setting, {}).get("value")) not in {str(p) for p in declared}:
                problems.append(f"{where}: {port_setting} must be set to the containerPort it listens on")
    if workload["kind"] == "StatefulSet":
        for container in spec["containers"]:
            instance = _env_of(container, config).get("INSTANCE_ID", {})
            if instance.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
                problems.append(f"{name} container {container['name']}: INSTANCE_ID must come from the pod's "
                                "metadata.name (its stable StatefulSet name)")
    return problems


def _scaled_objects(by_kind: dict[str, list[dict]], config: dict[str, dict[str, str]]) -> list[str]:
    problems = []
    workloads = {(w["kind"], w["metadata"]["name"]): w for k in WORKLOADS for w in by_kind.get(k, [])}
    for scaled in by_kind.get("ScaledObject", []):
        name, spec = name_of(scaled), scaled["spec"]
        target = spec["scaleTargetRef"]
        workload = workloads.get((target.get("kind", "Deployment"), target["name"]))
        if workload is None:
            problems.append(f"{name}: scales {target.get('kind')}/{target['name']}, which is not in the manifests")
            continue
        container = workload["spec"]["template"]["spec"]["containers"][0]
        env = {k: v.get("value") for k, v in _env_of(container, config).items()}
        partitions = int(env.get("TOPIC_PARTITIONS") or DEFAULT_PARTITIONS)
        if "maxReplicaCount" not in spec or spec["maxReplicaCount"] > partitions:
            problems.append(f"{name}: maxReplicaCount must be set and at most TOPIC_PARTITIONS ({partitions}): "
                            "an instance beyond the partition count holds nothing")
        for trigger in spec.get("triggers", []):
            if trigger.get("type") != "kafka":
                continue
            meta = trigger.get("metadata", {})
            expected = group_id(target["name"], env.get("TOPIC_PREFIX") or "")
            if meta.get("consumerGroup") != expected:
                problems.append(f"{name}: kafka trigger watches group {meta.get('consumerGroup')!r}, "
                                f"but the service joins {expected!r} (TOPIC_PREFIX + service name)")
            from_env = meta.get("bootstrapServersFromEnv")
            if from_env and from_env not in env:
                problems.append(f"{name}: bootstrapServersFromEnv names {from_env}, which the target does not set")
            if not from_env and meta.get("bootstrapServers") != env.get("KAFKA_BOOTSTRAP_SERVERS"):
                problems.append(f"{name}: bootstrapServers differs from the target's KAFKA_BOOTSTRAP_SERVERS")
    return problems


def _secrets(secrets: list[dict]) -> list[str]:
    problems = []
    for secret in secrets:
        values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        values.update(secret.get("stringData") or {})
        for key, value in values.items():
            if not _fails_closed(key, value):
                problems.append(f"{name_of(secret)}: {key} holds something other than a placeholder that fails "
                                "closed; real secret values never go into the repository")
    return problems


def _fails_closed(key: str, value: str) -> bool:
    """A placeholder that cannot work if applied by mistake."""
    if key == "REDIS_URL":  # a host under .invalid never resolves (RFC 2606)
        return re.fullmatch(r"rediss?://[a-z0-9.-]+\.invalid(:\d+)?(/\d+)?", value) is not None
    if key == "PARTNER_API_KEYS":
        return PLACEHOLDER.match(value) is not None and not partner_keys_parse(value)
    return PLACEHOLDER.match(value) is not None


def _companions(by_kind: dict[str, list[dict]]) -> list[str]:
    """Every workload has its PDB, each stream processor its ScaledObject and governing
    Service, ingest its HPA; and no ConfigMap carries a secret."""
    problems = []
    pdb_selects = [p["spec"]["selector"]["matchLabels"] for p in by_kind.get("PodDisruptionBudget", [])]
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    scaled = {s["spec"]["scaleTargetRef"]["name"] for s in by_kind.get("ScaledObject", [])}
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind.get("HorizontalPodAutoscaler", [])}
    for workload in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", []):
        name, labels = workload["metadata"]["name"], workload["spec"]["template"]["metadata"]["labels"]
        if not any(select.items() <= labels.items() for select in pdb_selects):
            problems.append(f"{name_of(workload)}: no PodDisruptionBudget selects its pods")
        if workload["kind"] == "StatefulSet":
            if name in STREAM_PROCESSORS and name not in scaled:
                problems.append(f"{name_of(workload)}: no KEDA ScaledObject scales it")
            governing = services.get(workload["spec"].get("serviceName"))
            if governing is None or governing["spec"].get("clusterIP") != "None":
                problems.append(f"{name_of(workload)}: its serviceName must name a headless Service")
        elif name not in hpas:
            problems.append(f"{name_of(workload)}: no HorizontalPodAutoscaler scales it")
    for config_map in by_kind.get("ConfigMap", []):
        for key, value in (config_map.get("data") or {}).items():
            if key in SECRET_NAMES or CREDENTIALS_IN_URL.search(value):
                problems.append(f"{name_of(config_map)}: {key} looks like a secret; it belongs in a Secret")
            elif not any_service_reads(key):
                problems.append(f"{name_of(config_map)}: no service reads a setting named {key}")
    return problems
