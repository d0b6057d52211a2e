"""``experiments.resume``: finish a broken run without re-running what it already did."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from llmobs_async import LLMObsClient
from llmobs_async.testing import FakeLLMObsServer

from .common import (
    metric_counts,
    only_experiment,
    seed,
    spans,
    spans_by_pair,
    wait,
)

N = 20
DONE_FIRST = 12
"""Records are read newest first: rec-19 .. rec-8 finish in the first run; rec-7 .. hang."""
FAILS = 15
"""rec-15's task fails in the first run."""


def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    return bool(output_data == expected_output)


def count_rows(
    inputs: list[Any], outputs: list[Any], expected_outputs: list[Any], evaluators_results: Any
) -> int:
    return len(inputs)


def accuracy(
    inputs: list[Any], outputs: list[Any], expected_outputs: list[Any], evaluators_results: Any
) -> float:
    return sum(1 for ok in evaluators_results["exact"] if ok) / len(inputs)


async def interrupted_run(fake: FakeLLMObsServer, client: LLMObsClient) -> str:
    """A run of 20 records cancelled while rec-7 .. rec-4 hang (rec-15's task fails).

    The 12 rows it finished must be pushed although it was cancelled: they are
    results (nothing is dropped), and resume relies on them. Returns the experiment id.
    """
    data = seed(fake, N)
    hanging = 0
    all_busy = asyncio.Event()
    never = asyncio.Event()

    async def first(input_data: dict[str, Any], config: Any) -> str:
        nonlocal hanging
        q = input_data["q"]
        if q == FAILS:
            raise RuntimeError("model down")
        if q < N - DONE_FIRST:
            hanging += 1
            if hanging == 4:  # every worker holds a hanging row: the 12 before are done
                all_busy.set()
            await never.wait()
        return str(2 * q)

    running = asyncio.create_task(
        client.experiments.run(
            data.project_id,
            data.dataset_id,
            "resumable",
            task=first,
            evaluators=[exact],
            summary_evaluators=[count_rows],
            max_task_retries=0,
            concurrency=4,
            config={"model": "m1"},
        )
    )
    await wait(all_busy.wait())
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait(running)
    eid, stored = only_experiment(fake)
    assert stored["status"] == "interrupted"
    by_pair = spans_by_pair(fake, eid)
    assert sorted(by_pair) == sorted((f"rec-{i}", 1) for i in range(N - DONE_FIRST, N))
    assert [s["status"] for s in by_pair[(f"rec-{FAILS}", 1)]] == ["error"]
    return eid


def to_redo(fake: FakeLLMObsServer, eid: str) -> set[str]:
    """Records whose pair has no span, or only spans of a failed task."""
    by_pair = spans_by_pair(fake, eid)
    redo = {f"rec-{i}" for i in range(N)}
    for (rid, _), found in by_pair.items():
        if rid is not None and any(s.get("status") == "ok" for s in found):
            redo.discard(rid)
    return redo


