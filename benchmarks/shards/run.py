"""Sharded-experiment benchmark: N worker processes, one experiment, one provider budget.

The worked example (``examples/sharded_run.py``) with the issue's provider: 2,000
records, a fake LLM provider limited to 120 calls per 10 s (fixed windows, 429 with
``retry-after`` beyond), each call taking 50 ms. Rows: 2, 4 and 8 worker processes
sharing the task's ``RateLimiter`` through a real ``redis-server``, and the control:
8 processes with no store, each pacing itself alone at 120 per 10 s.

Budgets (``--check`` exits 1 on a miss; a row that loses or doubles a row always exits 1):
every record's row in the experiment exactly once, and the experiment completed; under
1% of the provider's answers 429; makespan within 1.1x of what the provider's limit
allows, ``ceil(N / 120) * 10 s``. The control is reported, not judged.

Usage: ``python benchmarks/shards/run.py [--check] [--smoke] [--procs 2,4,8] [--no-control]``.
``--smoke`` runs 240 records at 120 per 1 s. Writes ``benchmarks/shards/results.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import ROOT, source_state

HERE = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "sharded_run.py"
MAKESPAN_BUDGET, RATE_LIMITED_BUDGET = 1.1, 0.01


def run_row(workers: int, shared: bool, args: argparse.Namespace) -> dict[str, Any]:
    """One run of the example in a fresh process; its figures (or ``error``)."""
    command = [
        sys.executable, str(EXAMPLE), "--workers", str(workers), "--records", str(args.records),
        "--limit", args.limit, "--service-time", str(args.service_time), "--json",
    ]  # fmt: skip
    if not shared:
        command.append("--no-share")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    try:
        figures: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"workers": workers, "shared": shared, "error": done.stderr[-2000:]}
    figures["exit"] = done.returncode
    return figures


def judge(row: dict[str, Any]) -> list[str]:
    """The budgets this row misses (the control is only checked for losses)."""
    if "error" in row:
        return ["the run failed: " + row["error"].strip().splitlines()[-1]]
    missed = []
    if row["records_missing"] or row["rows_twice"] or row["rows"] != row["records"]:
        missed.append("a record's row missing or doubled")
    if not row["shared"]:
        return missed
    if row["status"] != "completed":
        missed.append(f"experiment {row['status']}")
    if row["provider_429"] > RATE_LIMITED_BUDGET * row["provider_calls"]:
        missed.append(f"{row['provider_429']} 429s (budget < 1%)")
    if row["makespan_s"] > MAKESPAN_BUDGET * row["allowed_s"]:
        missed.append(f"makespan {row['makespan_s'] / row['allowed_s']:.2f}x (budget 1.1x)")
    return missed


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table the README carries."""
    lines = [
        "| workers | budget | rows (ok) | missing / twice | provider calls | 429s | max in a "
        "window | makespan | x allowed | status |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        budget = "shared (Redis)" if row["shared"] else "each alone (control)"
        if "error" in row:
            lines.append(f"| {row['workers']} | {budget} | error | | | | | | | |")
            continue
        lines.append(
            f"| {row['workers']} | {budget} | {row['rows']:,} ({row['rows_ok']:,}) | "
            f"{row['records_missing']} / {row['rows_twice']} | {row['provider_calls']:,} | "
            f"{row['provider_429']:,} ({row['provider_429'] / max(row['provider_calls'], 1):.1%})"
            f" | {row['max_per_window']} | {row['makespan_s']:.1f} s | "
            f"{row['makespan_s'] / row['allowed_s']:.2f} | {row['status']} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run every row, print the table, write the results, judge."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--smoke", action="store_true", help="240 records at 120 per 1 s")
    parser.add_argument("--procs", default="2,4,8", help="worker counts sharing the budget")
    parser.add_argument("--no-control", action="store_true", help="skip the control row")
    args = parser.parse_args()
    args.records, args.limit, args.service_time = (
        (240, "120/1", 0.05) if args.smoke else (2000, "120/10", 0.05)
    )
    plan = [(int(k), True) for k in args.procs.split(",")]
    if not args.no_control:
        plan.append((8, False))
    rows = []
    for workers, shared in plan:
        print(f"running {workers} workers, {'shared' if shared else 'control'} ...", flush=True)
        rows.append(run_row(workers, shared, args))
    print(table(rows))
    broken, missed = False, False
    for row in rows:
        for miss in judge(row):
            print(f"MISSED ({row['workers']} workers, shared={row['shared']}): {miss}")
            missed = True
            broken |= not row["shared"] or "row" in miss or "failed" in miss
    if not args.smoke:
        (HERE / "results.json").write_text(
            json.dumps({"source": source_state(), "limit": args.limit, "rows": rows}, indent=2)
            + "\n"
        )
    return 1 if broken or (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
