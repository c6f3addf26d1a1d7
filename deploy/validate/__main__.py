"""`make validate-deploy`: render and check the deploy files offline.

    python -m deploy.validate [--kustomization DIR ...] [--compose FILE] [--dockerignore FILE]
                              [--rules FILE] [--rules-test FILE ...] [--dashboard FILE]

Defaults are the repository's own files. Prints one line per check and every problem found,
and exits 1 if there is any. Tools and schemas are fetched into a per-user cache (see tools.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import compose_checks, k8s_policy, k8s_schemas, observability_checks, tools

ROOT = tools.ROOT
OBSERVABILITY = ROOT / "deploy" / "observability"


class Report:
    """Runs the checks, prints one line for each and its problems, and remembers the outcome."""

    def __init__(self) -> None:
        self.results: list[tuple[str, list[str]]] = []

    def check(self, name: str, run: Callable[..., list[str]], *args: Any) -> None:
        self._record(name, lambda: (None, run(*args)))

    def fetch(self, name: str, get: Callable[..., Any], *args: Any) -> Any | None:
        """A tool, schema or rendering the next checks need; None (and a failure) if not had."""
        return self._record(name, lambda: (get(*args), []))

    def _record(self, name: str, run: Callable[[], tuple[Any, list[str]]]) -> Any | None:
        began = time.monotonic()
        try:
            value, problems = run()
        except (tools.ToolError, ValueError, OSError) as error:
            value, problems = None, [str(error)]
        self.results.append((name, problems))
        print(f"{'ok  ' if not problems else 'FAIL'} {name} ({time.monotonic() - began:.1f} s)", flush=True)
        for problem in problems:
            print(f"       {problem}", flush=True)
        return value


def main(argv: list[str] | None = None) -> int:
    args = _with_defaults(_parser().parse_args(argv))
    started = time.monotonic()
    report = Report()

    kustomize = report.fetch("kustomize built from the Go module proxy", tools.kustomize)
    keda = report.fetch("KEDA ScaledObject CRD schema from the Go module proxy",
                        lambda: k8s_schemas.scaled_object_schema(tools.module_file(*tools.KEDA)))
    for kustomization in args.kustomization:
        label = _shown(kustomization)
        docs = kustomize and report.fetch(f"kustomize build {label}", k8s_schemas.render, kustomize, kustomization)
        if not docs:
            continue
        versions = ", ".join(k8s_schemas.KUBERNETES_VERSIONS)
        report.check(f"{label}: built-in kinds, kubernetes-validate strict ({versions})",
                     k8s_schemas.check_builtin_kinds, docs)
        if keda:
            report.check(f"{label}: ScaledObjects against KEDA's CRD schema", k8s_schemas.check_scaled_objects,
                         docs, keda)
        report.check(f"{label}: policy (resources, probes, INSTANCE_ID, replicas <= partitions, secrets, names)",
                     k8s_policy.check_policy, docs)

    compose = _shown(args.compose)
    docker_compose = report.fetch("docker-compose (Debian's package)", tools.docker_compose)
    if docker_compose:
        report.check(f"docker-compose config {compose}", compose_checks.check_docker_compose_config,
                     docker_compose, args.compose)
    report.check(f"{compose} against the compose-spec schema",
                 lambda: compose_checks.check_compose_schema(args.compose, tools.module_file(*tools.COMPOSE_SPEC)))
    report.check(f"{compose} and {_shown(args.dockerignore)}: policy (bindings, health, restarts, IDs)",
                 compose_checks.check_compose_policy, args.compose, args.dockerignore)

    report.check(f"{_shown(args.rules)}: structure and metric names", observability_checks.check_rules, args.rules)
    report.check(f"{_shown(args.dashboard)}: structure and metric names", observability_checks.check_dashboard,
                 args.dashboard)
    report.check("promtool check rules and test rules",
                 lambda: observability_checks.run_promtool(tools.promtool(), args.rules, args.rules_test))

    failed = [name for name, problems in report.results if problems]
    print(f"validate-deploy: {len(report.results) - len(failed)} checks passed, {len(failed)} failed "
          f"in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy.validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kustomization", type=Path, action="append",
                        help="a kustomization directory to render and check (default: base and overlays/example)")
    parser.add_argument("--compose", type=Path, default=ROOT / "docker-compose.yml")
    parser.add_argument("--dockerignore", type=Path, default=ROOT / ".dockerignore")
    parser.add_argument("--rules", type=Path, default=OBSERVABILITY / "alerts.yml")
    parser.add_argument("--rules-test", type=Path, action="append", help="promtool rule unit tests")
    parser.add_argument("--dashboard", type=Path, default=OBSERVABILITY / "grafana-dashboard.json")
    return parser


def _with_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Repeatable options replace their defaults rather than add to them."""
    k8s = ROOT / "deploy" / "k8s"
    args.kustomization = args.kustomization or [k8s / "base", k8s / "overlays" / "example"]
    args.rules_test = args.rules_test or sorted((OBSERVABILITY / "tests").glob("*_test.yml"))
    return args


if __name__ == "__main__":
    sys.exit(main())
