"""records.update_many against the real fake server: batching, failures, streaming, limits."""

from __future__ import annotations

import asyncio
import json
import math
import pickle
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import pytest

from llmobs_async import BulkFailure, BulkProgress, BulkResult, LLMObsClient, errors
from llmobs_async.models import RecordUpdate
from llmobs_async.testing import Chaos, FakeLLMObsServer, RecordedRequest

from .conftest import client_for

DEFAULT_BATCH_SIZE = 1000
DEFAULT_MAX_BATCH_BYTES = 5_000_000


def seed(fake: FakeLLMObsServer, n: int) -> tuple[str, str]:
    """A project and a dataset of ``n`` records rec-0..rec-{n-1}; their ids."""
    project_id = fake.add_project()
    return project_id, fake.add_dataset(project_id=project_id, records=n)


def update(i: int, pad: int = 0, **fields: Any) -> dict[str, Any]:
    """The update of rec-i: a new expected_output, optionally a ``pad``-byte input."""
    item: dict[str, Any] = {"id": f"rec-{i}", "expected_output": f"new-{i}", **fields}
    if pad:
        item["input"] = "x" * pad
    return item


def updates(ids: Iterable[int], pad: int = 0) -> Iterator[dict[str, Any]]:
    return (update(i, pad) for i in ids)


def check(result: BulkResult) -> BulkResult:
    """Every record read is accounted for, applied or failed."""
    assert result.applied + sum(len(f.records) for f in result.failed) == result.submitted
    assert result.ok == (not result.failed)
    return result


def sent_ids(request: RecordedRequest) -> list[str]:
    """The ids of the records a bulk request carried."""
    return [r["id"] for r in request.json()["data"]["attributes"]["update_records"]]


def writes(fake: FakeLLMObsServer) -> list[RecordedRequest]:
    """The requests that carried records (not the job's reads of the dataset's version)."""
    return [r for r in fake.requests if r.method != "GET"]


def assert_stored(
    fake: FakeLLMObsServer, dataset_id: str, ids: Iterable[int], *, updated: bool = True
) -> None:
    """rec-i holds its new value (or, with ``updated=False``, its seeded null)."""
    stored = fake.records(dataset_id)
    want = (lambda i: f"new-{i}") if updated else (lambda i: None)
    wrong = [i for i in ids if stored[f"rec-{i}"]["expected_output"] != want(i)]
    assert not wrong, f"{len(wrong)} records wrong (updated={updated}), e.g. rec-{wrong[0]}"


def counts(r: BulkResult | BulkProgress) -> tuple[int, int, int, int]:
    failed = r.failed_count if isinstance(r, BulkResult) else r.failed
    return (r.submitted, r.applied, failed, r.retries)


def never_sent(fake: FakeLLMObsServer, record_id: str) -> bool:
    needle = json.dumps(record_id).encode()
    return all(needle not in r.body for r in fake.requests)


async def test_chaos_50k_records_all_applied(fake: FakeLLMObsServer) -> None:
    n = 50_000
    project_id, dataset_id = seed(fake, n)
    fake.chaos = Chaos(error_rate=0.10, rate_limit_rate=0.05, drop_rate=0.02, seed=7)
    source = (update(i, metadata={"n": i}) for i in range(n))
    async with client_for(fake) as client:
        result = check(
            await client.records.update_many(project_id, dataset_id, source, batch_size=250)
        )
    assert result.ok, result.failed[:1]
    assert (result.submitted, result.applied) == (n, n)
    assert result.retries > 0
    assert_stored(fake, dataset_id, range(n))
    stored = fake.records(dataset_id)
    assert all(stored[f"rec-{i}"]["metadata"] == {"n": i} for i in range(n))
    assert {503, 429, 0} <= {r.status for r in fake.requests}
    assert result.retries == sum(1 for r in writes(fake) if r.status != 200)
    assert fake.max_in_flight <= client._pool.max_concurrency


