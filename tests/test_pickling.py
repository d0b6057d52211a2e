"""Exceptions and bulk results survive pickling, so a worker process can send them back."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded, client_for


def _round_trip(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value))


def _same(exc: BaseException, back: BaseException) -> None:
    assert type(back) is type(exc)
    assert str(back) == str(exc) and back.args == exc.args
    mine, theirs = vars(exc), vars(back)
    assert mine.keys() == theirs.keys()
    for name, value in mine.items():
        if name == "headers":
            assert list(theirs[name].items()) == list(value.items())
        elif name not in ("failures", "result"):  # compared by the bulk test
            assert theirs[name] == value, name


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 429, 500, 418])
async def test_every_status_error_pickles(
    fake: FakeLLMObsServer, seeded: Seeded, status: int
) -> None:
    headers = {"X-RateLimit-Limit": "10", "X-RateLimit-Reset": "3", "Retry-After": "3"}
    fake.inject(status=status, headers=headers)
    async with client_for(fake, max_retries=0) as client:
        with pytest.raises(errors.APIStatusError) as info:
            await client.projects.update(seeded.project_id, name="x")
    exc = info.value
    back = _round_trip(exc)
    _same(exc, back)
    assert back.errors and back.errors == exc.errors
    if isinstance(exc, errors.RateLimitError):
        assert back.retry_after == exc.retry_after == 3
        assert back.rate_limit == exc.rate_limit and back.rate_limit is not None


async def test_transport_and_input_errors_pickle(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    raised: list[errors.LLMObsError] = []
    async with client_for(fake, max_retries=0, timeout=0.05) as client:
        fake.inject(delay=1.0)
        fake.inject(status=200, body=b"not json")
        fake.inject(drop=True)
        for _ in range(3):
            with pytest.raises(errors.LLMObsError) as info:
                await client.projects.update(seeded.project_id, name="x")
            raised.append(info.value)
        with pytest.raises(errors.ValidationError) as invalid:
            await client.projects.update(seeded.project_id, name=3)  # type: ignore[arg-type]
        raised.append(invalid.value)
    raised.append(
        errors.ResponseTooLargeError("too big", status=200, method="PATCH", url="u", limit=1)
    )
    assert [type(e) for e in raised] == [
        errors.APITimeoutError,
        errors.APIResponseValidationError,
        errors.APIConnectionError,
        errors.ValidationError,
        errors.ResponseTooLargeError,
    ]
    for exc in raised:
        _same(exc, _round_trip(exc))
    assert _round_trip(raised[3]).field == "name"


async def test_a_bulk_result_with_failures_pickles(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    fake.reject_record("rec-0", status=404)  # bulk jobs isolate it: it fails alone
    records = [{"id": f"rec-{i}", "expected_output": str(i)} for i in range(4)]
    records.insert(2, {"input": "no id"})
    async with client_for(fake, max_retries=0) as client:
        result = await client.records.update_many(
            seeded.project_id, seeded.dataset_id, records, batch_size=2
        )
    kinds = {type(f.error) for f in result.failed}
    assert kinds == {errors.ValidationError, errors.NotFoundError}
    back = _round_trip(result)
    assert (back.submitted, back.applied, back.failed_ids) == (
        result.submitted,
        result.applied,
        result.failed_ids,
    )
    for mine, theirs in zip(result.failed, back.failed, strict=True):
        assert theirs.records == mine.records
        _same(mine.error, theirs.error)
    with pytest.raises(errors.BulkUpdateError) as info:
        result.raise_for_failures()
    bulk = _round_trip(info.value)
    _same(info.value, bulk)
    assert bulk.result.failed_ids == result.failed_ids
    assert [str(f.error) for f in bulk.failures] == [str(f.error) for f in result.failed]


def test_an_error_from_another_process_has_no_client_attached() -> None:
    # Exceptions carry data only; pickling never drags a client (and its keys) along.
    client = LLMObsClient(api_key="sekrit-api-key-0123456789", app_key="sekrit-app-key-98765")
    with pytest.raises(errors.ValidationError) as info:
        client.with_options(timeout=0)
    assert b"sekrit" not in pickle.dumps(info.value)
