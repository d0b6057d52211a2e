"""Sharded runs: n workers run one experiment made beforehand; ``summarize`` completes it."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from llmobs_async import IncompleteExperimentError, LLMObsClient, errors
from llmobs_async.experiments import RowKey, _summarize, shard_of
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from ..conftest import client_for
from .common import Data, events_pushes, is_events_push, metrics, observe, record, seed, wait

N = 24


def answer_of(input_data: dict[str, Any]) -> str:
    return str(2 * input_data["q"])


def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    return bool(output_data == expected_output)


class Seen:
    """A summary evaluator that keeps what it was given (ddtrace's four lists)."""

    name = "seen"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(
        self, inputs: list[Any], outputs: list[Any], expected: list[Any], results: Any
    ) -> int:
        self.calls.append((inputs, outputs, expected, results))
        return len(inputs)


def counting(calls: Counter[str], fail: frozenset[int] = frozenset()) -> Any:
    async def task(input_data: dict[str, Any], config: Any) -> str:
        calls[f"rec-{input_data['q']}"] += 1
        if input_data["q"] in fail:
            raise RuntimeError("model down")
        return answer_of(input_data)

    return task


async def made(client: LLMObsClient, data: Data, **options: Any) -> str:
    """An experiment made beforehand on ``data``'s current version; its id."""
    dataset = await client.datasets.get(data.project_id, data.dataset_id)
    experiment = await client.experiments.create(
        data.project_id,
        data.dataset_id,
        "sharded",
        dataset_version=dataset.current_version or 1,
        config={"model": "m1"},
        **options,
    )
    return experiment.id


def in_shard(i: int, n: int, ids: Any) -> set[str]:
    return {rid for rid in ids if shard_of(rid, n) == i}


async def test_n_shards_on_n_clients_record_every_row_once_and_summarize_completes(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, N)
    eid = await made(client, data, run_count=2)
    calls: list[Counter[str]] = [Counter() for _ in range(3)]
    clients = [client_for(fake) for _ in range(3)]
    try:
        runs = await wait(
            asyncio.gather(
                *(
                    c.experiments.run(
                        experiment_id=eid,
                        shard=(i, 3),
                        task=counting(calls[i]),
                        evaluators=[exact],
                        concurrency=4,
                    )
                    for i, c in enumerate(clients)
                )
            )
        )
    finally:
        for c in clients:
            await c.close()
    for i, run in enumerate(runs):
        assert run.experiment.status == "running"  # a shard never completes the experiment
        assert set(calls[i]) == in_shard(i, 3, data.records) and set(calls[i].values()) == {2}
        assert run.rows_done == 2 * len(calls[i]) and run.summary == {}
    assert all(calls)  # 24 records over 3 shards: none is empty
    assert fake.experiments[eid]["status"] == "running"
    events = fake.events(eid)
    assert events.duplicate_rows() == {} and events.duplicate_metrics() == {}
    assert set(events.spans_by_row()) == {(rid, n) for rid in data.records for n in (1, 2)}
    assert metrics(fake, eid, summary=True) == []

    seen = Seen()
    done = await wait(client.experiments.summarize(eid, summary_evaluators=[seen]))
    assert done.ok and fake.experiments[eid]["status"] == "completed"
    assert done.summary == {"seen": 2 * N} and done.rows_done == 0 and done.task_errors == 0
    assert [(m["label"], m["score_value"]) for m in metrics(fake, eid, summary=True)] == [
        ("seen", 2 * N)
    ]


async def test_the_split_is_the_same_whatever_the_page_order(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    ids = [record(i) for i in range(N)]
    shuffled = list(ids)
    random.Random(7).shuffle(shuffled)
    ran: list[set[str]] = []
    for records in (ids, shuffled, ids[::-1]):
        project_id = fake.add_project(name=f"p{len(ran)}")
        dataset_id = fake.add_dataset(project_id=project_id, records=records)
        data = Data(project_id, dataset_id, {r["id"]: r for r in records})
        eid = await made(client, data)
        calls: Counter[str] = Counter()
        await wait(client.experiments.run(experiment_id=eid, shard=(1, 3), task=counting(calls)))
        ran.append(set(calls))
    assert ran[0] == ran[1] == ran[2] == in_shard(1, 3, (r["id"] for r in ids))


def test_shard_of_is_a_stable_hash_of_the_record_id() -> None:
    # Pinned values: every process, machine and release must split a dataset the same way.
    assert [shard_of(f"rec-{i}", 8) for i in range(8)] == [1, 4, 4, 5, 7, 0, 4, 1]
    assert shard_of("rec-0", 1) == 0
    sizes = Counter(shard_of(f"rec-{i}", 4) for i in range(4000))
    assert sorted(sizes) == [0, 1, 2, 3] and min(sizes.values()) > 900  # an even split


async def test_sample_size_is_taken_before_the_split(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, N)
    whole: Counter[str] = Counter()
    await wait(
        client.experiments.run(
            data.project_id, data.dataset_id, "whole", task=counting(whole), sample_size=10
        )
    )
    eid = await made(client, data, metadata={"sample_size": 10})
    shards: Counter[str] = Counter()
    for i in range(3):
        await wait(client.experiments.run(experiment_id=eid, shard=(i, 3), task=counting(shards)))
    assert shards == whole and len(whole) == 10  # the same 10 records, each once


async def test_a_restarted_shard_skips_its_done_rows_and_redoes_failed_ones(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, N)
    eid = await made(client, data)
    mine = sorted(in_shard(0, 2, data.records), key=lambda rid: -int(rid[4:]))  # read order
    failing, hanging = int(mine[0][4:]), {int(rid[4:]) for rid in mine[-2:]}
    first: Counter[str] = Counter()
    hung: set[int] = set()
    both_hang = asyncio.Event()

    async def stuck(input_data: dict[str, Any], config: Any) -> str:
        if input_data["q"] in hanging:
            hung.add(input_data["q"])
            if len(hung) == 2:  # both workers hold a hanging row: the rows before are done
                both_hang.set()
            await asyncio.Event().wait()
        return await counting(first, frozenset({failing}))(input_data, config)

    running = asyncio.create_task(
        client.experiments.run(
            experiment_id=eid,
            shard=(0, 2),
            task=stuck,
            evaluators=[exact],
            max_task_retries=0,
            concurrency=2,
        )
    )
    await wait(both_hang.wait())
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait(running)
    stored = fake.experiments[eid]
    assert (stored["status"], stored["error"]) == ("interrupted", "shard 0/2: interrupted")

    again: Counter[str] = Counter()
    run = await wait(
        client.experiments.run(
            experiment_id=eid, shard=(0, 2), task=counting(again), evaluators=[exact]
        )
    )
    # Only the rows not done: the two that hung, and the one whose task failed.
    assert again == Counter({f"rec-{q}": 1 for q in {*hanging, failing}})
    assert run.rows_done == 3 and run.experiment.status == "running"
    assert stored["status"] == "running"  # set again at the restart
    assert fake.events(eid).duplicate_rows() == {}
    assert {key for key in fake.events(eid).spans_by_row()} == {(rid, 1) for rid in mine}

    # The other shard, then summarize: completed, and the restarted shard's reason cleared.
    await wait(client.experiments.run(experiment_id=eid, shard=(1, 2), task=counting(Counter())))
    done = await wait(client.experiments.summarize(eid))
    assert (stored["status"], stored["error"]) == ("completed", "")
    assert done.experiment.error is None


async def test_summarize_refuses_while_a_shard_is_missing_and_sends_nothing(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, N)
    eid = await made(client, data, run_count=2)
    for i in (0, 2):
        await wait(
            client.experiments.run(experiment_id=eid, shard=(i, 3), task=counting(Counter()))
        )
    pushes = len(events_pushes(fake))
    patches = len([r for r in fake.requests if r.method == "PATCH"])
    with pytest.raises(IncompleteExperimentError) as caught:
        await wait(client.experiments.summarize(eid, summary_evaluators=[Seen()], wait=0))
    missing = {RowKey(rid, n) for rid in in_shard(1, 3, data.records) for n in (1, 2)}
    error = caught.value
    assert set(error.missing) == missing and len(error.missing) == len(missing)
    assert (error.experiment_id, error.expected) == (eid, 2 * N)
    assert f"{len(missing)} of {2 * N} rows are missing" in str(error)
    assert fake.experiments[eid]["status"] == "running"  # untouched
    assert len(events_pushes(fake)) == pushes  # no summary pushed
    assert len([r for r in fake.requests if r.method == "PATCH"]) == patches


async def test_summarize_waits_for_a_shard_that_finishes_meanwhile(
    fake: FakeLLMObsServer, client: LLMObsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_summarize, "POLL_FIRST", 0.01)
    data = seed(fake, N)
    eid = await made(client, data)
    await wait(client.experiments.run(experiment_id=eid, shard=(0, 2), task=counting(Counter())))
    started, release = asyncio.Event(), asyncio.Event()

    async def held(input_data: dict[str, Any], config: Any) -> str:
        started.set()
        await release.wait()
        return answer_of(input_data)

    last = asyncio.create_task(client.experiments.run(experiment_id=eid, shard=(1, 2), task=held))
    await wait(started.wait())
    reads: list[RecordedRequest] = []

    def seen(r: RecordedRequest) -> None:
        if r.method == "GET" and r.url_path.endswith("/events"):
            reads.append(r)
            release.set()  # the summary has found the shard missing: let it finish

    observe(fake, seen)
    run = await wait(client.experiments.summarize(eid, summary_evaluators=[Seen()], wait=30))
    await wait(last)
    assert run.ok and run.summary == {"seen": N}
    assert fake.experiments[eid]["status"] == "completed"
    assert len(reads) >= 2  # it read again after finding rows missing


async def test_summarize_gives_the_summary_evaluators_what_an_unsharded_run_gives(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 12)
    fail = frozenset({3, 8})
    whole_seen = Seen()
    whole = await wait(
        client.experiments.run(
            data.project_id,
            data.dataset_id,
            "whole",
            task=counting(Counter(), fail),
            evaluators=[exact],
            summary_evaluators=[whole_seen],
            config={"model": "m1"},
            max_task_retries=0,
        )
    )
    eid = await made(client, data)
    for i in range(4):
        await wait(
            client.experiments.run(
                experiment_id=eid,
                shard=(i, 4),
                task=counting(Counter(), fail),
                evaluators=[exact],
                max_task_retries=0,
            )
        )
    sharded_seen = Seen()
    run = await wait(client.experiments.summarize(eid, summary_evaluators=[sharded_seen]))
    assert run.ok and run.task_errors == whole.task_errors == 2
    # The same rows, in the same (record) order, with the same evaluations.
    assert sharded_seen.calls == whole_seen.calls and len(whole_seen.calls[0][0]) == 12


async def test_summarize_without_summary_evaluators_checks_and_completes(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 6)
    eid = await made(client, data)
    await wait(client.experiments.run(experiment_id=eid, shard=(0, 1), task=counting(Counter())))
    pushes = len(events_pushes(fake))
    run = await wait(client.experiments.summarize(eid))
    assert run.ok and run.summary == {} and fake.experiments[eid]["status"] == "completed"
    assert len(events_pushes(fake)) == pushes


async def test_joining_without_a_shard_runs_what_is_missing_and_completes(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 10)
    eid = await made(client, data, metadata={"tags": ["team:evals"]})
    await wait(client.experiments.run(experiment_id=eid, shard=(0, 2), task=counting(Counter())))
    calls: Counter[str] = Counter()
    seen = Seen()
    run = await wait(
        client.experiments.run(experiment_id=eid, task=counting(calls), summary_evaluators=[seen])
    )
    assert set(calls) == in_shard(1, 2, data.records)  # only what shard 0 left
    assert run.ok and run.summary == {"seen": 10}  # the summary over every row
    configs = {span["tags"].count("team:evals") for span in fake.events(eid).spans.values()}
    assert configs == {1}  # the experiment's tags, on every span


async def test_a_shard_whose_push_is_refused_fails_the_experiment_naming_the_shard(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 6)
    eid = await made(client, data)
    fake.inject(status=400, times=None, match=is_events_push)
    run = await wait(
        client.experiments.run(experiment_id=eid, shard=(1, 2), task=counting(Counter()))
    )
    stored = fake.experiments[eid]
    assert run.experiment.status == stored["status"] == "failed"
    assert stored["error"].startswith("shard 1/2: ")


async def answer(input_data: Any, config: Any) -> str:
    return "a"


NEW = ("p", "d", "n")
JOIN = {"experiment_id": "e"}


@pytest.mark.parametrize(
    ("args", "options", "field"),
    [
        (NEW, {"shard": (0, 2)}, "shard"),  # no experiment_id: a shard never creates one
        (NEW, JOIN, "experiment_id"),
        (("p", "d"), {}, "name"),
        ((), {}, "project_id"),
        ((), {**JOIN, "shard": (2, 2)}, "shard"),
        ((), {**JOIN, "shard": (-1, 2)}, "shard"),
        ((), {**JOIN, "shard": (0, 0)}, "shard"),
        ((), {**JOIN, "shard": (True, 2)}, "shard"),
        ((), {**JOIN, "shard": (0, 2.0)}, "shard"),
        ((), {**JOIN, "shard": "0/2"}, "shard"),
        ((), {**JOIN, "shard": (0, 2), "summary_evaluators": [Seen()]}, "summary_evaluators"),
        ((), {**JOIN, "config": {}}, "config"),
        ((), {**JOIN, "dataset_version": 1}, "dataset_version"),
        ((), {**JOIN, "description": "d"}, "description"),
        ((), {**JOIN, "tags": ["a:b"]}, "tags"),
        ((), {**JOIN, "runs": 1}, "runs"),
        ((), {**JOIN, "sample_size": 3}, "sample_size"),
    ],
)
async def test_bad_joins_are_refused_before_any_request(
    fake: FakeLLMObsServer,
    client: LLMObsClient,
    args: tuple[str, ...],
    options: dict[str, Any],
    field: str,
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await client.experiments.run(*args, task=answer, **options)
    assert caught.value.field == field, caught.value
    assert fake.requests == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"wait": -1}, "wait"),
        ({"wait": float("nan")}, "wait"),
        ({"wait": float("inf")}, "wait"),
        ({"wait": "5"}, "wait"),
        ({"summary_evaluators": [answer]}, "summary_evaluators[0]"),
        ({"summary_evaluators": Seen()}, "summary_evaluators"),
    ],
)
async def test_bad_summarize_arguments_are_refused_before_any_request(
    fake: FakeLLMObsServer, client: LLMObsClient, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await client.experiments.summarize("e", **options)
    assert caught.value.field == field, caught.value
    assert fake.requests == []
