"""Rate-limit benchmark: how close to a server's limit does a bulk job finish?

Usage: ``python benchmarks/ratelimit.py [--smoke] [--check] [--clients a,b]
[--cases 20/2x100,...] [--modes fixed,sliding] [--procs 1,2,4] [--latency MS]
[--store-cases 20/2x300,...] [--store-procs 2,4,8]
[--roomy-cases 600/60x400@50,...] [--roomy-multi-cases 6000/60x1600@50] [--roomy-procs 4]``

A case is ``L/PxN``, or ``L/PxN@MS`` with a server service time of MS
milliseconds per answer (``--latency`` gives it to cases without their own).

Starts ``server.py`` (one limit of L requests per P seconds, fixed or
sliding windows, Datadog's ``X-RateLimit-*`` headers) in its own process.
For every row (mode, case, processes, client) it resets the server's limit,
starts K client processes (``clients.py``) that share the job and the
limit, lets them go together, and then checks at the server that every
record was applied. It prints a Markdown table (makespan against what the
limit allows, ``ceil(N/L) * P``; the share of answers that were 429; client
CPU per request; records lost), judges llmobs_async against issue 8's
budget, and writes ``benchmarks/ratelimit/results.json``.

Issue 11's rows run K = 2, 4, 8 processes at 20/2 s and 60/6 s (fixed
windows), each with (``llmobs_async_redis``: ``rate_limit_store=`` a
``redis-server`` started here, flushed before each row) and without the
shared store; a second table compares them, with the Redis round trips per
request. Budget with the store: makespan at most 1.1x of ``ceil(N/L) * P``
and under 1% 429s, for every K.

Issue 15's rows ("the gate never slows a job the limit has room for"): the
server takes 50 ms per answer and the limit has room for the whole job
(600/60 s and 6000/60 s, N = 400, one process, every client; 6000/60 s
shared by 4 processes, N = 1,600). There the ideal is what concurrency
allows, ``ceil(N / (K * 16)) * latency``; budget: at most 1.15x with one
process, 1.3x with four, and no 429 at all.

Exits 1 when a run is broken (a client process failed, the server answered
something other than 200 or 429, another client lost records), and, with
``--check`` only, when llmobs_async misses the budget.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import source_state
from cpu.scenarios import make_record

from ratelimit.procs import HERE, PER_REQUEST, Case, RateServer, RedisProcess, Row, Workers
from ratelimit.report import STORE_CLIENT, budget, render

CLIENTS = ("llmobs_async", "official", "naive")
# Issue 11: several processes, with and without the shared store (Redis).
STORE_CLIENTS = ("llmobs_async", STORE_CLIENT)
DEFAULT_STORE_CASES = "20/2x300,60/6x300"
DEFAULT_STORE_PROCS = "2,4,8"
MODES = ("fixed", "sliding")
DEFAULT_CASES = "20/2x100,20/2x300,60/6x100,60/6x300,40/4x100@50"
# Several processes run on one case only, to keep the full run near 15 minutes.
DEFAULT_MULTI_CASES = "20/2x100"
SMOKE_CASE = "5/1x10"
# Issue 15: limits with room for the whole job, a server that takes 50 ms per answer.
DEFAULT_ROOMY_CASES = "600/60x400@50,6000/60x400@50"
DEFAULT_ROOMY_MULTI = "6000/60x1600@50"
DEFAULT_ROOMY_PROCS = "4"
SMOKE_ROOMY_CASE = "1000/60x32@20"
# The official client costs ~20 ms of CPU a request: 1,600 of them would measure the CPU.
ROOMY_MULTI_CLIENTS = ("llmobs_async", "naive")


def expected_ids(requests: int) -> set[str]:
    """The ids of every record of a job (``rl_clients`` numbers them from 0)."""
    return {make_record(index)["id"] for index in range(requests * PER_REQUEST)}


def best_possible_s(mode: str, row: Row, offset: float) -> float:
    """The least makespan the limit allows from a start ``offset`` s into a fixed window.

    Every window's L requests leave at its very start and answers take no
    time: a lower bound no client reaches, since ``Reset`` is in whole
    seconds. Sliding windows: a burst of L every P seconds. A limit with
    room for the whole job: what concurrency allows.
    """
    case = row.case
    if case.roomy:
        return row.ideal_s
    windows = math.ceil(case.requests / case.limit)
    if mode == "sliding":
        return float((windows - 1) * case.period)
    return max(0.0, (windows - 1) * case.period - offset)


def run_row(
    server: RateServer, row: Row, offset: float, redis: RedisProcess | None
) -> dict[str, Any]:
    """Measure one row; the result has the figures, the server's view and any errors.

    The limit starts only once every process is ready, so the window phase
    the clients meet is ``offset``, whatever their start-up took. A row with
    the shared store starts from an empty Redis, as its limit starts afresh.
    """
    timeout = 60 + 8 * row.ideal_s
    url = None
    if row.client == STORE_CLIENT:
        assert redis is not None
        redis.flush()
        url = redis.url
    with Workers(row, server.url, url) as workers:
        failed = workers.wait_ready(timeout=60)
        server.reset(row, offset)
        if failed:
            results = [{"error": failed}]
        else:
            workers.go()
            results = workers.results(deadline=time.monotonic() + timeout)
    return summarize(row, offset, results, server.stats())


def summarize(
    row: Row, offset: float, results: list[dict[str, Any]], stats: dict[str, Any]
) -> dict[str, Any]:
    """The row's figures from its processes' results and the server's counters."""
    answers = {int(status): count for status, count in stats["answers"].items()}
    answered = sum(answers.values())
    limited = answers.get(429, 0)
    applied = set(stats["applied_ids"])
    expected = expected_ids(row.case.requests)
    errors = [r["error"] for r in results if "error" in r]
    measured = [r for r in results if "error" not in r]
    out: dict[str, Any] = {
        "mode": row.mode,
        "limit": row.case.limit,
        "period_s": row.case.period,
        "latency_ms": row.case.latency_ms,
        "roomy": row.case.roomy,
        "requests": row.case.requests,
        "procs": row.procs,
        "client": row.client,
        "control": row.control,
        "window_offset_s": offset,
        "ideal_s": row.ideal_s,
        "best_possible_s": best_possible_s(row.mode, row, offset),
        "answered": answered,
        "ok": answers.get(200, 0),
        "rate_limited": limited,
        "other_statuses": {s: n for s, n in answers.items() if s not in (200, 429)},
        "share_429": limited / answered if answered else 0.0,
        "lost": len(expected - applied),
        "unexpected": len(applied - expected),
        "applied_twice": len(stats["applied_ids"]) - len(applied),
        "max_in_flight": stats.get("max_in_flight"),
        "server_cpu_s": stats.get("server_cpu_s"),
        "errors": errors,
        "processes": results,
    }
    if measured and not errors:
        makespan = max(r["end"] for r in measured) - min(r["start"] for r in measured)
        cpu = sum(r["cpu_s"] for r in measured)
        calls = [r["reported"].get("redis_calls") for r in measured]
        if all(isinstance(c, int) for c in calls):
            out["redis_calls_per_request"] = sum(calls) / row.case.requests
        out.update(
            makespan_s=makespan,
            ratio=makespan / row.ideal_s,
            cpu_s=cpu,
            cpu_ms_per_request=cpu / row.case.requests * 1e3,
        )
    out["budget"] = budget(out)
    return out


