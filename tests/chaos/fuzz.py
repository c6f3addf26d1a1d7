"""Fuzzing each service's HTTP API with schemathesis (its default checks), from the
service's own `/openapi.json`, with the operator token. Every answer is read back from the
HAR report: no 5xx may occur, and every refusal must be a 4xx whose JSON body has a
"message" naming something. Schemathesis's own failures (conformance of answers to the
schema) are reported beside them."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FuzzResult:
    service: str
    requests: int = 0
    server_errors: int = 0
    refusals_without_message: int = 0
    examples: list[str] = field(default_factory=list)  # a few offending answers, for the log
    conformance: dict[str, int] = field(default_factory=dict)  # schemathesis failure title -> count
    error: str | None = None  # schemathesis could not run at all


def analyse_har(har: dict, result: FuzzResult) -> FuzzResult:
    """Count requests, 5xx answers, and 4xx answers that are not JSON with a non-empty message."""
    for entry in har["log"]["entries"]:
        status = entry["response"]["status"]
        result.requests += 1
        where = f"{entry['request']['method']} {entry['request']['url'].split('?')[0]}"
        text = entry["response"].get("content", {}).get("text", "") or ""
        if status >= 500 or status == 0:
            result.server_errors += 1
            _example(result, f"{status} {where}: {text[:160]}")
        elif status >= 400 and not names_something(text):
            result.refusals_without_message += 1
            _example(result, f"{status} {where}: {text[:160]!r}")
    return result


def names_something(body: str) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("message"), str) and bool(parsed["message"].strip())


def _example(result: FuzzResult, text: str) -> None:
    if len(result.examples) < 5:
        result.examples.append(text)


async def fuzz_service(service: str, base_url: str, admin_token: str, examples: int, seed: int,
                       reports: Path, timeout: float, partner_env: dict[str, str] | None = None,
                       paths: str | None = None) -> FuzzResult:
    """`partner_env`: CHAOS_FUZZ_PARTNER_KEYS and CHAOS_FUZZ_CLIENT_SECRET for fuzz_hooks.py;
    `paths`: a regular expression of the only paths to fuzz (`admin_token` is then whatever
    bearer token those paths take, e.g. a REST API key for the Braze REST API)."""
    result = FuzzResult(service)
    directory = reports / service
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        "schemathesis", "run", f"{base_url}/openapi.json", "--header", f"Authorization: Bearer {admin_token}",
        "--max-examples", str(examples), "--seed", str(seed), "--no-shrink", "--workers", "2", "--continue-on-failure",
        "--request-timeout", "10", "--report", "har,json", "--report-dir", str(directory),
        "--report-har-path", str(directory / "har.json"), "--report-json-path", str(directory / "run.json"),
        *(["--include-path-regex", paths] if paths else []),
    ]
    with (directory / "schemathesis.log").open("wb") as log:
        env = {**os.environ, **(partner_env or {}), "SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("fuzz_hooks.py"))}
        process = await asyncio.create_subprocess_exec(*_executable(command), stdout=log, stderr=log, env=env)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            result.error = f"schemathesis still running after {timeout:.0f} s (killed)"
    try:
        analyse_har(json.loads((directory / "har.json").read_text()), result)
        run = json.loads((directory / "run.json").read_text())
        result.conformance = {f"{f['code']} {f['title']}": f["count"] for f in run.get("failures", [])}
    except (OSError, ValueError, KeyError) as problem:
        result.error = result.error or f"no schemathesis report ({problem}); see {directory}/schemathesis.log"
    return result


def _executable(command: list[str]) -> list[str]:
    """schemathesis from this interpreter's environment, whatever PATH says."""
    import sys

    return [str(Path(sys.executable).with_name("schemathesis")), *command[1:]]