@pytest.mark.parametrize(
    ("n", "pad", "options", "sizes"),
    [
        pytest.param(1000, 0, {"batch_size": 100}, [100] * 10, id="by-count"),
        pytest.param(200, 1000, {"max_batch_bytes": 20_000}, None, id="by-bytes"),
        pytest.param(2500, 0, {}, [1000, 1000, 500], id="default-count"),
        pytest.param(5000, 1000, {"batch_size": 10_000}, None, id="default-bytes"),
    ],
)
async def test_batches_are_cut_by_count_and_by_encoded_size(
    fake: FakeLLMObsServer,
    client: LLMObsClient,
    n: int,
    pad: int,
    options: dict[str, int],
    sizes: list[int] | None,
) -> None:
    batch_size = options.get("batch_size", DEFAULT_BATCH_SIZE)
    max_bytes = options.get("max_batch_bytes", DEFAULT_MAX_BATCH_BYTES)
    project_id, dataset_id = seed(fake, n)
    result = check(
        await client.records.update_many(project_id, dataset_id, updates(range(n), pad), **options)
    )
    assert (result.ok, result.applied) == (True, n)
    batches = sorted(([int(rid[4:]) for rid in sent_ids(r)], len(r.body)) for r in writes(fake))
    if sizes is not None:
        assert [len(ids) for ids, _ in batches] == sizes
    # Batches are contiguous runs of the input that cover all of it, once.
    assert [i for ids, _ in batches for i in ids] == list(range(n))
    longest = max(len(json.dumps(update(i, pad), separators=(",", ":"))) for i in range(n))
    for ids, body_len in batches:
        assert len(ids) <= batch_size
        assert body_len <= max_bytes
    for ids, body_len in batches[:-1]:
        # A batch is only cut when it is full: by count, or the next record would not fit.
        assert len(ids) == batch_size or body_len + longest + 1 > max_bytes
    assert_stored(fake, dataset_id, range(n))