def broken(result: dict[str, Any]) -> list[str]:
    """Why a row's run is not a valid measurement (not a budget verdict)."""
    problems = [f"client process: {error}" for error in result["errors"]]
    if result["other_statuses"]:
        problems.append(f"answers other than 200/429: {result['other_statuses']}")
    if result["unexpected"]:
        problems.append(f"{result['unexpected']} unknown record ids applied")
    if result["lost"] and result["client"] != "llmobs_async":
        problems.append(f"{result['lost']} records LOST")
    return problems


def _split(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (choose from {allowed})")
    return names


def _cases(text: str, latency_ms: int = 0) -> list[Case]:
    return [Case.parse(case, latency_ms) for case in text.split(",") if case.strip()]


def plan(args: argparse.Namespace) -> list[Row]:
    """The rows to run, in order: by mode, then case, then processes, then client."""
    clients = _split(
        args.clients or ("llmobs_async" if args.smoke else ",".join(CLIENTS)), CLIENTS, "clients"
    )
    modes = _split(args.modes or ("fixed" if args.smoke else ",".join(MODES)), MODES, "modes")
    procs = [int(k) for k in (args.procs or ("1" if args.smoke else "1,2,4")).split(",")]
    cases = _cases(args.cases or (SMOKE_CASE if args.smoke else DEFAULT_CASES), args.latency)
    multi = _cases(
        args.multi_cases or args.cases or (SMOKE_CASE if args.smoke else DEFAULT_MULTI_CASES),
        args.latency,
    )
    if min(procs) < 1 or max(procs) > min(c.requests for c in [*cases, *multi]):
        raise SystemExit("--procs must be between 1 and the smallest N")
    rows = [
        Row(mode, case, k, client)
        for mode in modes
        for case in dict.fromkeys([*cases, *multi])
        for k in procs
        if (case in cases if k == 1 else case in multi)
        for client in clients
    ]
    return list(dict.fromkeys(rows + _roomy_rows(args, clients) + _store_rows(args)))


def _roomy_rows(args: argparse.Namespace, clients: list[str]) -> list[Row]:
    """Issue 15's rows: limits with room for the job, a server with a service time."""
    if args.roomy_cases == "none":
        return []
    one = _cases(
        args.roomy_cases or (SMOKE_ROOMY_CASE if args.smoke else DEFAULT_ROOMY_CASES),
        args.latency,
    )
    several = [] if args.smoke else _cases(args.roomy_multi_cases or DEFAULT_ROOMY_MULTI)
    procs = [int(k) for k in (args.roomy_procs or DEFAULT_ROOMY_PROCS).split(",")]
    if any(not case.roomy for case in [*one, *several]):
        raise SystemExit("roomy cases need N <= L and a latency (L/PxN@MS)")
    # A smoke job is too short for the budget (its probe alone is a third of it): not judged.
    rows = [Row("fixed", case, 1, client, control=args.smoke) for case in one for client in clients]
    rows += [
        Row("fixed", case, k, client)
        for case in several
        for k in procs
        for client in clients
        if client in ROOMY_MULTI_CLIENTS
    ]
    return rows


def _store_rows(args: argparse.Namespace) -> list[Row]:
    """Issue 11's rows: K processes with and without the shared store (``--store-*``)."""
    text = args.store_cases or (SMOKE_CASE if args.smoke else DEFAULT_STORE_CASES)
    if text == "none":
        return []
    cases = _cases(text)
    procs = [
        int(k)
        for k in (args.store_procs or ("2" if args.smoke else DEFAULT_STORE_PROCS)).split(",")
    ]
    modes = _split(args.store_modes or "fixed", MODES, "modes")
    clients = _split(
        args.store_clients or (STORE_CLIENT if args.smoke else ",".join(STORE_CLIENTS)),
        STORE_CLIENTS,
        "store clients",
    )
    if min(procs) < 1 or max(procs) > min(c.requests for c in cases):
        raise SystemExit("--store-procs must be between 1 and the smallest N")
    # Without the store, K processes are issue 8's gate colliding (what the store is for):
    # those rows are the control, measured for comparison and not judged.
    return [
        Row(mode, case, k, client, control=client != STORE_CLIENT)
        for mode in modes
        for case in cases
        for k in procs
        for client in clients
    ]


def _versions() -> dict[str, str]:
    versions = {}
    for package in ("llmobs-async", "datadog-api-client", "aiohttp", "aiosonic"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return versions


def _progress(index: int, total: int, row: Row, result: dict[str, Any]) -> None:
    if "ratio" in result:
        figures = (
            f"{result['makespan_s']:.1f} s = {result['ratio']:.2f}x, "
            f"429 {result['rate_limited']}/{result['answered']}, "
            f"in flight at most {result['max_in_flight']}, "
            f"server CPU {result['server_cpu_s']:.1f} s, "
            f"CPU {result['cpu_ms_per_request']:.2f} ms/request, lost {result['lost']}"
        )
    else:
        figures = f"ERROR {'; '.join(result['errors'])}"
    verdict = f" [{result['budget']}]" if result["budget"] else ""
    print(f"[{index}/{total}] {row.label()}: {figures}{verdict}", file=sys.stderr, flush=True)
    if result["lost"]:
        print(f"!!! {row.label()}: {result['lost']} RECORDS LOST", file=sys.stderr, flush=True)


def run(rows: list[Row], seed: int) -> list[dict[str, Any]]:
    """Run every row against one server process, printing progress to stderr.

    The clients of one mode, case and process count meet the same window
    phase, drawn at random from ``seed``, so their rows compare.
    """
    phases = random.Random(seed)
    offsets: dict[tuple[str, Case, int], float] = {}
    out = []
    needs_redis = any(row.client == STORE_CLIENT for row in rows)
    with (
        RateServer() as server,
        RedisProcess() if needs_redis else contextlib.nullcontext() as redis,
    ):
        for index, row in enumerate(rows, start=1):
            key = (row.mode, row.case, row.procs)
            offset = offsets.setdefault(key, phases.random() * row.case.period)
            result = run_row(server, row, offset, redis)
            _progress(index, len(rows), row, result)
            out.append(result)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"tiny: {SMOKE_CASE}, fixed, K=1")
    parser.add_argument("--seed", type=int, help="seed of the window phases (default: random)")
    parser.add_argument("--check", action="store_true", help="exit 1 if llmobs_async misses")
    parser.add_argument("--clients", help=f"comma-separated, from {','.join(CLIENTS)}")
    parser.add_argument("--cases", help=f"L/PxN list (default {DEFAULT_CASES})")
    parser.add_argument("--modes", help="fixed,sliding (default both)")
    parser.add_argument("--procs", help="process counts K sharing the limit (default 1,2,4)")
    parser.add_argument(
        "--latency",
        type=int,
        default=0,
        help="server service time in ms for cases without their own @MS (default 0)",
    )
    parser.add_argument(
        "--roomy-cases",
        help=f"issue 15, one process: L/PxN@MS with N <= L (default {DEFAULT_ROOMY_CASES}; "
        "'none' skips every roomy row)",
    )
    parser.add_argument(
        "--roomy-multi-cases", help=f"issue 15, several processes (default {DEFAULT_ROOMY_MULTI})"
    )
    parser.add_argument(
        "--roomy-procs", help=f"process counts for those (default {DEFAULT_ROOMY_PROCS})"
    )
    parser.add_argument(
        "--multi-cases",
        help=f"cases run with K > 1 (default: --cases if given, else {DEFAULT_MULTI_CASES})",
    )
    parser.add_argument(
        "--store-cases",
        help=f"cases run with and without the shared store (default {DEFAULT_STORE_CASES}; "
        "'none' skips them)",
    )
    parser.add_argument(
        "--store-procs", help=f"process counts for the store cases (default {DEFAULT_STORE_PROCS})"
    )
    parser.add_argument("--store-modes", help="modes for the store cases (default fixed)")
    parser.add_argument("--store-clients", help=f"from {','.join(STORE_CLIENTS)} (default both)")
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON results (default: benchmarks/ratelimit/results.json; none with --smoke)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the rows, print the table and the budget verdict; see the module doc for the exit."""
    args = _parser().parse_args(argv)
    rows = plan(args)
    source, started = source_state(), time.monotonic()
    seed = random.SystemRandom().randrange(2**32) if args.seed is None else args.seed
    print(f"{len(rows)} rows; source {source}; --seed {seed}", file=sys.stderr, flush=True)
    results = run(rows, seed)
    if source_state() != source:
        print(f"WARNING: the source changed during the run (from {source})", file=sys.stderr)
    print(render(results))
    output = args.output or (None if args.smoke else HERE / "results.json")
    if output is not None:
        meta = {
            "source": source,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - started, 1),
            "seed": seed,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "versions": _versions(),
        }
        output.write_text(json.dumps({"meta": meta, "rows": results}, indent=2) + "\n")
        print(f"wrote {output}", file=sys.stderr)
    failures = [
        f"{r['client']} {r['mode']} {r['limit']}/{r['period_s']}s N={r['requests']} "
        f"K={r['procs']}: {p}"
        for r in results
        for p in broken(r)
    ]
    for line in failures:
        print(f"BROKEN RUN {line}", file=sys.stderr)
    missed = [r for r in results if r["budget"] and r["budget"] != "PASS"]
    return 1 if failures or (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
