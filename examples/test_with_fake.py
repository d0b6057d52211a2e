"""A pytest suite for your code, using the plugin's fixtures ``llmobs_fake`` and ``llmobs_client``.

    python -m pytest examples/test_with_fake.py -q

Installing ``llmobs-async`` (with pytest-asyncio) registers the plugin: no
conftest is needed. ``llmobs_fake`` is a started fake API with no data,
``llmobs_client`` a client bound to it. Seed the fake, run your code with the
client, then assert on what the fake stored and on the requests it received;
inject faults to test the unhappy paths. The tests are marked
``@pytest.mark.asyncio`` so they also run in pytest-asyncio's strict mode.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer

# --- the code under test: what your application would do --------------------------------


async def save_feedback(
    client: LLMObsClient, project_id: str, dataset_id: str, question: str, answer: str
) -> str:
    """Keep a question and its approved answer as a record; return the record's id."""
    if not question.strip():
        raise errors.ValidationError("question", "is empty")
    (record,) = await client.records.create(
        project_id, dataset_id, [{"input": {"question": question}, "expected_output": answer}]
    )
    return record.id


async def import_rows(
    client: LLMObsClient, project_id: str, dataset_id: str, rows: Iterable[tuple[str, str]]
) -> list[str | None]:
    """Import (id, question) rows as one new dataset version; return the ids that failed."""
    result = await client.records.create_many(
        project_id,
        dataset_id,
        ({"id": rid, "input": {"question": q}} for rid, q in rows),
    )
    return result.failed_ids


async def finish(client: LLMObsClient, experiment_id: str) -> models.Experiment:
    """Mark an experiment completed."""
    return await client.experiments.update(experiment_id, status="completed")


# --- the tests ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_feedback_is_stored(
    llmobs_fake: FakeLLMObsServer, llmobs_client: LLMObsClient
) -> None:
    project_id = llmobs_fake.add_project(name="support")
    dataset_id = llmobs_fake.add_dataset(project_id=project_id, name="feedback")

    record_id = await save_feedback(llmobs_client, project_id, dataset_id, "2+2?", "4")

    stored = llmobs_fake.records(dataset_id)[record_id]
    assert stored["input"] == {"question": "2+2?"}
    assert stored["expected_output"] == "4"


@pytest.mark.asyncio
async def test_feedback_survives_server_errors(
    llmobs_fake: FakeLLMObsServer, llmobs_client: LLMObsClient
) -> None:
    project_id = llmobs_fake.add_project()
    dataset_id = llmobs_fake.add_dataset(project_id=project_id)
    llmobs_fake.inject(status=503, times=2)  # the next two requests fail; the client retries

    await save_feedback(llmobs_client, project_id, dataset_id, "capital of France?", "Paris")

    assert [r.status for r in llmobs_fake.requests] == [503, 503, 200]
    assert len(llmobs_fake.records(dataset_id)) == 1


@pytest.mark.asyncio
async def test_empty_question_sends_nothing(
    llmobs_fake: FakeLLMObsServer, llmobs_client: LLMObsClient
) -> None:
    with pytest.raises(errors.ValidationError, match="question"):
        await save_feedback(llmobs_client, "p", "d", "  ", "4")
    assert llmobs_fake.requests == []


@pytest.mark.asyncio
async def test_import_reports_the_bad_row_only(
    llmobs_fake: FakeLLMObsServer, llmobs_client: LLMObsClient
) -> None:
    project_id = llmobs_fake.add_project()
    dataset_id = llmobs_fake.add_dataset(project_id=project_id)
    llmobs_fake.reject_record("row-7")  # the API refuses this one record

    failed = await import_rows(
        llmobs_client, project_id, dataset_id, ((f"row-{n}", f"q{n}") for n in range(50))
    )

    assert failed == ["row-7"]
    assert len(llmobs_fake.records(dataset_id)) == 49


@pytest.mark.asyncio
async def test_finish_marks_the_experiment_completed(
    llmobs_fake: FakeLLMObsServer, llmobs_client: LLMObsClient
) -> None:
    project_id = llmobs_fake.add_project()
    dataset_id = llmobs_fake.add_dataset(project_id=project_id, records=3)
    experiment_id = llmobs_fake.add_experiment(project_id=project_id, dataset_id=dataset_id)

    experiment = await finish(llmobs_client, experiment_id)

    assert experiment.status == "completed"
    assert llmobs_fake.experiments[experiment_id]["status"] == "completed"


@pytest.mark.asyncio
async def test_finish_unknown_experiment_is_not_found(llmobs_client: LLMObsClient) -> None:
    with pytest.raises(errors.NotFoundError):
        await finish(llmobs_client, "no-such-experiment")
