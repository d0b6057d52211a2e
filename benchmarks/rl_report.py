"""Issue 8's budget for llmobs_async, and the Markdown table of the rate-limit benchmark."""

from __future__ import annotations

from typing import Any

JUDGED = "llmobs_async"
# One process: (bound on makespan / ideal, whether the bound itself passes, max 429 share).
ONE_PROCESS = {"fixed": (1.05, True, 0.01), "sliding": (1.15, False, 0.01)}
SEVERAL_MAX_429 = 0.10


def budget(result: dict[str, Any]) -> str:
    """``"PASS"``, ``"FAIL: why"`` for an llmobs_async row, ``""`` for other clients.

    One process: makespan at most 1.05x of ``ceil(N/L) * P`` with under 1%
    429s in fixed windows, under 1.15x and 1% in sliding ones. Several
    processes sharing the limit: under 10% 429s. No record lost, ever.
    """
    if result["client"] != JUDGED:
        return ""
    if result["errors"]:
        return "FAIL: the client failed"
    problems = []
    share = result["share_429"]
    if result["procs"] == 1:
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
    head = (
        f"| {result['mode']} | {result['limit']} per {result['period_s']} s "
        f"| {result['requests']} | {result['procs']} | {result['client']} "
    )
    if "ratio" not in result:
        error = "; ".join(result["errors"])[:120]
        return head + f"| error: {error} | | | | | | {result['budget']} |"
    return head + (
        f"| {result['makespan_s']:.1f} s / {result['ideal_s']} s | {result['ratio']:.2f}x "
        f"| {result['best_possible_s'] / result['ideal_s']:.2f}x "
        f"| {result['share_429']:.1%} ({result['rate_limited']}/{result['answered']}) "
        f"| {result['cpu_ms_per_request']:.2f} | {result['lost']} | {result['budget']} |"
    )


def render(results: list[dict[str, Any]]) -> str:
    """The table, one line per row, then the overall verdict for llmobs_async."""
    lines = [
        "| mode | limit | requests (N) | processes | client | makespan / ceil(N/L)*P "
        "| ratio | lower bound | 429 share | CPU ms/request | records lost | budget (issue 8) |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_row(result) for result in results]
    judged = [r for r in results if r["budget"]]
    missed = [r for r in judged if r["budget"] != "PASS"]
    if judged:
        verdict = f"FAIL ({len(missed)} of {len(judged)} rows)" if missed else "PASS"
        lines += ["", f"{JUDGED} against issue 8's budget: {verdict}"]
    return "\n".join(lines)
