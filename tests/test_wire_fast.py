"""The hand-written experiment reader reads every object as the generic one does.

``experiments.update`` reads its answer with :mod:`llmobs_async._wire.experiments`
(the per-request hot path); every other model goes through the cattrs
reader of :mod:`llmobs_async._wire`. Both must agree on every field, on
missing and null values, on unknown keys, and on what they refuse.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from llmobs_async._wire import experiments as wire_experiments
from llmobs_async._wire import jsonapi
from llmobs_async.models import Experiment

FIELDS = [a.name for a in attrs.fields(Experiment) if a.name != "extra"]
STAMPS = ["2024-01-15T10:30:00Z", "2024-01-15T10:30:00.123456789+02:00", "2024-01-15", "nope"]
VALUES = st.one_of(
    st.none(),
    st.sampled_from([*STAMPS, "completed", "running", "weird", ""]),
    st.text(max_size=5),
    st.integers(-3, 3),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({"id": st.text(max_size=3)}),
)
OBJECTS = st.dictionaries(
    st.sampled_from([*FIELDS, "unknown", "type"]), VALUES, max_size=len(FIELDS) + 2
)


def read(structure: Any, obj: dict[str, Any]) -> Any:
    try:
        return structure(dict(obj))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # the transport maps these
        return ("refused", exc is not None)


@settings(max_examples=400, deadline=None)
@given(OBJECTS)
def test_the_fast_experiment_reader_agrees_with_the_generic_one(obj: dict[str, Any]) -> None:
    expected = read(jsonapi.structure_experiment, obj)
    assert read(wire_experiments.structure_experiment, obj) == expected


def test_a_full_experiment_reads_the_same_and_shares_equal_timestamps() -> None:
    stamp = "2024-01-15T10:30:00Z"
    obj = {
        "id": "e1",
        "name": "n",
        "created_at": stamp,
        "updated_at": stamp,
        "status": "completed",
        "metadata": {"run": 3},
        "author": {"id": "a"},
        "dataset_version": "2",
        "aggregate_data": {"x": 1},
        "novel": [1],
    }
    fast = wire_experiments.structure_experiment(obj)
    assert fast == jsonapi.structure_experiment(obj)
    assert fast.extra == {"novel": [1]}
    assert fast.updated_at is fast.created_at
