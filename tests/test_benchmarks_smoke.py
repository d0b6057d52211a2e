"""The benchmark runs end to end: every client, every scenario, every response 200."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _smoke(script: str, timeout: float, *more: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``benchmarks/<script> --smoke [MORE]``; return the run and all it printed."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke", *more],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return completed, completed.stdout + completed.stderr


def test_benchmark_smoke_runs_all_three_clients() -> None:
    """``benchmarks/cpu/run.py --smoke`` exits 0 and reports floor, llmobs_async and official."""
    completed, output = _smoke("cpu/run.py", timeout=120)
    assert completed.returncode == 0, output
    table = completed.stdout
    for client in ("| floor |", "| llmobs_async |", "| official |"):
        assert client in table, output
    assert "error" not in table, output


def test_ratelimit_benchmark_smoke_prints_a_table() -> None:
    """``benchmarks/ratelimit/run.py --smoke`` exits 0 and prints a row for llmobs_async."""
    completed, output = _smoke("ratelimit/run.py", timeout=60)
    assert completed.returncode == 0, output
    table = completed.stdout.splitlines()
    assert table[0].startswith("| mode | limit |"), output
    rows = [line for line in table if line.startswith("| fixed | 5 per 1 s | 10 | 1 |")]
    assert len(rows) == 1, output
    assert "| llmobs_async |" in rows[0], output
    assert "error" not in rows[0], output
    assert "RECORDS LOST" not in completed.stderr, output


def test_pager_benchmark_smoke_pulls_every_record_with_each_client() -> None:
    """``benchmarks/pager/run.py --smoke`` exits 0; every client got all its ids, each once."""
    completed, output = _smoke("pager/run.py", timeout=120)
    assert completed.returncode == 0, output
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| 500 |")]
    clients = [row.split("|")[2].strip() for row in rows]
    assert clients == ["floor", "floor_lean", "llmobs_async", "official", "official_spec"], output
    for row in rows:
        assert "error" not in row, output
    assert all("all 2,000 ids, each once" in row for row in rows[:4]), output
    assert "all 200 ids, each once" in rows[4], output
    assert "DatasetRecord objects, created_at as datetime" in rows[2], output


def test_experiments_benchmark_smoke_loses_nothing_under_faults() -> None:
    """``benchmarks/experiments/run.py --smoke``: hand-rolled and runner rows, nothing lost.

    300 records with 20% 503s, 10% 429s and 10% dropped connections on the events push;
    the server's check finds one span per record and one metric per evaluator, once each.
    """
    completed, output = _smoke("experiments/run.py", timeout=120)
    assert completed.returncode == 0, output
    rows = {
        line.split("|")[1].strip(): line
        for line in completed.stdout.splitlines()
        if line.startswith(("| handrolled |", "| runner |"))
    }
    assert set(rows) == {"handrolled", "runner"}, output
    for row in rows.values():
        assert "| 300 |" in row and "| 0 / 0 | 0 / 0 |" in row, output
    assert "ok   runner: 0 spans or metrics lost or duplicated" in completed.stdout, output


def test_shards_benchmark_smoke_keeps_every_row_once() -> None:
    """``benchmarks/shards/run.py --smoke --procs 2``: 2 shared workers and the control.

    240 records at 120 calls per 1 s: every record's row once in both rows; the shared row
    gets no 429 and keeps the provider's window, the control is only reported.
    """
    completed, output = _smoke("shards/run.py", 120, "--procs", "2")
    assert completed.returncode == 0, output
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| 2 |")]
    control = [line for line in completed.stdout.splitlines() if line.startswith("| 8 |")]
    assert len(rows) == 1 and len(control) == 1, output
    assert "| 240 (240) | 0 / 0 |" in rows[0] and "| 0 (0.0%) |" in rows[0], output
    assert "| 0 / 0 |" in control[0] and "each alone (control)" in control[0], output
