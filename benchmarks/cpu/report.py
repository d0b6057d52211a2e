"""Aggregate the rounds (medians) and render them as Markdown tables and JSON."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from cpu.scenarios import FLOOR, LLMOBS, OFFICIAL, REQUEST_KINDS, Scenario


@dataclasses.dataclass
class Cell:
    """Every round of one client in one scenario."""

    scenario: Scenario
    client: str
    rounds: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    na: str | None = None

    @property
    def unit_count_key(self) -> str:
        """The worker field that counts the measured units (requests or records)."""
        return "requests" if self.scenario.kind in REQUEST_KINDS else "records"

    def cpu_us(self) -> list[float]:
        """CPU microseconds per request (or per record), one value per round."""
        key = self.unit_count_key
        return [r["cpu_s"] / r[key] * 1e6 for r in self.rounds]

    def summary(self) -> dict[str, Any]:
        """Medians over the rounds, with the range and the raw rounds."""
        out: dict[str, Any] = {"rounds": self.rounds, "errors": self.errors, "na": self.na}
        if not self.rounds:
            return out
        key = self.unit_count_key
        cpu = self.cpu_us()
        out.update(
            cpu_us_median=statistics.median(cpu),
            cpu_us_min=min(cpu),
            cpu_us_max=max(cpu),
            per_second_median=statistics.median(r[key] / r["wall_s"] for r in self.rounds),
            version=self.rounds[0].get("version", ""),
        )
        if self.scenario.kind == "rss":
            out["rss_growth_mib_median"] = statistics.median(
                r["rss_growth_kib"] / 1024 for r in self.rounds
            )
        return out


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _median(cells: dict[tuple[str, str], Cell], scenario: str, client: str) -> float | None:
    cell = cells.get((scenario, client))
    return statistics.median(cell.cpu_us()) if cell and cell.rounds else None


def _request_row(cells: dict[tuple[str, str], Cell], cell: Cell) -> str:
    name = cell.scenario.name
    if not cell.rounds:
        status = cell.na or f"error: {cell.errors[-1] if cell.errors else 'no rounds'}"
        return f"| {name} | {cell.client} | {status} | | | | |"
    s = cell.summary()
    floor = _median(cells, name, FLOOR)
    llmobs = _median(cells, name, LLMOBS)
    vs_floor = s["cpu_us_median"] / floor if floor else None
    less = s["cpu_us_median"] / llmobs if cell.client == OFFICIAL and llmobs else None
    return (
        f"| {name} | {cell.client} | {s['cpu_us_median']:,.0f} "
        f"| {s['cpu_us_min']:,.0f}-{s['cpu_us_max']:,.0f} | {s['per_second_median']:,.0f} "
        f"| {_ratio(vs_floor)} | {_ratio(less)} |"
    )


def _bulk_row(cell: Cell) -> str:
    name = cell.scenario.name
    if not cell.rounds:
        status = cell.na or f"error: {cell.errors[-1] if cell.errors else 'no rounds'}"
        return f"| {name} | {cell.client} | | | | {status} |"
    s = cell.summary()
    rss = f"{s['rss_growth_mib_median']:,.1f} MiB" if "rss_growth_mib_median" in s else ""
    records = cell.rounds[0]["records"]
    return (
        f"| {name} ({records:,} records) | {cell.client} | {s['cpu_us_median']:,.1f} "
        f"| {s['per_second_median']:,.0f} | {rss} | ok |"
    )


def render(cells: dict[tuple[str, str], Cell]) -> str:
    """The results as Markdown: per-request scenarios, then the update_many ones."""
    lines = [
        "| scenario | client | CPU µs/request (median) | range (min-max) | requests/s (wall) "
        "| CPU vs floor | official / llmobs_async CPU (x less CPU for llmobs_async) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [_request_row(cells, c) for c in cells.values() if c.scenario.kind in REQUEST_KINDS]
    bulk = [c for c in cells.values() if c.scenario.kind not in REQUEST_KINDS]
    if bulk:
        lines += [
            "",
            "| scenario | client | CPU µs/record (median) | records/s (wall) "
            "| peak RSS growth | status |",
            "|---|---|---:|---:|---:|---|",
        ]
        lines += [_bulk_row(c) for c in bulk]
    return "\n".join(lines)


def to_json(cells: dict[tuple[str, str], Cell], meta: dict[str, Any]) -> dict[str, Any]:
    """The results as a JSON-ready document: run metadata, then one entry per cell."""
    results: dict[str, dict[str, Any]] = {}
    for (scenario, client), cell in cells.items():
        entry = cell.summary()
        if cell.scenario.kind in REQUEST_KINDS and cell.rounds:
            floor = _median(cells, scenario, FLOOR)
            entry["cpu_vs_floor"] = entry["cpu_us_median"] / floor if floor else None
            if client == OFFICIAL:
                llmobs = _median(cells, scenario, LLMOBS)
                entry["cpu_vs_llmobs_async"] = entry["cpu_us_median"] / llmobs if llmobs else None
        results.setdefault(scenario, {})[client] = entry
    return {"meta": meta, "results": results}


BUDGETS: tuple[tuple[str, str, float], ...] = (
    # (scenario, what, bound): the budgets the issues set. Issue 15: calls
    # launched all at once, as a web app launches them.
    ("small", "vs floor", 1.2),
    ("small", "official x", 2.5),
    ("records100", "vs floor", 1.3),
    ("records100", "official x", 20.0),
    # One batch at a time (the method before issue 15), at its budgets then.
    ("small_batched", "vs floor", 1.3),
    ("records100_batched", "vs floor", 1.5),
    ("update_many_rss_1m", "MiB", 100.0),
)


def budget_lines(cells: dict[tuple[str, str], Cell]) -> tuple[list[str], bool]:
    """One line per budget the run measured, and whether all of them hold."""
    lines, ok = [], True
    for scenario, what, bound in BUDGETS:
        llmobs = _median(cells, scenario, LLMOBS)
        if llmobs is None:
            continue
        if what == "vs floor":
            floor = _median(cells, scenario, FLOOR)
            if floor is None:
                continue
            value, holds = llmobs / floor, llmobs / floor <= bound
            text = f"{scenario}: {value:.2f}x the floor (budget <= {bound}x)"
        elif what == "official x":
            official = _median(cells, scenario, OFFICIAL)
            if official is None:
                continue
            value, holds = official / llmobs, official / llmobs >= bound
            text = f"{scenario}: {value:.1f}x less CPU than official (budget >= {bound}x)"
        else:
            cell = cells[(scenario, LLMOBS)]
            value = cell.summary()["rss_growth_mib_median"]
            holds = value < bound
            text = f"{scenario}: peak RSS growth {value:.1f} MiB (budget < {bound:.0f} MB)"
        ok = ok and holds
        lines.append(f"{'PASS' if holds else 'FAIL'} {text}")
    return lines, ok
