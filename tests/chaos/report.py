"""The suite's table: every fault injected with its count, every count checked, each marked
when it must be zero and is not; printed, and written to results/latest.{md,json}."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    section: str
    name: str
    value: int | str
    must_be_zero: bool = False

    @property
    def failed(self) -> bool:
        return self.must_be_zero and self.value != 0


def machine() -> str:
    import psutil

    return (f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB, Python "
            f"{platform.python_version()}; Kafka, Redis, the services and the harness all on it")


def render(meta: dict, rows: list[Row]) -> str:
    lines = [f"Machine: {meta['machine']}.",
             f"Profile `{meta['profile']}`, seed {meta['seed']}, {meta['brokers']} Kafka broker(s), "
             f"faults {'on' if meta['faults'] else 'OFF (--no-faults)'}; "
             + ", ".join(f"{k} {v:.0f} s" for k, v in meta["durations"].items()) + ".", "",
             "| section | check | value | |", "| --- | --- | --- | --- |"]
    for row in rows:
        value = f"{row.value:,}" if isinstance(row.value, int) else row.value
        mark = "FAIL" if row.failed else ("0 required" if row.must_be_zero else "")
        lines.append(f"| {row.section} | {row.name} | {value} | {mark} |")
    failed = [r for r in rows if r.failed]
    lines += ["", f"Result: {'PASS' if not failed else 'FAIL'}: {len(failed)} check(s) not at zero."]
    return "\n".join(lines) + "\n"


def write(meta: dict, rows: list[Row], notes: list[str], directory: Path = RESULTS) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = render(meta, rows)
    if notes:
        text += "\nNotes:\n" + "".join(f"- {n}\n" for n in notes)
    (directory / "latest.md").write_text(text)
    payload = {**meta, "rows": [asdict(r) | {"failed": r.failed} for r in rows], "notes": notes,
               "passed": not any(r.failed for r in rows)}
    (directory / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