async def test_resume_runs_only_missing_and_failed_pairs_and_completes(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    eid = await interrupted_run(fake, client)
    redo = to_redo(fake, eid)
    assert redo == {f"rec-{i}" for i in range(N - DONE_FIRST)} | {f"rec-{FAILS}"}
    calls: Counter[str] = Counter()
    configs: list[Any] = []

    async def second(input_data: dict[str, Any], config: Any) -> str:
        calls[f"rec-{input_data['q']}"] += 1
        configs.append(config)
        return str(2 * input_data["q"])

    run = await wait(
        client.experiments.resume(
            eid, task=second, evaluators=[exact], summary_evaluators=[count_rows, accuracy]
        )
    )
    assert set(calls) == redo and set(calls.values()) == {1}
    assert all(config == {"model": "m1"} for config in configs)  # the experiment's config
    _, stored = only_experiment(fake)
    assert stored["status"] == "completed" == run.experiment.status and run.ok
    rows = [row async for row in run.rows()]
    assert sorted(r.record_id for r in rows) == sorted(f"rec-{i}" for i in range(N))
    assert all(r.status == "ok" and r.evaluations == {"exact": True} for r in rows)
    # The summary is over every row, not only those this resume ran.
    assert run.summary == {"count_rows": N, "accuracy": 1.0}
    # Every ok span has its metric once.
    ok_spans = [s for s in spans(fake, eid) if s["status"] == "ok"]
    counts = metric_counts(fake, eid)
    assert all(counts[(s["span_id"], "exact")] == 1 for s in ok_spans)


async def test_resume_scores_existing_outputs_for_a_new_evaluator_without_rerunning_them(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    eid = await interrupted_run(fake, client)
    redo = to_redo(fake, eid)
    kept = {
        rid: found[0]
        for (rid, _), found in spans_by_pair(fake, eid).items()
        if rid not in redo and rid is not None
    }
    calls: Counter[str] = Counter()
    scored: dict[Any, Any] = {}

    async def second(input_data: dict[str, Any], config: Any) -> str:
        calls[f"rec-{input_data['q']}"] += 1
        return str(2 * input_data["q"])

    def shout(input_data: Any, output_data: Any, expected_output: Any) -> str:
        scored[input_data["q"]] = output_data
        return "loud" if output_data.endswith("0") else "quiet"

    run = await wait(client.experiments.resume(eid, task=second, evaluators=[exact, shout]))
    assert set(calls) == redo  # the kept rows' tasks did not run again
    assert len(scored) == N  # but the new evaluator scored every row
    for rid, span in kept.items():
        assert scored[int(rid.removeprefix("rec-"))] == span["meta"]["output"]
    counts = metric_counts(fake, eid)
    for span in kept.values():
        assert counts[(span["span_id"], "shout")] == 1
        assert counts[(span["span_id"], "exact")] == 1  # not pushed again
    rows = {row.record_id: row async for row in run.rows()}
    assert len(rows) == N and all(set(r.evaluations) == {"exact", "shout"} for r in rows.values())
    assert run.experiment.status == "completed"


async def test_resume_of_a_completed_run_runs_no_task(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 6)

    async def task(input_data: dict[str, Any], config: Any) -> str:
        return str(2 * input_data["q"])

    first = await client.experiments.run(
        data.project_id, data.dataset_id, "done", task=task, evaluators=[exact], runs=2
    )
    calls = 0

    async def counted(input_data: dict[str, Any], config: Any) -> str:
        nonlocal calls
        calls += 1
        return "x"

    again = await client.experiments.resume(
        first.experiment.id, task=counted, evaluators=[exact], summary_evaluators=[count_rows]
    )
    assert calls == 0
    assert again.summary == {"count_rows": 12}  # 6 records x 2 runs, read back
    assert again.experiment.status == "completed"
    assert len(spans(fake, first.experiment.id)) == 12


async def test_resume_reads_the_dataset_version_the_run_used(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # Records added after the run (a new dataset version) are not part of it.
    data = seed(fake, 5)

    async def task(input_data: dict[str, Any], config: Any) -> str:
        return str(2 * input_data["q"])

    first = await client.experiments.run(
        data.project_id, data.dataset_id, "pinned", task=task, evaluators=[exact]
    )
    fake.add_records(data.dataset_id, [{"id": f"late-{i}", "input": {"q": i}} for i in range(3)])
    calls = 0

    async def counted(input_data: dict[str, Any], config: Any) -> str:
        nonlocal calls
        calls += 1
        return "x"

    again = await client.experiments.resume(
        first.experiment.id, task=counted, evaluators=[exact], summary_evaluators=[count_rows]
    )
    assert calls == 0 and again.summary == {"count_rows": 5}
    rows = [row async for row in again.rows()]
    assert sorted(r.record_id for r in rows) == sorted(data.records)


async def test_resume_rescores_an_evaluator_that_failed_without_rerunning_the_task(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 5)
    calls: Counter[str] = Counter()

    async def task(input_data: dict[str, Any], config: Any) -> str:
        calls[f"rec-{input_data['q']}"] += 1
        return str(2 * input_data["q"])

    def judge(input_data: Any, output_data: Any, expected_output: Any) -> float:
        if input_data["q"] == 2 and not calls["fixed"]:
            raise TimeoutError("judge model timed out")
        return 1.0

    first = await client.experiments.run(
        data.project_id, data.dataset_id, "rescore", task=task, evaluators=[judge]
    )
    rows = {row.record_id: row async for row in first.rows()}
    assert rows["rec-2"].evaluations["judge"] is None and "judge" in rows["rec-2"].evaluation_errors
    calls.clear()
    calls["fixed"] = 1
    again = await client.experiments.resume(first.experiment.id, task=task, evaluators=[judge])
    assert +calls == Counter(fixed=1)  # no task ran again
    assert again.rows_done == 1 and again.ok
    rows = {row.record_id: row async for row in again.rows()}
    assert rows["rec-2"].evaluations["judge"] == 1.0 and rows["rec-2"].evaluation_errors == {}
    assert all(row.evaluations == {"judge": 1.0} for row in rows.values())


async def test_resume_finishes_a_run_that_failed_on_a_401(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # The key was revoked mid-run: nothing landed and the run failed; with a good
    # key again, resume runs every row and completes the same experiment.
    data = seed(fake, 6)
    fake.inject(status=401, times=None, match=lambda r: r.url_path.endswith("/events"))

    async def task(input_data: dict[str, Any], config: Any) -> str:
        return str(2 * input_data["q"])

    first = await client.experiments.run(
        data.project_id, data.dataset_id, "revoked", task=task, evaluators=[exact]
    )
    assert first.experiment.status == "failed" and spans(fake, first.experiment.id) == []
    fake.clear_faults()
    calls = 0

    async def counted(input_data: dict[str, Any], config: Any) -> str:
        nonlocal calls
        calls += 1
        return await task(input_data, config)

    again = await client.experiments.resume(first.experiment.id, task=counted, evaluators=[exact])
    assert calls == 6 and again.ok
    stored = only_experiment(fake)[1]
    assert stored["status"] == "completed"
    assert stored["error"] == "" and again.experiment.error is None  # the 401's reason cleared
    assert sorted(spans_by_pair(fake, first.experiment.id)) == [(f"rec-{i}", 1) for i in range(6)]
