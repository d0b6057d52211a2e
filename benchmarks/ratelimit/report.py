"""Budgets (issue 8; issue 11 for the shared store; issue 15 for limits with room) and tables."""

from __future__ import annotations

from typing import Any

JUDGED = "llmobs_async"
STORE_CLIENT = "llmobs_async_redis"
# With the shared store, any K: (bound on makespan / ideal, max 429 share).
STORE_BUDGET = (1.10, 0.01)
# One process: (bound on makespan / ideal, whether the bound itself passes, max 429 share).
ONE_PROCESS = {"fixed": (1.05, True, 0.01), "sliding": (1.15, False, 0.01)}
SEVERAL_MAX_429 = 0.10
# A limit with room for the whole job (issue 15): makespan over ceil(N / (K * 16)) * latency,
# by processes; no 429 at all.
ROOMY_BUDGET = {1: 1.15}
ROOMY_SEVERAL = 1.30


def budget(result: dict[str, Any]) -> str:
    """``"PASS"``, ``"FAIL: why"`` for an llmobs_async row, ``""`` for other clients.

    One process: makespan at most 1.05x of ``ceil(N/L) * P`` with under 1%
    429s in fixed windows, under 1.15x and 1% in sliding ones. Several
    processes sharing the limit: under 10% 429s. With the shared store (issue
    11), any number of processes: at most 1.1x and under 1% 429s. A limit
    with room for the whole job (issue 15): at most 1.15x of what concurrency
    allows with one process, 1.3x with several, no 429. No record lost, ever.
    """
    if result["client"] not in (JUDGED, STORE_CLIENT) or result.get("control"):
        return ""
    if result["errors"]:
        return "FAIL: the client failed"
    problems = []
    share = result["share_429"]
    if result.get("roomy"):
        # The limit has room: only concurrency may bind the job (issue 15).
        bound = ROOMY_BUDGET.get(result["procs"], ROOMY_SEVERAL)
        if result["ratio"] > bound:
            problems.append(f"{result['ratio']:.2f}x > {bound:.2f}x")
        if result["rate_limited"]:
            problems.append(f"{result['rate_limited']} answered 429 (none allowed)")
    elif result["client"] == STORE_CLIENT:
        bound, max_share = STORE_BUDGET
        if result["ratio"] > bound:
            problems.append(f"{result['ratio']:.2f}x > {bound:.2f}x")
        if share >= max_share:
            problems.append(f"429 share {share:.1%} >= {max_share:.0%}")
    elif result["procs"] == 1:
        bound, inclusive, max_share = ONE_PROCESS[result["mode"]]
        ratio = result["ratio"]
        if ratio > bound or (ratio == bound and not inclusive):
            problems.append(f"{ratio:.2f}x {'>' if inclusive else '>='} {bound:.2f}x")
        if share >= max_share:
            problems.append(f"429 share {share:.1%} >= {max_share:.0%}")
    elif share >= SEVERAL_MAX_429:
        problems.append(f"429 share {share:.1%} >= {SEVERAL_MAX_429:.0%}")
    if result["lost"]:
        problems.append(f"{result['lost']} records lost")
    return "FAIL: " + ", ".join(problems) if problems else "PASS"


def _row(result: dict[str, Any]) -> str:
    client = result["client"] + (" (control)" if result.get("control") else "")
    latency = f" @{result['latency_ms']} ms" if result.get("latency_ms") else ""
    head = (
        f"| {result['mode']} | {result['limit']} per {result['period_s']} s{latency} "
        f"| {result['requests']} | {result['procs']} | {client} "
    )
    if "ratio" not in result:
        error = "; ".join(result["errors"])[:120]
        return head + f"| error: {error} | | | | | | {result['budget']} |"
    return head + (
        f"| {result['makespan_s']:.2f} s / {result['ideal_s']:g} s | {result['ratio']:.2f}x "
        f"| {result['best_possible_s'] / result['ideal_s']:.2f}x "
        f"| {result['share_429']:.1%} ({result['rate_limited']}/{result['answered']}) "
        f"| {result['cpu_ms_per_request']:.2f} | {result['lost']} | {result['budget']} |"
    )


