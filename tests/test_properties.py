"""Property-based round trips (hypothesis): any JSON value, any experiment update."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmobs_async import models
from llmobs_async.models import ExperimentStatus, ExperimentUpdate, RecordUpdate
from llmobs_async.testing import FakeLLMObsServer

from .conftest import client_for

STATUS_INPUTS = [*ExperimentStatus, *(s.value for s in ExperimentStatus)]


def _canon(value: Any) -> str:
    """JSON text of ``value``: tells 1 from 1.0 from True, unlike ``==``."""
    return json.dumps(value, sort_keys=True)


def _sent(fake: FakeLLMObsServer) -> Any:
    """The JSON body of the last request the fake server received."""
    return fake.requests[-1].json()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=3)


@settings(max_examples=40, deadline=None)
@given(input_=json_values, expected=json_values, metadata=json_objects)
def test_any_json_value_round_trips_through_records_update(input_, expected, metadata):
    async def run() -> tuple[models.DatasetRecord, dict[str, Any]]:
        async with FakeLLMObsServer() as fake:
            pid = fake.add_project()
            did = fake.add_dataset(project_id=pid, records=1)
            update = RecordUpdate(
                id="rec-0", input=input_, expected_output=expected, metadata=metadata
            )
            async with client_for(fake) as client:
                [rec] = await client.records.update(pid, did, [update])
            return rec, fake.records(did)["rec-0"]

    rec, stored = asyncio.run(run())
    for got in (stored, {"input": rec.input, "expected_output": rec.expected_output}):
        assert _canon(got["input"]) == _canon(input_)
        assert _canon(got["expected_output"]) == _canon(expected)
    assert _canon(stored["metadata"]) == _canon(metadata)
    assert _canon(rec.metadata) == _canon(metadata)


TEXT_FIELDS = dict.fromkeys(["name", "description", "dataset_id", "error"], st.text(max_size=8))
experiment_updates = st.fixed_dictionaries(
    {}, optional={**TEXT_FIELDS, "status": st.sampled_from(STATUS_INPUTS), "metadata": json_objects}
).filter(bool)
ORIGINAL = {"name": "orig", "description": "orig desc", "error": "orig err", "metadata": {"o": 1}}


@settings(max_examples=40, deadline=None)
@given(fields=experiment_updates, as_model=st.booleans())
def test_any_experiment_update_changes_exactly_the_fields_set(fields, as_model):
    async def run() -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with FakeLLMObsServer() as fake:
            fake.experiment_patch_echo = True  # as in conftest: the 0.1 client reads the answer
            eid = fake.add_experiment(project_id=fake.add_project())
            fake.experiments[eid].update(copy.deepcopy(ORIGINAL))
            before = copy.deepcopy(fake.experiments[eid])
            async with client_for(fake) as client:
                if as_model:
                    exp = await client.experiments.update(eid, ExperimentUpdate(**fields))
                else:
                    exp = await client.experiments.update(eid, **fields)
            return exp, before, fake.experiments[eid], _sent(fake)["data"]["attributes"]

    exp, before, after, sent = asyncio.run(run())
    wanted = {k: v.value if isinstance(v, ExperimentStatus) else v for k, v in fields.items()}
    assert _canon(sent) == _canon(wanted)
    del before["updated_at"], after["updated_at"]  # the only field the server itself changes
    assert _canon(after) == _canon({**before, **wanted})
    for key, value in wanted.items():
        if value == "" and key == "description":
            value = None  # the API leaves an empty description out of its answer
        assert _canon(getattr(exp, key)) == _canon(value), key
