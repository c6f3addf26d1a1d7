"""docker-compose.yml: `docker-compose config` (Debian's package, no engine needed), the
current compose-spec JSON schema (which Compose v2 applies), and our own rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import yaml

from .settings_names import SETTINGS, STREAM_PROCESSORS, env_names

INFRASTRUCTURE = ("kafka", "redis")
NEEDS = {"console": ("kafka",)}  # what a service waits for, where not all of INFRASTRUCTURE (the console has no Redis)
LOOPBACK_PORT = re.compile(r"^127\.0\.0\.1:.+:\d+(/(tcp|udp))?$")  # the host port may be ${VAR:-default}
# Values for the variables the file insists on (${VAR:?…}); placeholders, never used.
PLACEHOLDER_ENV = {"ADMIN_TOKEN": "placeholder", "PARTNER_API_KEYS": "mixpanel=placeholder",
                   "DELIVERY_SECRET_KEY": "placeholder"}
MUST_IGNORE = (".git", ".venv/", ".local/")


def check_docker_compose_config(docker_compose: str, compose_file: Path) -> list[str]:
    env = {**os.environ, **PLACEHOLDER_ENV}
    done = subprocess.run([docker_compose, "-f", str(compose_file), "config", "-q"], env=env,
                          capture_output=True, text=True)
    return [] if done.returncode == 0 else [f"docker-compose config: {done.stderr.strip()}"]


def check_compose_schema(compose_file: Path, schema_json: bytes) -> list[str]:
    document = yaml.safe_load(compose_file.read_text())
    schema = json.loads(schema_json)
    validator = jsonschema.validators.validator_for(schema)(schema)  # the draft the schema declares
    return [f"compose-spec schema: {'.'.join(str(p) for p in e.path) or '(top)'}: {e.message}"
            for e in validator.iter_errors(document)]


def check_compose_policy(compose_file: Path, dockerignore: Path) -> list[str]:
    services = yaml.safe_load(compose_file.read_text())["services"]
    volumes = yaml.safe_load(compose_file.read_text()).get("volumes") or {}
    problems = []
    for name, service in services.items():
        if service.get("restart") not in ("always", "unless-stopped", "on-failure"):
            problems.append(f"{name}: needs a restart policy")
        if "test" not in (service.get("healthcheck") or {}):
            problems.append(f"{name}: needs a healthcheck")
        for port in service.get("ports", []):
            if not (port.get("host_ip") == "127.0.0.1" if isinstance(port, dict) else LOOPBACK_PORT.match(str(port))):
                problems.append(f"{name}: port {port} is published on every interface; bind it to 127.0.0.1")
        mounts = [str(v).split(":")[0] for v in service.get("volumes", [])]
        if name in INFRASTRUCTURE and not any(m in volumes for m in mounts):
            problems.append(f"{name}: keeps its data in the container; mount a named volume")
        if name in SETTINGS:
            problems += _app_service(name, service)
    ignored = {line.strip() for line in dockerignore.read_text().splitlines()} if dockerignore.exists() else set()
    problems += [f".dockerignore: must keep {entry} out of images" for entry in MUST_IGNORE if entry not in ignored]
    return problems


def _app_service(name: str, service: dict) -> list[str]:
    problems = []
    depends = service.get("depends_on") or {}
    for needed in NEEDS.get(name, INFRASTRUCTURE):
        if not isinstance(depends, dict) or (depends.get(needed) or {}).get("condition") != "service_healthy":
            problems.append(f"{name}: must wait for {needed} with depends_on condition service_healthy")
    environment = service.get("environment") or {}
    problems += [f"{name}: {name} reads no setting named {variable}"
                 for variable in environment if variable not in env_names(name)]
    if name in STREAM_PROCESSORS and not str(environment.get("INSTANCE_ID") or "").strip():
        problems.append(f"{name}: needs a stable INSTANCE_ID (its static group member and transactional ID)")
    if name == "ingest" and not environment.get("INGEST_PUBLIC_URL"):
        problems.append("ingest: INGEST_PUBLIC_URL must be set (it is the rest_endpoint producers are given)")
    return problems
