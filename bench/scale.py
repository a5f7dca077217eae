"""The job engine on SQLite with one worker host beside PostgreSQL + Redis with two, side by side.

Run from anywhere: `.venv/bin/python bench/scale.py [--pace 20] [--only NAME]`. Each scenario
runs bench/engine.py once per set-up (its figures in a JSON file), then one table prints
every figure of both, with the load average of each run (on a busy machine the figures are
not comparable). Scenarios, with submits paced at `--pace` a second (STUDIO_SUBMITS_PER_SECOND):

- `500-polling`: 500 jobs in a burst, 20 s clips, followed by polling;
- `500-webhooks`: the same with webhooks;
- `1000-long`: 1,000 jobs in a burst, 160 s clips (all at the provider at once), polling.

Goals: p95 added latency ≤ 3 s polling and ≤ 1 s with webhooks; ≥ 1,000 in flight; ≤ 12
status calls per job per minute of generation; nothing lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "500-polling": ["--jobs", "500", "--latency", "20"],
    "500-webhooks": ["--jobs", "500", "--latency", "20", "--webhooks"],
    "1000-long": ["--jobs", "1000", "--latency", "160"],
}
SETUPS = {
    "SQLite, 1 host": [],
    "PostgreSQL + Redis, 2 hosts": ["--stack", "--hosts", "2", "--workers", "2"],
}


def cell(figures: dict, key: str) -> str:
    value = figures.get(key)
    if value is None:
        return "n/a"
    if key == "added":
        return " / ".join(f"{v:.2f}" for v in value) + " s"
    if key in ("noticing_p95", "finishing_p95", "all_ended"):
        return f"{value:.2f} s" if key != "all_ended" else f"{value:.1f} s"
    if key == "calls":
        return f"{figures['calls_per_job']:.1f} ({figures['calls_per_minute']:.1f})"
    if key in ("worker_cpu_per_job", "web_cpu_per_job"):
        return f"{value:.3f} s"
    if key == "load":
        return f"{value:.1f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pace", type=int, default=20, help="submits a second (default 20)")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="studio-bench-scale-") as tmp:
        for scenario in args.only or SCENARIOS:
            for setup, extra in SETUPS.items():
                out = Path(tmp) / f"{scenario}-{len(rows)}.json"
                command = [
                    sys.executable, str(ROOT / "bench" / "engine.py"), *SCENARIOS[scenario],
                    "--pace", str(args.pace), *extra, "--json", str(out),
                ]  # fmt: skip
                print(f"== {scenario}, {setup}", flush=True)
                subprocess.run(command, check=True, cwd=ROOT)
                figures = json.loads(out.read_text())
                figures["calls"] = True
                rows.append((scenario, setup, figures))
    columns = [
        ("load", "load"),
        ("added", "added latency p50 / p95 / max"),
        ("noticing_p95", "noticing p95"),
        ("finishing_p95", "finishing p95"),
        ("all_ended", "all ended"),
        ("calls", "status calls per job (per min)"),
        ("worker_cpu_per_job", "worker CPU per job"),
        ("in_flight", "peak at provider"),
        ("lost", "lost"),
        ("duplicated", "duplicated"),
    ]
    print(f"\nSubmits paced at {args.pace} a second (STUDIO_SUBMITS_PER_SECOND).\n")
    print("| run | set-up | " + " | ".join(title for _, title in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for scenario, setup, figures in rows:
        cells = " | ".join(cell(figures, key) for key, _ in columns)
        print(f"| {scenario} | {setup} | {cells} |")


if __name__ == "__main__":
    main()
