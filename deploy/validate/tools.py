"""The tools and schemas the validation needs, fetched from the registries at validation time
and cached per user (COHORT_TOOLS_CACHE, default ~/.cache/cohort-import/tools), so every clone
on a machine shares one build, as with pip's and Go's own caches: nothing third-party is
committed.

- kustomize: built from its Go module through the Go module proxy (35 to 60 s cold here, depending on load).
- promtool: built the same way; 5 min 11 s cold on this 2-core machine, once per machine
  (and per version bump).
- KEDA's ScaledObject CRD and the compose-spec JSON schema: read from their Go module zips
  (`go mod download` checks them against the checksum database), never vendored.
- docker-compose: Debian's package; `docker-compose config` needs no engine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("COHORT_TOOLS_CACHE") or Path.home() / ".cache" / "cohort-import" / "tools")
BIN = CACHE / "bin"

# Pinned versions. kustomize v5.8.3 needs Go 1.27; v5.8.2 builds with the Go 1.26 installed.
KUSTOMIZE = "sigs.k8s.io/kustomize/kustomize/v5@v5.8.2"
PROMTOOL = "github.com/prometheus/prometheus/cmd/promtool@v0.316.0"
KEDA = ("github.com/kedacore/keda/v2", "v2.21.0", "config/crd/bases/keda.sh_scaledobjects.yaml")
COMPOSE_SPEC = ("github.com/compose-spec/compose-go/v2", "v2.16.2", "schema/compose-spec.json")


class ToolError(RuntimeError):
    """A tool or schema could not be had; the message says what to do."""


def _go_env() -> dict[str, str]:
    if shutil.which("go") is None:
        raise ToolError("Go is needed to fetch kustomize and the schemas (the Go module proxy); install Go 1.26+")
    return {**os.environ, "GOMODCACHE": str(CACHE / "gomod"), "GOCACHE": str(CACHE / "gocache"),
            "GOBIN": str(BIN), "GOTOOLCHAIN": "local"}


def _stamped(binary: Path, module: str) -> bool:
    """Is `binary` there, built from exactly `module` (a version bump rebuilds it)?"""
    stamp = binary.with_name(binary.name + ".module")
    return binary.exists() and stamp.exists() and stamp.read_text() == module


def go_install(module: str, name: str) -> Path:
    binary = BIN / name
    if not _stamped(binary, module):
        done = subprocess.run(["go", "install", "-trimpath", "-ldflags=-s -w", module], env=_go_env(),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ToolError(f"go install {module} failed:\n{done.stderr[-2000:]}")
        binary.with_name(name + ".module").write_text(module)
    return binary


def kustomize() -> Path:
    return go_install(KUSTOMIZE, "kustomize")


def promtool() -> Path:
    return go_install(PROMTOOL, "promtool")


def module_file(module: str, version: str, path: str) -> bytes:
    """One file of a Go module, from the module zip the proxy serves (checksum-verified)."""
    done = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], env=_go_env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolError(f"go mod download {module}@{version} failed:\n{done.stdout[-1000:]}{done.stderr[-1000:]}")
    with zipfile.ZipFile(json.loads(done.stdout)["Zip"]) as archive:
        return archive.read(f"{module}@{version}/{path}")


def docker_compose() -> str:
    """The docker-compose command, installed from Debian's packages when missing."""
    found = shutil.which("docker-compose")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([*sudo, "apt-get", "update", "-qq"], [*sudo, "apt-get", "install", "-y", "-qq", "docker-compose"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ToolError(f"{' '.join(command)} failed:\n{done.stderr[-1000:]}")
    found = shutil.which("docker-compose")
    if not found:
        raise ToolError("docker-compose is still missing after apt-get install docker-compose")
    return found
