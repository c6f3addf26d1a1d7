"""deploy/observability: the alert rules and the Grafana dashboard, checked for structure and
for the metric and label names they use; promtool checks the rules' PromQL and runs their
unit tests when it is built."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from .metrics import METRICS, TARGET_LABELS, metric_of

REQUIRED_ALERTS = {"StreamConsumerLagGrowing", "StreamDeadLettersIncreasing", "StreamDivergenceDetected",
                   "RedisMemoryNearLimit", "StreamLoopDown", "CohortChangeLatencyHigh"}
SEVERITIES = {"critical", "warning", "info"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
            "bool", "inf", "nan", "le"}
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
MATCHERS = re.compile(r"\{([^}]*)\}")
IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """The series names and the label names a PromQL expression uses (a small tokenizer:
    enough to catch a misspelt name, not a parser; promtool parses)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)  # string literals
    labels = {label.strip() for group in LABEL_LISTS.findall(expr) for label in group.split(",") if label.strip()}
    labels |= {m.group(1) for body in MATCHERS.findall(expr) for m in re.finditer(r"(\w+)\s*(?:=~|!~|!=|=)", body)}
    bare = MATCHERS.sub(" ", LABEL_LISTS.sub(" ", re.sub(r"\[[^\]]*\]", " ", expr)))
    series = {name for name in IDENTIFIER.findall(bare) if name.lower() not in KEYWORDS}
    return series, labels


def check_expr(where: str, expr: str) -> list[str]:
    series, labels = names_in(expr)
    problems = [f"{where}: {name} is not a metric the services export (deploy/validate/metrics.py)"
                for name in sorted(series) if metric_of(name) is None]
    known = set(TARGET_LABELS) | {"le"}
    for name in series:
        if metric_of(name):
            known |= METRICS[metric_of(name)][1]
    problems += [f"{where}: label {label} is on none of the metrics used" for label in sorted(labels - known)]
    return problems


def check_rules(rules_file: Path) -> list[str]:
    problems, alerts = [], set()
    for group in yaml.safe_load(rules_file.read_text())["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            where = f"{rules_file.name}: {name}"
            problems += check_expr(where, rule["expr"])
            if "alert" in rule:
                alerts.add(name)
                if rule.get("labels", {}).get("severity") not in SEVERITIES:
                    problems.append(f"{where}: severity must be one of {sorted(SEVERITIES)}")
                if not {"summary", "description"} <= set(rule.get("annotations", {})):
                    problems.append(f"{where}: needs a summary and a description")
    problems += [f"{rules_file.name}: no alert {name}" for name in sorted(REQUIRED_ALERTS - alerts)]
    return problems


def check_dashboard(dashboard_file: Path) -> list[str]:
    dashboard = json.loads(dashboard_file.read_text())
    problems = [f"{dashboard_file.name}: needs {key}" for key in ("uid", "title", "panels") if not dashboard.get(key)]
    ids, used = set(), set()
    for panel in dashboard.get("panels", []):
        where = f"{dashboard_file.name}: panel {panel.get('title')!r}"
        if panel.get("id") in ids:
            problems.append(f"{where}: id {panel.get('id')} used twice")
        ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue
        if not panel.get("gridPos") or not panel.get("targets"):
            problems.append(f"{where}: needs gridPos and targets")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{where}: must use the dashboard's ${{datasource}} variable")
        for target in panel.get("targets", []):
            problems += check_expr(where, target.get("expr", ""))
            used |= {metric_of(s) for s in names_in(target.get("expr", ""))[0]}
    problems += [f"{dashboard_file.name}: no panel shows {name}" for name in sorted(set(METRICS) - used)]
    return problems


def run_promtool(promtool: Path, rules_file: Path, tests: list[Path]) -> list[str]:
    problems = []
    for command in ([str(promtool), "check", "rules", str(rules_file)],
                    [str(promtool), "test", "rules", *map(str, tests)]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            problems.append(f"promtool {command[1]} {command[2]}: {(done.stdout + done.stderr).strip()}")
    return problems
