"""Experiments benchmark: one experiment, by hand, by ``experiments.run`` and by ddtrace.

10,000 records, an async task that sleeps 20 ms, two evaluators (a boolean exact match and
a score), concurrency 50, against the fake API in its own process (20 ms service time on
every request) answering 5% of events pushes 503, 3% 429 and dropping 2% of their
connections. Rows, in one run (each in a fresh worker process, ``--rounds`` times):

- ``handrolled``: the floor, plain asyncio over ``records.list`` and ``events.create``;
- ``runner``: ``client.experiments.run(...)``; ``runner_async_evaluators``: the same with
  the evaluators as ``async def`` (no thread pool: what the pool's hop costs);
- ``ddtrace``: ``LLMObs.async_experiment(...).run(jobs=50)`` in ddtrace's own venv,
  pointed at the fake with ``DD_LLMOBS_OVERRIDE_ORIGIN``; ``ddtrace_intake_faults``: the
  same with the faults on its span intake too (where its task spans go);
- ``runner_rss``: the runner over 100,000 records, for its peak RSS growth.

Each row is checked against what the fake stored: one span per (record, run) and one
metric per evaluator per span, each accepted once. ``--check`` exits 1 when a budget is
missed (see ``budgets``); a row that errors or loses data in its lossless rows always exits 1.

Usage: ``python benchmarks/experiments/run.py [--check] [--smoke] [--rows ...]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import BENCHMARKS, ROOT, Server, cores, pin, source_state

HERE = Path(__file__).resolve().parent
ROWS = ("handrolled", "runner", "runner_async_evaluators", "ddtrace", "ddtrace_intake_faults")
DDTRACE_PYTHON = ROOT / ".venv-ddtrace" / "bin" / "python"
MAKESPAN_BUDGET, CPU_BUDGET, RSS_BUDGET_MIB = 1.15, 1.3, 100.0
LOSSES = {
    "spans_lost": ("rows_missing",),
    "spans_duplicated": ("rows_with_several_spans", "spans_accepted_twice"),
    "metrics_lost": ("metrics_missing",),
    "metrics_duplicated": ("metrics_duplicated", "metrics_accepted_twice"),
}
"""The four loss figures, from the server's check (a metric whose span was lost counts
with its span: the row is lost; the check's ``metrics_without_span`` shows them)."""


class ExperimentsServer(Server):
    """``with ExperimentsServer(cpu, *args) as server``: the fake, seeded, faults on events."""

    script = BENCHMARKS / "experiments" / "server.py"

    def get(self, path: str) -> dict[str, Any]:
        """GET a JSON answer from the server (``/_stats``, ``/_check/...``)."""
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.url + path, timeout=60) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer


