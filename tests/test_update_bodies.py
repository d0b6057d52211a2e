"""Keyword updates are encoded without building the model: the same bytes, the same errors.

``experiments.update`` and ``projects.update`` encode plain keyword values
directly (the per-request hot path); everything else goes through the
request model. Each case sends the update both ways and compares what the
server received, or the error raised before anything was sent.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest

from llmobs_async import errors
from llmobs_async.models import ExperimentStatus, ExperimentUpdate, ProjectUpdate
from llmobs_async.testing import FakeLLMObsServer

from .conftest import client_for


class Label(str):
    """A str subclass: the model takes it, the encoder refuses it."""


class OtherStatus(enum.StrEnum):
    """Not ExperimentStatus, with one of its values."""

    COMPLETED = "completed"


EXPERIMENT_CASES: list[dict[str, Any]] = [
    {"status": "completed", "metadata": {"run": 3}},
    {"status": ExperimentStatus.FAILED, "error": "boom"},
    {"name": "n", "description": "", "dataset_id": "d", "metadata": {}},
    {"metadata": {"nested": {"a": [1, 2.5, None, True]}}},
    {"status": OtherStatus.COMPLETED},  # another enum's member: the model reads its value
]
EXPERIMENT_REFUSED: list[dict[str, Any]] = [
    {},
    {"status": "done"},
    {"status": 3},
    {"name": 5},
    {"name": Label("x")},
    {"metadata": {1: "x"}},
    {"metadata": {"when": object()}},
    {"metadata": [("a", 1)]},
    {"error": None},
]


@pytest.mark.parametrize("fields", EXPERIMENT_CASES)
async def test_a_keyword_experiment_update_sends_what_the_model_sends(
    fields: dict[str, Any],
) -> None:
    async with FakeLLMObsServer() as fake:
        experiment_id = fake.add_experiment(project_id=fake.add_project())
        async with client_for(fake) as client:
            await client.experiments.update(experiment_id, **fields)
            await client.experiments.update(experiment_id, ExperimentUpdate(**fields))
        keyword, model = (r for r in fake.requests if r.method == "PATCH")
    assert keyword.body == model.body


@pytest.mark.parametrize("fields", EXPERIMENT_REFUSED)
async def test_a_refused_keyword_experiment_update_raises_what_the_model_raises(
    fields: dict[str, Any],
) -> None:
    async with FakeLLMObsServer() as fake:
        async with client_for(fake) as client:
            with pytest.raises(errors.ValidationError) as by_keyword:
                await client.experiments.update("e1", **fields)
            with pytest.raises(errors.ValidationError) as by_model:
                await client.experiments.update("e1", ExperimentUpdate(**fields))
        assert not fake.requests
    assert str(by_keyword.value) == str(by_model.value)


@pytest.mark.parametrize(
    "fields", [{"name": "p"}, {"description": "d"}, {"name": "p", "description": ""}]
)
async def test_a_keyword_project_update_sends_what_the_model_sends(fields: dict[str, Any]) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        async with client_for(fake) as client:
            await client.projects.update(project_id, **fields)
            await client.projects.update(project_id, ProjectUpdate(**fields))
        keyword, model = fake.requests
    assert keyword.body == model.body
