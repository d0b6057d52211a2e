"""``llmobs-async experiments compare``: the table, JSON, and the CI gate's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded
from .test_cli import _cli
from .test_cli_experiments import _run_args, write_evals
from .test_cli_experiments_run import _experiment


@pytest.fixture
def evals(tmp_path: Path) -> dict[str, str]:
    """The environment that makes the module ``evals`` importable by the subprocess."""
    return write_evals(tmp_path)


async def test_compare_gates_on_a_regressed_label(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    base = await _experiment(fake, seeded, evals, {"wrong": [1]})
    cand = await _experiment(fake, seeded, evals, {"wrong": [2, 3]})  # 1 improves, 2 and 3 regress
    compare = ("experiments", "compare", base, cand)

    run = await _cli(fake, *compare)
    assert run.code == 0, run  # no gate: a report
    table = run.out.splitlines()
    assert table[:2] == [f"baseline  {base}", f"candidate {cand}"]
    assert table[2].split() == [
        "metric", "type", "baseline", "candidate", "improved", "regressed", "unchanged",
        "changed", "missing",
    ]  # fmt: skip
    assert table[3].split() == [
        "exact", "boolean", "true", "90.0%", "(n=10)", "true", "80.0%", "(n=10)", "1", "2", "7",
        "0", "0",
    ]  # fmt: skip
    assert table[5].split()[:2] == ["polite", "boolean"]
    assert "exact regressed on: rec-2 (run 1), rec-3 (run 1)" in run.out

    run = await _cli(fake, *compare, "--fail-on-regression", "polite")
    assert run.code == 0, run
    run = await _cli(
        fake, *compare, "--fail-on-regression", "polite", "--fail-on-regression", "exact"
    )
    assert run.code == 1, run
    assert "llmobs-async: exact: 2 rows regressed (gated by --fail-on-regression)" in run.err

    run = await _cli(fake, *compare, "--fail-on-regression", "exact", "--json")
    assert run.code == 1, run
    doc = json.loads(run.out)
    assert doc["failed"] == ["exact"]
    assert doc["metrics"]["exact"]["regressed_rows"] == [["rec-2", 1], ["rec-3", 1]]
    assert doc["metrics"]["exact"]["candidate"] == {
        "count": 10,
        "errors": 0,
        "true_rate": 0.8,
    }
    assert (doc["metrics"]["polite"]["unchanged"], doc["metrics"]["polite"]["regressed"]) == (10, 0)

    run = await _cli(fake, *compare, "--fail-on-regression", "exakt")
    assert run.code == 2, run  # a typo in a CI gate must not pass
    assert (
        "--fail-on-regression: no metric 'exakt' in either experiment "
        "(labels: exact, length, polite)"
    ) in run.err


async def test_compare_gate_fails_when_the_candidate_lacks_the_metric(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    base = await _experiment(fake, seeded, evals, {})
    run = await _cli(
        fake,
        *_run_args(seeded, "--task", "evals:answer", "--evaluator", "evals:exact", "--json"),
        env=evals,
    )
    cand = json.loads(run.out)["experiment_id"]
    run = await _cli(fake, "experiments", "compare", base, cand, "--fail-on-regression", "polite")
    assert run.code == 1, run  # dropping an evaluator does not get past its gate
    assert "polite: the candidate has no 'polite' metric" in run.err
    run = await _cli(fake, "experiments", "compare", base, cand, "--fail-on-regression", "exact")
    assert run.code == 0, run


async def test_compare_of_an_unknown_experiment_exits_1(fake: FakeLLMObsServer) -> None:
    run = await _cli(fake, "experiments", "compare", "nope-1", "nope-2")
    assert run.code == 1, run
    assert "404" in run.err