def run_worker(
    server: ExperimentsServer, row: str, spec: dict[str, Any], cpu: int | None, timeout: float
) -> dict[str, Any]:
    """One fresh worker for one row; its figures and the server's check (or ``error``)."""
    if row.startswith("ddtrace"):
        python = Path(spec["python"])
        if not python.exists():
            return {"error": f"no {python}: run `make .venv-ddtrace/.installed`"}
        command = [str(python), str(HERE / "ddtrace_worker.py")]
    else:
        command = [sys.executable, str(HERE / "worker.py")]
    process = subprocess.Popen(
        [*command, json.dumps(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    pin(process.pid, cpu)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    try:
        result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = " / ".join(stderr.strip().splitlines()[-3:])
        return {"error": f"exit {process.returncode}, no result: {tail}"}
    if "error" in result:
        return result
    query = f"?dataset={spec['dataset_id']}&runs=1"
    result["check"] = server.get(f"/_check/{result['experiment_id']}{query}")
    check = result["check"]
    for figure, keys in LOSSES.items():
        result[figure] = sum(check[key] for key in keys)
    result["lost"] = sum(result[figure] for figure in LOSSES)
    return result


def server_args(args: argparse.Namespace, *, big: int = 0, intake: bool = False) -> list[str]:
    """The server's command line."""
    rates = ",".join(map(str, args.rates))
    extra = ["--intake-faults"] if intake else []
    return [
        *("--records", str(args.records), "--big-records", str(big)),
        *("--latency", str(args.latency), "--seed", str(args.seed), "--rates", rates),
        *extra,
    ]


def measure(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Every round of every row (and the RSS row); each row's list of round results."""
    server_cpu, worker_cpu = cores()
    rows: dict[str, list[dict[str, Any]]] = {row: [] for row in args.rows}
    plain = [row for row in args.rows if row != "ddtrace_intake_faults"]
    timeout = 60 + args.records * 0.05
    with ExperimentsServer(server_cpu, *server_args(args, big=args.rss_records)) as server:
        stats = server.get("/_stats")
        by_size = {count: dataset for dataset, count in stats["datasets"].items()}
        spec = {
            "url": server.url,
            "project_id": stats["project_id"],
            "dataset_id": by_size[args.records],
            "concurrency": args.concurrency,
            "chunk": args.chunk,
        }
        for index in range(args.rounds):
            for row in plain[index % len(plain) :] + plain[: index % len(plain)]:
                _progress(f"round {index + 1}/{args.rounds}: {row}")
                client = "runner" if row.startswith("runner") else "handrolled"
                row_spec = {**spec, "client": client, "python": args.ddtrace_python}
                row_spec["async_evaluators"] = row == "runner_async_evaluators"
                if args.profile:
                    row_spec["profile"] = f"{args.profile}.{row}.{index + 1}"
                rows[row].append(run_worker(server, row, row_spec, worker_cpu, timeout))
        if args.rss_records:
            _progress(f"runner over {args.rss_records:,} records (peak RSS)")
            big = {**spec, "client": "runner", "dataset_id": by_size[args.rss_records]}
            rows["runner_rss"] = [
                run_worker(server, "runner", big, worker_cpu, 60 + args.rss_records * 0.05)
            ]
    if "ddtrace_intake_faults" in args.rows:
        with ExperimentsServer(server_cpu, *server_args(args, intake=True)) as server:
            stats = server.get("/_stats")
            spec = {"url": server.url, "concurrency": args.concurrency}
            spec["python"] = args.ddtrace_python
            spec["dataset_id"] = next(iter(stats["datasets"]))
            for index in range(args.rounds):
                _progress(f"round {index + 1}/{args.rounds}: ddtrace_intake_faults")
                rows["ddtrace_intake_faults"].append(
                    run_worker(server, "ddtrace_intake_faults", spec, worker_cpu, timeout)
                )
    return rows


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def summarize(args: argparse.Namespace, rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per row: median makespan and CPU per record over its good rounds, losses, errors."""
    task_s = math.ceil(args.records / args.concurrency) * 0.020
    summary: dict[str, Any] = {}
    for row, rounds in rows.items():
        good = [r for r in rounds if "error" not in r]
        records = args.rss_records if row == "runner_rss" else args.records
        cell: dict[str, Any] = {
            "records": records,
            "rounds": len(rounds),
            "errors": [r["error"] for r in rounds if "error" in r],
        }
        if good:
            cell["makespan_s"] = statistics.median(r["wall_s"] for r in good)
            cell["cpu_us_per_record"] = statistics.median(r["cpu_s"] for r in good) / records * 1e6
            cell["rss_growth_mib"] = max(r["rss_growth_mib"] for r in good)
            cell["lost_or_duplicated"] = max(r["lost"] for r in good)
            for figure in LOSSES:
                cell[figure] = max(r[figure] for r in good)
            cell["worst_check"] = max(good, key=lambda r: r["lost"])["check"]
            cell["pushes"] = good[-1]["check"]["pushes"]
        summary[row] = cell
    floor = summary.get("handrolled", {})
    if "makespan_s" in floor:
        summary["_derived"] = {
            "task_s": task_s,
            "push_s": floor["makespan_s"] - task_s,
            "makespan_budget_s": MAKESPAN_BUDGET * floor["makespan_s"],
            "cpu_budget_us": CPU_BUDGET * floor["cpu_us_per_record"],
        }
    return summary


def budgets(summary: dict[str, Any]) -> dict[str, bool | None]:
    """The issue's budgets for the runner (``None``: not measured in this run)."""
    runner, derived = summary.get("runner", {}), summary.get("_derived", {})
    rss = summary.get("runner_rss", {})

    def ok(cell: dict[str, Any], key: str, limit: float | None) -> bool | None:
        if cell.get("errors"):
            return False
        if key not in cell or limit is None:
            return None
        return bool(cell[key] <= limit)

    return {
        "runner: 0 spans or metrics lost or duplicated": ok(runner, "lost_or_duplicated", 0),
        f"runner: makespan <= {MAKESPAN_BUDGET}x (task time + hand-rolled push time)": ok(
            runner, "makespan_s", derived.get("makespan_budget_s")
        ),
        f"runner: CPU per record <= {CPU_BUDGET}x hand-rolled": ok(
            runner, "cpu_us_per_record", derived.get("cpu_budget_us")
        ),
        f"runner: peak RSS growth < {RSS_BUDGET_MIB:.0f} MB over the big dataset": ok(
            rss, "rss_growth_mib", RSS_BUDGET_MIB
        ),
        "runner_rss: 0 spans or metrics lost or duplicated": ok(rss, "lost_or_duplicated", 0),
    }


def table(summary: dict[str, Any]) -> str:
    """The Markdown table."""
    derived = summary.get("_derived", {})
    lines = [
        "| row | records | makespan s | x (task + push) | CPU µs/record | x hand-rolled "
        "| spans lost / dup | metrics lost / dup | peak RSS growth MB | pushes by answer |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    floor = summary.get("handrolled", {})
    for row, cell in summary.items():
        if row.startswith("_"):
            continue
        if "makespan_s" not in cell:
            lines.append(f"| {row} | {cell['records']:,} | error: {cell['errors'][0]} |")
            continue
        base = derived.get("task_s", 0) + derived.get("push_s", 0)
        ratio = f"{cell['makespan_s'] / base:.2f}" if base and row != "runner_rss" else ""
        cpu_ratio = (
            f"{cell['cpu_us_per_record'] / floor['cpu_us_per_record']:.2f}"
            if "cpu_us_per_record" in floor
            else ""
        )
        pushes = ", ".join(f"{k}: {v}" for k, v in cell["pushes"].items())
        lines.append(
            f"| {row} | {cell['records']:,} | {cell['makespan_s']:.2f} | {ratio} "
            f"| {cell['cpu_us_per_record']:.0f} | {cpu_ratio} "
            f"| {cell['spans_lost']} / {cell['spans_duplicated']} "
            f"| {cell['metrics_lost']} / {cell['metrics_duplicated']} "
            f"| {cell['rss_growth_mib']:.1f} | {pushes} |"
        )
    if derived:
        lines.append(
            f"\ntask time ceil(N/C) x 20 ms = {derived['task_s']:.2f} s; hand-rolled push time "
            f"(its makespan - task time) = {derived['push_s']:.2f} s; makespan budget "
            f"{derived['makespan_budget_s']:.2f} s; CPU budget {derived['cpu_budget_us']:.0f} µs"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.02, help="the fake's service time")
    parser.add_argument("--chunk", type=int, default=500, help="hand-rolled push size (items)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rss-records", type=int, default=100_000, help="0: no RSS row")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"of {', '.join(ROWS)}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ddtrace-python", default=str(DDTRACE_PYTHON), help="Python of a venv with ddtrace"
    )
    parser.add_argument(
        "--rates",
        type=lambda text: tuple(float(r) for r in text.split(",")),
        default=(0.05, 0.03, 0.02),
        help="503, 429 and dropped-connection rates on the events push",
    )
    parser.add_argument("--profile", help="cProfile the runner rows into PROFILE.<round>")
    parser.add_argument("--check", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument(
        "--smoke", action="store_true", help="300 records, more faults, 1 round, no ddtrace"
    )
    parser.add_argument("--output", default=str(HERE / "results.json"))
    args = parser.parse_args()
    if args.smoke:
        args.records, args.rounds, args.rss_records = 300, 1, 0
        args.rows, args.chunk, args.rates = "handrolled,runner", 100, (0.2, 0.1, 0.1)
    args.rows = args.rows.split(",")
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        raise SystemExit(f"unknown rows: {', '.join(sorted(unknown))}")
    rows = measure(args)
    summary = summarize(args, rows)
    verdicts = budgets(summary)
    print(table(summary))
    for name, verdict in verdicts.items():
        print(f"{'n/a ' if verdict is None else 'ok  ' if verdict else 'FAIL'} {name}")
    invalid = [
        row
        for row in ("handrolled", "runner", "runner_rss")
        if summary.get(row, {}).get("errors") or summary.get(row, {}).get("lost_or_duplicated")
    ]
    if invalid:
        print(f"FAIL errors or losses in: {', '.join(invalid)}")
    if not args.smoke:
        with open(args.output, "w") as out:
            json.dump(
                {
                    "commit": source_state(),
                    "options": {k: v for k, v in vars(args).items() if k != "output"},
                    "summary": summary,
                    "budgets": verdicts,
                    "rounds": rows,
                },
                out,
                indent=2,
            )
    missed = args.check and any(v is False for v in verdicts.values())
    return 1 if invalid or missed else 0


if __name__ == "__main__":
    sys.exit(main())