def render(results: list[dict[str, Any]]) -> str:
    """The table, one line per row, then the overall verdict for llmobs_async."""
    lines = [
        "| mode | limit | requests (N) | processes | client | makespan / ideal "
        "| ratio | lower bound | 429 share | CPU ms/request | records lost | budget |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_row(result) for result in results]
    groups = (
        (JUDGED, False, "issue 8"),
        (STORE_CLIENT, False, "issue 11"),
        (JUDGED, True, "issue 15 (limits with room)"),
        (STORE_CLIENT, True, "issue 15 (limits with room)"),
    )
    for client, roomy, issue in groups:
        judged = [
            r
            for r in results
            if r["budget"] and r["client"] == client and bool(r.get("roomy")) == roomy
        ]
        missed = [r for r in judged if r["budget"] != "PASS"]
        if judged:
            verdict = f"FAIL ({len(missed)} of {len(judged)} rows)" if missed else "PASS"
            lines += ["", f"{client} against {issue}'s budget: {verdict}"]
    lines += roomy_table(results)
    lines += store_table(results)
    return "\n".join(lines)


def roomy_table(results: list[dict[str, Any]]) -> list[str]:
    """Issue 15's comparison: each limit with room, every client, against concurrency."""
    rows: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in results:
        if r.get("roomy") and "ratio" in r and not r.get("control"):
            rows.setdefault((*_where(r), r["latency_ms"]), {})[r["client"]] = r
    if not rows:
        return []
    clients = [
        c for c in (JUDGED, STORE_CLIENT, "naive", "official") if any(c in v for v in rows.values())
    ]
    names = {
        JUDGED: "llmobs_async",
        STORE_CLIENT: "llmobs_async + Redis store",
        "naive": "plain aiohttp with backoff",
        "official": "official client",
    }
    lines = [
        "",
        "Limits with room (issue 15): makespan over ceil(N / (K * 16)) * latency, 429 share",
        "",
        "| limit | requests (N) | processes | latency | "
        + " | ".join(names[c] for c in clients)
        + " |",
        "|---|---:|---:|---:|" + "---:|" * len(clients),
    ]
    for (_, limit, period, requests, procs, latency), by_client in rows.items():
        cells = []
        for c in clients:
            got = by_client.get(c)
            cell = "" if got is None else f"{got['ratio']:.2f}x, {got['share_429']:.1%} 429"
            cells.append(f"**{cell}**" if c == JUDGED and cell else cell)
        lines.append(
            f"| {limit} per {period} s | {requests} | {procs} | {latency} ms | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def store_table(results: list[dict[str, Any]]) -> list[str]:
    """Issue 11's comparison: each (mode, case, K) without and with the shared store."""
    with_store = {_where(r): r for r in results if r["client"] == STORE_CLIENT and "ratio" in r}
    if not with_store:
        return []
    without = {
        _where(r): r
        for r in sorted(results, key=lambda r: bool(r.get("control")))
        if r["client"] == JUDGED and "ratio" in r
    }
    lines = [
        "",
        "| window | limit, requests | processes | without the store | with the store (Redis) "
        "| Redis calls per request | CPU ms/request without → with |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for where, shared in with_store.items():
        mode, limit, period, requests, procs = where
        alone = without.get(where)
        before = "" if alone is None else f"{alone['ratio']:.2f}x, {alone['share_429']:.1%} 429"
        cpu = f"{shared['cpu_ms_per_request']:.2f}"
        if alone is not None:
            cpu = f"{alone['cpu_ms_per_request']:.2f} → {cpu}"
        lines.append(
            f"| {mode} | {limit}/{period} s x {requests} | {procs} | {before} "
            f"| **{shared['ratio']:.2f}x, {shared['share_429']:.1%} 429** "
            f"| {shared.get('redis_calls_per_request', float('nan')):.2f} | {cpu} |"
        )
    return lines


def _where(result: dict[str, Any]) -> tuple[Any, ...]:
    return (
        result["mode"],
        result["limit"],
        result["period_s"],
        result["requests"],
        result["procs"],
    )
