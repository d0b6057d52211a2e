"""CPU cost per request: plain aiohttp (floor) vs llmobs_async vs datadog-api-client.

Usage: ``python benchmarks/run.py [--smoke] [--rounds N] [--scenarios a,b] [--clients x,y]``

Starts the loopback server (``server.py``) in its own process, then for every
round, scenario and client runs a fresh worker process (``_worker.py``) that
measures its own CPU time over a timed batch. After each worker the server's
counters are checked: every request arrived and was answered 200. Prints a
Markdown table of medians over the rounds and, unless ``--smoke``, writes
``benchmarks/results.json``. Exits 1 if any worker failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import Server, cores, pin, source_state

from cpu.report import Cell, budget_lines, render, to_json
from cpu.scenarios import BY_NAME, CLIENTS, REQUEST_KINDS, SCENARIOS, Scenario

HERE = Path(__file__).resolve().parent


class CpuServer(Server):
    """``server.py``, the canned answers of the three ``PATCH`` endpoints."""

    script = HERE / "server.py"


def run_worker(server: Server, spec: dict[str, Any], cpu: int | None) -> dict[str, Any]:
    """Run one worker process and check its traffic against the server's counters.

    Returns the worker's JSON result; on any failure it has an ``error`` key.
    """
    scenario = BY_NAME[spec["scenario"]]
    before = server.stats()
    command = [sys.executable, str(HERE / "worker.py"), json.dumps({**spec, "url": server.url})]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pin(process.pid, cpu)
    try:
        stdout, stderr = process.communicate(timeout=spec["timeout"])
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"error": f"timed out after {spec['timeout']} s"}
    lines = stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = stderr.strip().splitlines()[-3:]
        return {"error": f"exit {process.returncode}, no result: {' / '.join(tail)}"}
    if "error" in result or "na" in result:
        return result
    return _check_traffic(scenario, result, before, server.stats())


def _check_traffic(
    scenario: Scenario, result: dict[str, Any], before: dict[str, int], after: dict[str, int]
) -> dict[str, Any]:
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    if delta.get("non_200", 0):
        return {"error": f"the server answered {delta['non_200']} requests with non-200"}
    if scenario.kind in REQUEST_KINDS:
        arrived = sum(delta.get(route, 0) for route in ("experiments", "projects", "records"))
        if arrived != result["sent"]:
            return {"error": f"the worker sent {result['sent']}, the server saw {arrived}"}
    elif delta.get("records_received", 0) < result["records"]:
        return {"error": f"the server received {delta.get('records_received', 0)} records"}
    return result


def _plan(args: argparse.Namespace) -> list[Scenario]:
    names = args.scenarios.split(",") if args.scenarios else [s.name for s in SCENARIOS]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(unknown)}")
    return [BY_NAME[name] for name in names]


def _spec(args: argparse.Namespace, scenario: Scenario, client: str) -> dict[str, Any]:
    if args.smoke:
        count, warmup, timeout = scenario.smoke_count, 0, 60
    else:
        count = max(1, int(scenario.count * args.scale))
        warmup, timeout = max(1, int(scenario.warmup * args.scale)), 900
    if scenario.kind not in REQUEST_KINDS and args.smoke:
        warmup = 100  # update_many is exercised twice, but briefly
    return {
        "scenario": scenario.name,
        "client": client,
        "count": count,
        "warmup": warmup,
        "timeout": timeout,
    }


def _describe(cell: Cell, result: dict[str, Any]) -> str:
    if "error" in result:
        return f"ERROR {result['error']}"
    if "na" in result:
        return str(result["na"])
    unit = "request" if cell.scenario.kind in REQUEST_KINDS else "record"
    count = result[cell.unit_count_key]
    return f"{result['cpu_s'] / count * 1e6:,.1f} µs CPU/{unit}, {count / result['wall_s']:,.0f}/s"


def run(args: argparse.Namespace) -> dict[tuple[str, str], Cell]:
    """Run every round of every scenario and client; return the cells."""
    scenarios = _plan(args)
    clients = args.clients.split(",") if args.clients else list(CLIENTS)
    rounds = 1 if args.smoke else args.rounds
    cells = {(s.name, c): Cell(s, c) for s in scenarios for c in s.clients if c in clients}
    server_cpu, worker_cpu = cores()
    with CpuServer(server_cpu) as server:
        for index in range(rounds):
            for cell in cells.values():
                if cell.na or index >= (cell.scenario.rounds or rounds):
                    continue
                result = run_worker(server, _spec(args, cell.scenario, cell.client), worker_cpu)
                if "error" in result:
                    cell.errors.append(result["error"])
                elif "na" in result:
                    cell.na = result["na"]
                else:
                    cell.rounds.append(result)
                label = f"round {index + 1}/{rounds} {cell.scenario.name} {cell.client}"
                print(f"{label}: {_describe(cell, result)}", file=sys.stderr, flush=True)
    return cells


def _meta(
    args: argparse.Namespace, cells: dict[tuple[str, str], Cell], source: str
) -> dict[str, Any]:
    versions = {c.client: c.rounds[0]["version"] for c in cells.values() if c.rounds}
    return {
        "source": source,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "scale": args.scale,
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark, print the table; 1 if anything failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 tiny round; fail on any error")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per client and scenario")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    parser.add_argument("--scenarios", help="comma-separated scenario names (default: all)")
    parser.add_argument("--clients", help="comma-separated clients (default: all)")
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if a budget is missed")
    args = parser.parse_args(argv)
    source = source_state()
    cells = run(args)
    if source_state() != source:
        print(f"WARNING: the source changed during the run (from {source})", file=sys.stderr)
    print(render(cells))
    failed = [f"{s} {c}: {cell.errors[-1]}" for (s, c), cell in cells.items() if cell.errors]
    if not args.smoke:
        document = to_json(cells, _meta(args, cells, source))
        args.output.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nwrote {args.output}", file=sys.stderr)
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    budgets, within = budget_lines(cells)
    if budgets and not args.smoke:
        print("\nBudgets:\n" + "\n".join(f"- {line}" for line in budgets))
    return 1 if failed or (args.check and not within) else 0


if __name__ == "__main__":
    sys.exit(main())