async def test_413_splits_batches_in_halves_until_they_fit(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    project_id, dataset_id = seed(fake, 200)
    fake.max_body_bytes = 30_000  # 100 records of ~1 KB: too big; 25 records fit
    result = check(
        await client.records.update_many(
            project_id, dataset_id, updates(range(200), pad=1000), batch_size=100
        )
    )
    assert (result.ok, result.applied) == (True, 200)
    statuses = [r.status for r in writes(fake)]
    # Per batch: 100 -> 413, 2 x 50 -> 413, 4 x 25 -> 200.
    assert (statuses.count(413), statuses.count(200), len(statuses)) == (6, 8, 14)
    assert sorted(len(sent_ids(r)) for r in writes(fake) if r.status == 200) == [25] * 8
    assert_stored(fake, dataset_id, range(200))


@pytest.mark.parametrize(
    ("server_max", "options", "error"),
    [
        pytest.param(30_000, {"batch_size": 10}, errors.PayloadTooLargeError, id="server-413"),
        pytest.param(None, {"max_batch_bytes": 20_000}, errors.ValidationError, id="client-side"),
    ],
)
async def test_record_too_large_fails_alone(
    fake: FakeLLMObsServer,
    client: LLMObsClient,
    server_max: int | None,
    options: dict[str, int],
    error: type[errors.LLMObsError],
) -> None:
    project_id, dataset_id = seed(fake, 20)
    if server_max is not None:
        fake.max_body_bytes = server_max
    items = [update(i, pad=40_000 if i == 7 else 0) for i in range(20)]
    result = check(await client.records.update_many(project_id, dataset_id, items, **options))
    assert (result.submitted, result.applied) == (20, 19)
    [failure] = result.failed
    assert failure.record_ids == ("rec-7",)
    assert failure.records[0] is items[7]
    assert isinstance(failure.error, error)
    if server_max is None:  # refused before sending, naming the record
        assert failure.error.field.startswith("records[7]")
        assert never_sent(fake, "rec-7")
    else:  # split down to the record alone, which the server refused alone
        assert [sent_ids(r) for r in writes(fake) if r.status == 413][-1] == ["rec-7"]
    assert_stored(fake, dataset_id, [i for i in range(20) if i != 7])


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return {"id": "rec-1", "input": loop}


@pytest.mark.parametrize(
    ("make_bad", "bad_id"),
    [
        pytest.param(lambda: {"input": {"q": 1}}, None, id="no-id"),
        pytest.param(lambda: {"id": "rec-1", "input": math.nan}, "rec-1", id="nan"),
        pytest.param(lambda: {"id": "rec-1", "metadata": {"t": {"a"}}}, "rec-1", id="set"),
        pytest.param(lambda: {"id": "rec-1", "outputs": 1}, "rec-1", id="unknown-field"),
        pytest.param(lambda: 7, None, id="not-a-mapping"),
        pytest.param(_circular, "rec-1", id="circular"),
    ],
)
async def test_invalid_item_is_reported_and_the_job_goes_on(
    fake: FakeLLMObsServer, client: LLMObsClient, make_bad: Any, bad_id: str | None
) -> None:
    project_id, dataset_id = seed(fake, 3)
    bad = make_bad()
    items = [update(0), bad, update(2)]
    result = check(await client.records.update_many(project_id, dataset_id, items))
    assert (result.submitted, result.applied) == (3, 2)
    [failure] = result.failed
    assert failure.records == (bad,) and failure.records[0] is bad
    assert failure.record_ids == (bad_id,)
    assert isinstance(failure.error, errors.ValidationError)
    assert failure.error.field.startswith("records[1]")
    assert never_sent(fake, "rec-1")
    assert_stored(fake, dataset_id, [0, 2])


async def test_all_invalid_sends_no_request(fake: FakeLLMObsServer, client: LLMObsClient) -> None:
    project_id, dataset_id = seed(fake, 3)
    items = [{"input": 1}, 7, {"id": "rec-2", "input": math.inf}]
    result = check(await client.records.update_many(project_id, dataset_id, iter(items)))
    assert (result.submitted, result.applied, result.failed_count) == (3, 0, 3)
    assert [f.record_ids for f in result.failed] == [(None,), (None,), ("rec-2",)]
    assert all(
        isinstance(f.error, errors.ValidationError) and f.error.field.startswith(f"records[{i}]")
        for i, f in enumerate(result.failed)
    )
    assert fake.requests == []


async def _agen(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        await asyncio.sleep(0)  # a real async source yields to the loop
        yield item


@pytest.mark.parametrize("kind", ["list", "generator", "async-generator"])
async def test_inputs_of_every_kind_with_mixed_items(
    fake: FakeLLMObsServer, client: LLMObsClient, kind: str
) -> None:
    project_id, dataset_id = seed(fake, 250)
    items: list[Any] = [
        RecordUpdate(id=f"rec-{i}", expected_output=f"new-{i}") if i % 2 else update(i)
        for i in range(250)
    ]
    source = {"list": list, "generator": iter, "async-generator": _agen}[kind](items)
    result = check(await client.records.update_many(project_id, dataset_id, source, batch_size=100))
    assert (result.ok, result.submitted, result.applied) == (True, 250, 250)
    assert sorted(len(sent_ids(r)) for r in writes(fake)) == [50, 100, 100]
    assert_stored(fake, dataset_id, range(250))


@pytest.mark.parametrize(
    "records", [5, None, {"id": "rec-1"}, "rec-1"], ids=["int", "none", "dict", "str"]
)
async def test_non_iterable_input_raises_validation_error(
    fake: FakeLLMObsServer, client: LLMObsClient, records: Any
) -> None:
    project_id, dataset_id = seed(fake, 3)
    with pytest.raises(errors.ValidationError) as info:
        await client.records.update_many(project_id, dataset_id, records)
    assert info.value.field == "records"
    assert fake.requests == []


async def test_input_is_streamed_not_materialized(fake: FakeLLMObsServer) -> None:
    total, batch_size, concurrency = 100_000, 100, 2
    project_id, dataset_id = seed(fake, 1000)
    pulled = 0

    def source() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(total):
            pulled += 1
            yield {"id": f"rec-{i % 1000}", "expected_output": i}

    finished = 0  # records whose batch has been answered
    at_arrival: list[int] = []  # records read but not yet answered, as each request arrives
    at_first_progress: list[int] = []
    # The first requests are slow: the reader must wait for them, not run ahead.
    fake.inject(
        delay=0.2,
        times=concurrency,
        match=lambda _: at_arrival.append(pulled - finished) is None,
    )

    def progress(p: BulkProgress) -> None:
        nonlocal finished
        finished = p.applied + p.failed
        if not at_first_progress:
            at_first_progress.append(pulled)

    async with client_for(fake, max_concurrency=concurrency) as client:
        result = check(
            await client.records.update_many(
                project_id, dataset_id, source(), batch_size=batch_size, on_progress=progress
            )
        )
    bound = batch_size * (concurrency + 2)
    assert len(at_arrival) == concurrency
    assert max(at_arrival) <= bound
    assert at_first_progress[0] <= bound
    assert (result.ok, result.submitted, result.applied) == (True, total, total)
    assert pulled == total
    assert fake.max_in_flight <= concurrency
    stored = fake.records(dataset_id)
    assert all(stored[f"rec-{j}"]["expected_output"] == total - 1000 + j for j in range(1000))


async def test_rate_limit_is_paced_from_headers() -> None:
    async with FakeLLMObsServer(rate_limit=(10, 0.25)) as fake:
        project_id, dataset_id = seed(fake, 400)
        async with client_for(fake, max_concurrency=8) as client:
            result = check(
                await client.records.update_many(
                    project_id, dataset_id, updates(range(400)), batch_size=10
                )
            )
        assert (result.ok, result.applied) == (True, 400)
        assert fake.rate_limit is not None
        rejected = fake.rate_limit.rejected
        assert rejected <= 4, f"{rejected} requests of 40 batches were answered 429"
        assert len(writes(fake)) == 40 + rejected
        assert_stored(fake, dataset_id, range(400))


async def test_progress_is_monotonic_and_ends_at_the_result(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    project_id, dataset_id = seed(fake, 450)
    fake.inject(status=503, times=2, match=lambda r: r.method != "GET")
    items = [{"input": "no id"} if i % 100 == 50 else update(i) for i in range(450)]  # 4 bad
    seen: list[BulkProgress] = []
    result = check(
        await client.records.update_many(
            project_id, dataset_id, items, batch_size=100, on_progress=seen.append
        )
    )
    assert counts(result) == (450, 446, 4, 2)
    assert seen and all(isinstance(p, BulkProgress) for p in seen)
    for field in ("submitted", "applied", "failed", "retries"):
        values = [getattr(p, field) for p in seen]
        assert values == sorted(values), f"{field} went down: {values}"
    assert counts(seen[-1]) == counts(result)


async def test_cancel_while_batches_are_in_flight_releases_everything(
    fake: FakeLLMObsServer,
) -> None:
    concurrency = 4
    project_id, dataset_id = seed(fake, 1000)
    all_in_flight = asyncio.Event()
    arrived = 0

    def hold(request: RecordedRequest) -> bool:
        nonlocal arrived
        if request.method == "GET" or not any(r.status for r in writes(fake)):
            return False  # the version read and the first batch (sent alone) go through
        arrived += 1
        if arrived >= concurrency:
            all_in_flight.set()
        return True

    fake.inject(delay=30, times=None, match=hold)
    async with client_for(fake, max_concurrency=concurrency) as client:
        task = asyncio.create_task(
            client.records.update_many(project_id, dataset_id, updates(range(1000)), batch_size=50)
        )
        async with asyncio.timeout(10):
            await all_in_flight.wait()
        assert client._pool.semaphore._value == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        assert client._pool.semaphore._value == concurrency
        fake.clear_faults()
        result = check(
            await client.records.update_many(project_id, dataset_id, updates(range(1000)))
        )
        assert (result.ok, result.applied) == (True, 1000)
        assert client._pool.semaphore._value == concurrency
    assert_stored(fake, dataset_id, range(1000))


class SourceBroke(Exception):
    pass


@pytest.mark.parametrize("kind", ["generator", "async-generator"])
async def test_exception_from_the_input_propagates_after_sending_what_was_read(
    fake: FakeLLMObsServer, client: LLMObsClient, kind: str
) -> None:
    project_id, dataset_id = seed(fake, 500)
    boom = SourceBroke("input file truncated")

    def source() -> Iterator[dict[str, Any]]:
        yield from updates(range(250))
        raise boom

    seen: list[BulkProgress] = []
    with pytest.raises(SourceBroke) as info:
        await client.records.update_many(
            project_id,
            dataset_id,
            source() if kind == "generator" else _agen(source()),
            batch_size=100,
            on_progress=seen.append,
        )
    assert info.value is boom
    assert any("update_many" in note for note in getattr(info.value, "__notes__", []))
    # What was read was sent and is accounted for: 250 read, 250 applied, none failed.
    assert counts(seen[-1])[:3] == (250, 250, 0)
    assert_stored(fake, dataset_id, range(250))
    assert_stored(fake, dataset_id, range(250, 500), updated=False)


async def test_a_failing_progress_callback_surfaces_after_every_batch_was_sent(
    fake: FakeLLMObsServer,
) -> None:
    project_id, dataset_id = seed(fake, 1_000)
    failure = RuntimeError("my progress bar broke")

    def on_progress(progress: BulkProgress) -> None:
        raise failure

    async with client_for(fake, max_concurrency=4) as client:
        with pytest.raises(RuntimeError) as info:
            await client.records.update_many(
                project_id,
                dataset_id,
                updates(range(1_000)),
                batch_size=100,
                on_progress=on_progress,
            )
    assert info.value is failure
    assert "every batch was still sent" in "".join(info.value.__notes__)
    stored = fake.records(dataset_id)
    assert all(stored[f"rec-{i}"]["expected_output"] == f"new-{i}" for i in range(1_000))


async def test_a_long_run_of_invalid_items_yields_to_the_loop_and_obeys_cancel(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    total = 150_000
    project_id, dataset_id = seed(fake, 1)
    pulled = 0

    def source() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(total):
            pulled += 1
            yield {"input": i}  # no id: invalid, never sent

    task = asyncio.create_task(client.records.update_many(project_id, dataset_id, source()))
    ticks = 0
    while pulled < 1000:  # this loop only runs if the job lets it
        ticks += 1
        await asyncio.sleep(0)
    assert ticks > 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert pulled < total // 10, "the job kept reading after cancel()"
    assert fake.requests == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("batch_size", 0),
        ("batch_size", -1),
        ("batch_size", 2.5),
        ("batch_size", 100.0),
        ("batch_size", True),
        ("batch_size", "10"),
        ("max_batch_bytes", 1000),
        ("max_batch_bytes", 5e6),
        ("max_batch_bytes", True),
    ],
)
async def test_batch_options_must_be_integers_in_range(
    fake: FakeLLMObsServer, client: LLMObsClient, option: str, value: Any
) -> None:
    project_id, dataset_id = seed(fake, 3)
    with pytest.raises(errors.ValidationError) as info:
        await client.records.update_many(
            project_id, dataset_id, updates(range(3)), **{option: value}
        )
    assert info.value.field == option
    assert fake.requests == []


def test_results_and_progress_pickle() -> None:
    failure = BulkFailure(
        records=({"id": "rec-1", "input": 1}, RecordUpdate(id="rec-2", input=2)),
        record_ids=("rec-1", "rec-2"),
        error=errors.LLMObsError("refused"),
    )
    result = BulkResult(submitted=5, applied=3, failed=[failure], retries=2)
    back = pickle.loads(pickle.dumps(result))
    assert (back.submitted, back.applied, back.retries, back.failed_count) == (5, 3, 2, 2)
    assert back.failed[0].records == failure.records
    assert back.failed[0].record_ids == failure.record_ids
    assert str(back.failed[0].error) == "refused"
    progress = BulkProgress(submitted=5, applied=3, failed=2, retries=1)
    assert pickle.loads(pickle.dumps(progress)) == progress
