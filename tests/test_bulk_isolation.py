"""Bulk jobs isolate bad records, recognise request-level errors and stop on them.

Request budgets are counted at the fake server (``fake.requests``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .conftest import client_for
from .test_bulk import assert_stored, check, seed, sent_ids, update, updates, writes

UPDATES = "/data/attributes/update_records"
ONE_BAD_BUDGET = math.floor(2 * math.log2(1000) + 3)  # 22 requests for a batch of 1,000


def carrying(*ids: str) -> Any:
    """A fault matcher: requests that carry any of ``ids``."""
    needles = [f'"{rid}"'.encode() for rid in ids]
    return lambda r: any(n in r.body for n in needles)


def error_doc(
    status: int, title: str, detail: str | None = None, pointer: str | None = None
) -> Any:
    item: dict[str, Any] = {"status": str(status), "title": title}
    if detail:
        item["detail"] = detail
    if pointer:
        item["source"] = {"pointer": pointer}
    return {"errors": [item]}


def alone(fake: FakeLLMObsServer, record_id: str) -> list[RecordedRequest]:
    return [r for r in writes(fake) if sent_ids(r) == [record_id]]


@pytest.mark.parametrize(
    ("status", "bad"),
    [
        (400, 0),
        (400, 1),
        (400, 499),
        (400, 500),
        (400, 999),
        (404, 777),
        (409, 123),
        (422, 640),
    ],
)
async def test_one_bad_record_in_a_batch_of_1000_fails_alone_and_999_land(
    fake: FakeLLMObsServer, client: LLMObsClient, status: int, bad: int
) -> None:
    project_id, dataset_id = seed(fake, 1000)
    fake.reject_record(f"rec-{bad}", status=status)
    items = [update(i) for i in range(1000)]
    result = check(await client.records.update_many(project_id, dataset_id, items))
    assert (result.submitted, result.applied, result.stopped) == (1000, 999, None)
    [failure] = result.failed
    assert failure.record_ids == (f"rec-{bad}",)
    assert failure.records[0] is items[bad]
    assert (failure.positions, failure.sent) == ((bad,), True)
    assert isinstance(failure.error, errors.APIStatusError) and failure.error.status == status
    # Reported on the answer to a request that carried it alone, within budget.
    assert [r.status for r in alone(fake, f"rec-{bad}")] == [status]
    assert len(writes(fake)) <= ONE_BAD_BUDGET, len(writes(fake))
    assert_stored(fake, dataset_id, [i for i in range(1000) if i != bad])
    assert_stored(fake, dataset_id, [bad], updated=False)


async def test_several_bad_records_across_batches_each_fail_alone(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    project_id, dataset_id = seed(fake, 3000)
    bad = [5, 6, 1500, 2999]
    for i in bad:
        fake.reject_record(f"rec-{i}", status=404)
    result = check(await client.records.update_many(project_id, dataset_id, updates(range(3000))))
    assert (result.applied, result.stopped) == (2996, None)
    assert sorted(f.positions for f in result.failed) == [(i,) for i in bad]
    assert all(len(alone(fake, f"rec-{i}")) == 1 for i in bad)
    assert_stored(fake, dataset_id, [i for i in range(3000) if i not in bad])


async def test_a_pointer_is_followed_as_a_hint(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    project_id, dataset_id = seed(fake, 1000)
    body = error_doc(400, "Bad Request", "bad input", f"{UPDATES}/7/input")
    fake.inject(status=400, body=body, times=None, match=carrying("rec-7"))
    result = check(await client.records.update_many(project_id, dataset_id, updates(range(1000))))
    assert result.applied == 999
    assert result.failed_ids == ["rec-7"]
    # The batch, the record it points at alone, then the 999 others together.
    assert [len(sent_ids(r)) for r in writes(fake)] == [1000, 1, 999]
    assert sent_ids(writes(fake)[1]) == ["rec-7"]


async def test_a_wrong_pointer_does_not_condemn_the_record_it_names(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    project_id, dataset_id = seed(fake, 1000)
    # The server always blames the record at index 3; the bad one is rec-700.
    body = error_doc(400, "Bad Request", "bad input", f"{UPDATES}/3/input")
    fake.inject(status=400, body=body, times=None, match=carrying("rec-700"))
    result = check(await client.records.update_many(project_id, dataset_id, updates(range(1000))))
    assert result.applied == 999
    assert result.failed_ids == ["rec-700"]
    assert [r.status for r in alone(fake, "rec-3")] == [200]
    assert len(writes(fake)) <= ONE_BAD_BUDGET
    assert_stored(fake, dataset_id, [i for i in range(1000) if i != 700])


async def test_two_bad_records_sharing_an_error_do_not_pass_for_a_request_level_one(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    project_id, dataset_id = seed(fake, 2000)
    generic = error_doc(404, "Not Found")  # the same answer for both, nothing to tell them apart
    fake.inject(status=404, body=generic, times=None, match=carrying("rec-100", "rec-900"))
    fake.inject(status=404, body=generic, times=None, match=carrying("rec-1100", "rec-1900"))
    result = check(await client.records.update_many(project_id, dataset_id, updates(range(2000))))
    assert (result.applied, result.stopped) == (1996, None)
    assert sorted(result.failed_ids, key=lambda i: int(str(i)[4:])) == [
        "rec-100",
        "rec-900",
        "rec-1100",
        "rec-1900",
    ]
    assert all(len(f.records) == 1 for f in result.failed)


async def test_an_unknown_dataset_is_judged_request_level_within_budget(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    project_id, _ = seed(fake, 10)
    result = check(
        await client.records.update_many(project_id, "no-such-dataset", updates(range(5000)))
    )
    assert len(writes(fake)) <= 15, [len(sent_ids(r)) for r in writes(fake)]
    assert len(fake.requests) - len(writes(fake)) == 1  # one read of the (missing) version
    assert (result.submitted, result.applied, result.failed_count) == (5000, 0, 5000)
    assert all(isinstance(f.error, errors.NotFoundError) for f in result.failed)
    assert sorted(p for f in result.failed for p in f.positions) == list(range(5000))
    assert isinstance(result.stopped, errors.NotFoundError)
    assert not result.ok


async def test_a_request_level_error_twice_in_a_row_stops_the_job(fake: FakeLLMObsServer) -> None:
    project_id, _ = seed(fake, 10)
    total = 100_000
    async with client_for(fake, max_concurrency=2) as client:
        result = check(
            await client.records.update_many(
                project_id, "no-such-dataset", updates(range(total)), batch_size=100
            )
        )
    assert isinstance(result.stopped, errors.NotFoundError)
    assert len(writes(fake)) <= 9  # at most three batches, three requests each
    assert result.submitted <= 500, "the job kept reading after it stopped"
    assert (result.applied, result.failed_count) == (0, result.submitted)
    assert sorted(p for f in result.failed for p in f.positions) == list(range(result.submitted))
    # What was never sent says so, with the error that stopped the job.
    unsent = result.unsent
    assert unsent and all(isinstance(f.error, errors.NotFoundError) for f in unsent)
    sent_records = {rid for r in writes(fake) for rid in sent_ids(r)}
    assert not sent_records & {rid for f in unsent for rid in f.record_ids}


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, errors.AuthenticationError), (403, errors.PermissionDeniedError)],
)
async def test_401_and_403_stop_the_job_at_once(
    fake: FakeLLMObsServer, status: int, error: type[errors.APIStatusError]
) -> None:
    project_id, dataset_id = seed(fake, 10_000)
    fake.inject(status=status, times=None, match=lambda _: len(writes(fake)) > 4)
    async with client_for(fake, max_concurrency=2) as client:
        result = check(
            await client.records.update_many(
                project_id, dataset_id, updates(range(10_000)), batch_size=100
            )
        )
    assert isinstance(result.stopped, error)
    assert result.applied == 400
    assert len(writes(fake)) <= 4 + 2  # the requests already in flight, no splitting
    assert all(len(sent_ids(r)) == 100 for r in writes(fake))
    assert result.submitted < 1000
    assert all(isinstance(f.error, error) for f in result.failed)
    assert sorted(p for f in result.failed for p in f.positions) == list(
        range(400, result.submitted)
    )


async def test_a_split_batch_still_counts_progress_once_per_record(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    project_id, dataset_id = seed(fake, 1000)
    fake.reject_record("rec-321", status=422)
    seen: list[int] = []
    result = check(
        await client.records.update_many(
            project_id,
            dataset_id,
            updates(range(1000)),
            on_progress=lambda p: seen.append(p.applied),
        )
    )
    assert seen == sorted(seen) and seen[-1] == result.applied == 999


async def test_failures_keep_no_traceback_alive(fake: FakeLLMObsServer) -> None:
    """A kept traceback holds its frames, and with them the batch and its body."""
    project_id, dataset_id = seed(fake, 300)
    fake.reject_record("rec-150")
    fake.inject(drop=True, times=None, match=carrying("rec-250"))
    async with client_for(fake, max_retries=0) as client:
        result = check(
            await client.records.update_many(
                project_id, dataset_id, updates(range(300)), batch_size=100
            )
        )
    assert sorted(result.failed_ids, key=str) == ["rec-150", *(f"rec-{i}" for i in range(200, 300))]
    dropped = next(f.error for f in result.failed if isinstance(f.error, errors.APIConnectionError))
    assert dropped.__cause__ is not None  # the transport's error is still there, for its message
    for failure in result.failed:
        error: BaseException | None = failure.error
        while error is not None:
            assert error.__traceback__ is None, repr(error)
            error = error.__cause__ or error.__context__
