"""Request validation, PATCH bodies and response models, against the real fake server."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.models import (
    ExperimentMetric,
    ExperimentStatus,
    ExperimentUpdate,
    ProjectUpdate,
    RecordUpdate,
)
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded

Call = Callable[[LLMObsClient, Seeded], Coroutine[Any, Any, Any]]
NOW_MS = int(datetime.now(UTC).timestamp() * 1000)
SCORE = {"span_id": "s1", "label": "acc", "metric_type": "score", "timestamp_ms": NOW_MS}
STATUS_INPUTS = [*ExperimentStatus, *(s.value for s in ExperimentStatus)]


def _sent(fake: FakeLLMObsServer) -> Any:
    """The JSON body of the last request the fake server received."""
    return fake.requests[-1].json()


# --- request models validate on construction ------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (ExperimentUpdate, {"status": "paused"}, "status"),
        (ExperimentUpdate, {"status": "Completed"}, "status"),
        (ExperimentUpdate, {"status": 1}, "status"),
        (ExperimentUpdate, {"status": None}, "status"),
        (ExperimentUpdate, {"name": 5}, "name"),
        (ExperimentUpdate, {"description": b"bytes"}, "description"),
        (ExperimentUpdate, {"dataset_id": 42}, "dataset_id"),
        (ExperimentUpdate, {"error": ValueError("boom")}, "error"),
        (ExperimentUpdate, {"metadata": [("a", 1)]}, "metadata"),
        (ExperimentUpdate, {"metadata": "{}"}, "metadata"),
        (ExperimentUpdate, {"metadata": {1: "x"}}, "metadata"),
        (ProjectUpdate, {"name": 1}, "name"),
        (ProjectUpdate, {"description": None}, "description"),
        (RecordUpdate, {"id": ""}, "id"),
        (RecordUpdate, {"id": 7}, "id"),
        (RecordUpdate, {"id": "r", "metadata": ["x"]}, "metadata"),
        (RecordUpdate, {"id": "r", "metadata": {None: 1}}, "metadata"),
        (ExperimentMetric, {**SCORE, "score_value": 1, "metric_source": "global"}, "metric_source"),
        (
            ExperimentMetric,
            {**SCORE, "score_value": 1, "metric_source": "custom", "span_id": ""},
            "span_id",
        ),
        (ExperimentMetric, {**SCORE, "score_value": 1, "error": {"message": 5}}, "error.message"),
        (ExperimentMetric, {**SCORE, "score_value": 1, "error": ["boom"]}, "error"),
        (ExperimentMetric, {**SCORE, "error": None}, "score_value"),  # null error: not an error
        (ExperimentMetric, {**SCORE, "metric_type": "json", "json_value": "x"}, "json_value"),
        (ExperimentMetric, {**SCORE, "score_value": 1, "trace_id": 7}, "trace_id"),
        (ExperimentMetric, {**SCORE, "score_value": 1, "experiment_id": ""}, "experiment_id"),
    ],
)
def test_request_models_validate_on_construction(cls, kwargs, field):
    with pytest.raises(errors.ValidationError) as info:
        cls(**kwargs)
    assert info.value.field == field


def test_record_update_without_id_is_refused_naming_id():
    # A missing constructor argument is Python's TypeError (and a type-checker
    # error); an empty or non-string id is a ValidationError naming the field.
    with pytest.raises(TypeError, match="'id'"):
        RecordUpdate()  # type: ignore[call-arg]
    with pytest.raises(errors.ValidationError) as info:
        RecordUpdate(id="")
    assert info.value.field == "id"


@pytest.mark.parametrize("status", STATUS_INPUTS)
def test_status_accepts_the_enum_or_its_string_value(status):
    assert ExperimentUpdate(status=status).status is ExperimentStatus(status)


# --- invalid calls raise before anything is sent ---------------------------------------


def _exp(*args: Any, **kwargs: Any) -> Call:
    return lambda c, s: c.experiments.update(s.experiment_id, *args, **kwargs)


def _proj(*args: Any, **kwargs: Any) -> Call:
    return lambda c, s: c.projects.update(s.project_id, *args, **kwargs)


def _recs(records: Any) -> Call:
    return lambda c, s: c.records.update(s.project_id, s.dataset_id, records)


def _bad_at_a2(value: Any) -> Call:
    """Two records; the second's input holds ``value`` at ``input.a[2]``."""
    return _recs([RecordUpdate(id="rec-0"), {"id": "rec-1", "input": {"a": [0, 1, value]}}])


def _envelope(type_: str) -> dict[str, Any]:
    return {"data": {"type": type_, "attributes": {"name": "x"}}}


META_K = "records[0].metadata.k"
A2 = "records[1].input.a[2]"  # the contract's example: the bad value sits at input.a[2]
REJECTED: dict[str, tuple[Call, str]] = {
    "bad-status": (_exp(status="paused"), "status"),
    "name-none": (_exp(name=None), "name"),
    "error-int": (_exp(error=3), "error"),
    "metadata-list": (_exp(metadata=["a"]), "metadata"),
    "metadata-int-key": (_exp(metadata={1: "a"}), "metadata"),
    "metadata-nan": (_exp(metadata={"a": [1, math.nan]}), "metadata.a[1]"),
    "metadata-nested-int-key": (_exp(metadata={"a": {1: "x"}}), "metadata.a"),
    "empty-experiment": (_exp(), "body"),
    "empty-experiment-model": (_exp(ExperimentUpdate()), "body"),
    "model-and-keywords": (_exp(ExperimentUpdate(name="a"), name="b"), "body"),
    "mapping-unknown-key": (_exp({"title": "x"}), "title"),
    "envelope-wrong-type": (_exp(_envelope("projects")), "data.type"),
    "empty-project": (_proj(), "body"),
    "empty-project-model": (_proj(ProjectUpdate()), "body"),
    "project-model-and-keywords": (_proj(ProjectUpdate(name="a"), description="b"), "body"),
    "project-name-int": (_proj(name=3), "name"),
    "project-envelope-wrong-type": (_proj(_envelope("experiments")), "data.type"),
    "experiment-id-empty": (lambda c, s: c.experiments.update("", name="x"), "experiment_id"),
    "experiment-id-dotdot": (lambda c, s: c.experiments.update("..", name="x"), "experiment_id"),
    "project-id-dotdot": (lambda c, s: c.projects.update("..", name="x"), "project_id"),
    "dataset-id-empty": (lambda c, s: c.records.update("p", "", [{"id": "r"}]), "dataset_id"),
    "records-project-dot": (lambda c, s: c.records.update(".", "d", [{"id": "r"}]), "project_id"),
    "records-empty": (_recs([]), "records"),
    "records-mapping": (_recs({"id": "rec-0"}), "records"),
    "records-generator": (_recs(iter([{"id": "rec-0"}])), "records"),
    "records-str": (_recs("rec-0"), "records"),
    "record-no-id": (_recs([{"id": "rec-0"}, {"input": 1}]), "records[1].id"),
    "record-empty-id": (_recs([{"id": ""}]), "records[0].id"),
    "record-int-id": (_recs([{"id": 5}]), "records[0].id"),
    "record-unknown-key": (_recs([{"id": "rec-0", "inputs": 1}]), "records[0].inputs"),
    "record-nan": (_bad_at_a2(math.nan), A2),
    "record-set": (_bad_at_a2({1, 2}), A2),
    "record-object": (_bad_at_a2(object()), A2),
    "record-int-key": (_bad_at_a2({3: "x"}), A2),
    "record-inf": (_recs([{"id": "r", "expected_output": math.inf}]), "records[0].expected_output"),
    "record-metadata-inf": (_recs([{"id": "r", "metadata": {"k": -math.inf}}]), META_K),
    "record-envelope-wrong-type": (_recs([_envelope("experiments")]), "records[0].data.type"),
}


@pytest.mark.parametrize(("call", "field"), REJECTED.values(), ids=REJECTED.keys())
async def test_invalid_call_raises_before_sending(fake, seeded, client, call, field):
    with pytest.raises(errors.ValidationError) as info:
        await call(client, seeded)
    assert info.value.field == field
    assert fake.requests == []


async def test_metadata_may_be_any_mapping_not_only_a_dict(fake, seeded, client):
    exp = await client.experiments.update(
        seeded.experiment_id, metadata=MappingProxyType({"team": "ml"})
    )
    assert exp.metadata == {"team": "ml"}
    assert fake.experiments[seeded.experiment_id]["metadata"] == {"team": "ml"}


async def test_a_metric_s_ddtrace_fields_reach_the_wire_and_unset_ones_do_not(fake, seeded, client):
    summary = ExperimentMetric(
        span_id="", trace_id="", label="avg", metric_type="json", timestamp_ms=NOW_MS,
        metric_source=models.MetricSource.SUMMARY, json_value=[1, {"a": 2}], error=None,
        experiment_id=seeded.experiment_id,
    )  # fmt: skip
    failed = {**SCORE, "metric_source": "custom", "error": {"message": "m", "type": "E"}}
    legacy = {**SCORE, "span_id": "", "score_value": 0.5}  # no metric_source: "" is kept valid
    await client.experiments.events.create(seeded.experiment_id, metrics=[summary, failed, legacy])
    sent = _sent(fake)["data"]["attributes"]["metrics"]
    assert sent == [
        {
            "span_id": "", "label": "avg", "metric_type": "json", "timestamp_ms": NOW_MS,
            "metric_source": "summary", "trace_id": "", "experiment_id": seeded.experiment_id,
            "json_value": [1, {"a": 2}], "error": None,
        },
        {**SCORE, "metric_source": "custom", "error": {"message": "m", "type": "E"}},
        legacy,
    ]  # fmt: skip
    stored = fake.events(seeded.experiment_id).metrics
    assert [m["metric_source"] for m in stored] == ["summary", "custom", "summary"]


# --- PATCH semantics: absent is not null -----------------------------------------------


async def test_fields_not_passed_are_absent_from_the_body(fake, seeded, client):
    await client.experiments.update(seeded.experiment_id, status=ExperimentStatus.COMPLETED)
    patch = fake.requests[-2].json()  # then the read-back of the live API's empty answer
    assert patch == {"data": {"type": "experiments", "attributes": {"status": "completed"}}}
    await client.projects.update(seeded.project_id, ProjectUpdate(description=""))
    assert _sent(fake) == {"data": {"type": "projects", "attributes": {"description": ""}}}


async def test_none_is_sent_and_stored_as_null_and_absent_is_kept(fake, seeded, client):
    stored = fake.records(seeded.dataset_id)["rec-1"]
    stored["expected_output"] = "old answer"
    [rec] = await client.records.update(
        seeded.project_id, seeded.dataset_id, [RecordUpdate(id="rec-1", expected_output=None)]
    )
    assert _sent(fake)["data"]["attributes"] == {
        "records": [{"id": "rec-1", "expected_output": None}]
    }
    assert stored["expected_output"] is None
    assert stored["input"] == {"i": 1}  # absent: untouched
    assert (rec.expected_output, rec.input) == (None, {"i": 1})


async def test_the_official_example_body_round_trips(fake, seeded, client):
    rid = "rec-7c3f5a1b-9e2d-4f8a-b1c6-3d7e9f0a2b4c"
    fake.store.add_records(seeded.dataset_id, [{"id": rid, "input": "q", "expected_output": "a"}])
    item = {"expected_output": None, "id": rid, "input": None}
    [rec] = await client.records.update(seeded.project_id, seeded.dataset_id, [dict(item)])
    assert _sent(fake) == {"data": {"attributes": {"records": [item]}, "type": "records"}}
    stored = fake.records(seeded.dataset_id)[rid]
    assert (stored["input"], stored["expected_output"]) == (None, None)
    assert (rec.id, rec.input, rec.expected_output) == (rid, None, None)


# --- response models --------------------------------------------------------------------

AUTHOR = {
    "email": "jane.doe@example.com",
    "handle": "jane.doe@example.com",
    "icon": "https://example.com/icon.png",
    "id": "00000000-0000-0000-0000-000000000010",
    "name": "Jane Doe",
}
FULL_EXPERIMENT = {
    "aggregate_data": {"eval": {"mean": 0.5}},
    "author": AUTHOR,
    "config": {"model": "gpt"},
    "created_at": "2024-01-15T10:30:00.123456789Z",
    "dataset_id": "9f64e5c7-dc5a-45c8-a17c-1b85f0bec97d",
    "dataset_name": "golden",
    "dataset_version": 7,
    "deleted_at": "2019-09-19T10:00:00.000Z",
    "description": "",
    "error": "it broke",
    "experiment": "my-pipeline",
    "metadata": {"k": [1, 2]},
    "name": "My Experiment v1",
    "parent_experiment_id": "3fd6b5e0-8910-4b1c-a7d0-5b84de329012",
    "run_count": 3,
    "status": "completed",
}
NOT_PLAIN = {"author", "created_at", "deleted_at", "description", "status"}


async def test_every_experiment_field_round_trips(fake, seeded, client):
    fake.experiment_patch_echo = True  # read from the PATCH answer (deleted_at hides it in lists)
    fake.experiments[seeded.experiment_id].update(copy.deepcopy(FULL_EXPERIMENT))
    before = datetime.now(UTC)
    exp = await client.experiments.update(seeded.experiment_id, description="new")
    assert exp.id == seeded.experiment_id
    assert exp.project_id == seeded.project_id
    assert exp.description == "new"
    plain = {k: v for k, v in FULL_EXPERIMENT.items() if k not in NOT_PLAIN}
    assert {key: getattr(exp, key) for key in plain} == plain
    assert exp.status is ExperimentStatus.COMPLETED
    assert exp.author == models.ExperimentAuthor(**AUTHOR)
    assert exp.created_at == datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    assert exp.deleted_at == datetime(2019, 9, 19, 10, 0, tzinfo=UTC)
    assert exp.updated_at.tzinfo is not None
    assert exp.updated_at >= before - timedelta(seconds=1)
    assert exp.extra == {}
    assert exp.author.extra == {}


async def test_project_and_record_fields_round_trip(fake, seeded, client):
    fake.projects[seeded.project_id]["created_at"] = "2024-01-15T10:30:00Z"
    proj = await client.projects.update(seeded.project_id, name="renamed", description="d")
    assert (proj.id, proj.name, proj.description) == (seeded.project_id, "renamed", "d")
    assert proj.created_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert proj.updated_at.tzinfo is not None
    assert proj.extra == {}

    recs = await client.records.update(
        seeded.project_id,
        seeded.dataset_id,
        [{"id": "rec-2", "input": [1, "x"], "expected_output": 2.5, "metadata": {"m": True}}],
    )
    stored = fake.records(seeded.dataset_id)["rec-2"]
    assert recs == [
        models.DatasetRecord(
            id="rec-2",
            dataset_id=seeded.dataset_id,
            created_at=datetime.fromisoformat(stored["created_at"]),
            updated_at=datetime.fromisoformat(stored["updated_at"]),
            input=[1, "x"],
            expected_output=2.5,
            metadata={"m": True},
            canonical_id=stored["canonical_id"],
            version=fake.store.datasets[seeded.dataset_id].version,
            author=models.Author(id=stored["author"]["id"]),
        )
    ]
    assert recs[0].created_at.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-09-19T10:00:00.000Z", datetime(2019, 9, 19, 10, tzinfo=UTC)),
        ("2024-01-15T10:30:00Z", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T10:30:00.123456789Z", datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)),
        ("2024-01-15T12:30:00.5+02:00", datetime(2024, 1, 15, 10, 30, 0, 500000, tzinfo=UTC)),
        ("2024-01-15T10:30:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
    ],
)
async def test_timestamps_parse_timezone_aware(fake, seeded, client, text, expected):
    fake.projects[seeded.project_id]["created_at"] = text
    proj = await client.projects.update(seeded.project_id, name="x")
    assert proj.created_at == expected
    assert proj.created_at.utcoffset() is not None


async def test_unknown_fields_are_kept_in_extra(fake, seeded, client):
    fake.experiments[seeded.experiment_id]["cost_center"] = {"team": "ml"}
    fake.experiments[seeded.experiment_id]["author"] = {**AUTHOR, "timezone": "UTC"}
    fake.projects[seeded.project_id]["archived"] = False
    fake.records(seeded.dataset_id)["rec-3"]["quality"] = {"score": 1}
    exp = await client.experiments.update(seeded.experiment_id, name="x")
    proj = await client.projects.update(seeded.project_id, name="x")
    [rec] = await client.records.update(seeded.project_id, seeded.dataset_id, [{"id": "rec-3"}])
    assert exp.extra == {"cost_center": {"team": "ml"}}
    assert exp.author is not None
    assert (exp.author.name, exp.author.extra) == ("Jane Doe", {"timezone": "UTC"})
    assert proj.extra == {"archived": False}
    assert rec.extra == {"quality": {"score": 1}}


async def test_an_api_field_named_extra_goes_inside_extra(fake, seeded, client):
    # The reader hands unknown fields to cattrs under the plain key "extra"
    # (cattrs before 26.2 cannot take a NUL byte there): an API field of that
    # name must land inside the mapping, not replace it.
    fake.projects[seeded.project_id]["extra"] = {"mine": 1}
    fake.projects[seeded.project_id]["\x00extra"] = "odd"
    proj = await client.projects.update(seeded.project_id, name="x")
    assert proj.extra == {"extra": {"mine": 1}, "\x00extra": "odd"}
    del fake.projects[seeded.project_id]["\x00extra"]
    proj = await client.projects.update(seeded.project_id, name="y")
    assert (proj.name, proj.extra) == ("y", {"extra": {"mine": 1}})


async def test_unknown_status_is_kept_as_a_plain_string(fake, seeded, client):
    fake.experiments[seeded.experiment_id]["status"] = "paused"
    exp = await client.experiments.update(seeded.experiment_id, name="x")
    assert (exp.status, type(exp.status)) == ("paused", str)


OPTIONAL = ("error", "experiment", "parent_experiment_id", "dataset_name", "dataset_version")
OPTIONAL += ("run_count", "deleted_at", "author", "aggregate_data", "status")


@pytest.mark.parametrize("how", ["missing", "null"])
async def test_optional_fields_missing_or_null_are_none(fake, seeded, client, how):
    stored = fake.experiments[seeded.experiment_id]
    stored.update(copy.deepcopy(FULL_EXPERIMENT))
    for key in OPTIONAL:
        del stored[key]
    if how == "null":
        stored.update(dict.fromkeys(OPTIONAL))
    exp = await client.experiments.update(seeded.experiment_id, name="x")
    assert {key: getattr(exp, key) for key in OPTIONAL} == dict.fromkeys(OPTIONAL)
    assert exp.extra == {}


async def test_null_required_string_is_not_read_as_the_string_none(fake, seeded, client):
    ts = "2024-01-15T10:30:00Z"
    attrs_ = {"name": "p", "description": None, "created_at": ts, "updated_at": ts}
    fake.inject(status=200, body={"data": {"id": "p", "type": "projects", "attributes": attrs_}})
    # Either reading null as None or refusing the body is acceptable; "None" is not.
    with contextlib.suppress(errors.APIResponseValidationError):
        proj = await client.projects.update(seeded.project_id, name="x")
        assert proj.description is None


BAD_BODIES = {
    "data-int": b'{"data": 1}',
    "data-null": b'{"data": null}',
    "list": b"[]",
    "empty": b"",
    "html": b"<html><head><title>Welcome</title></head><body>login</body></html>",
    "missing-id": b'{"data": {"type": "experiments", "attributes": {"name": "n"}}}',
    "bad-date": b'{"data": {"id": "x", "attributes": {"name": "n", "description": "",'
    b' "created_at": "yesterday", "updated_at": "today"}}}',
    "attributes-list": b'{"data": {"id": "x", "attributes": [1]}}',
    "records-garbage": b'{"data": [{"records": [{"id": "r"}]}, 3]}',
}


CALLS = {"exp": _exp(name="x"), "proj": _proj(name="x"), "recs": _recs([{"id": "rec-0"}])}
# An empty experiment answer is the live API's own (see test_live_bodies): not a bad body.
BAD_ANSWERS = [
    pytest.param(call, body, id=f"{call_id}-{body_id}")
    for call_id, call in CALLS.items()
    for body_id, body in BAD_BODIES.items()
    if (call_id, body_id) != ("exp", "empty")
]


@pytest.mark.parametrize(("call", "body"), BAD_ANSWERS)
async def test_undocumented_2xx_body_is_a_response_validation_error(
    fake, seeded, client, body, call
):
    headers = {"Content-Type": "text/html"} if body.startswith(b"<") else None
    fake.inject(status=200, body=body, headers=headers)
    with pytest.raises(errors.APIResponseValidationError) as info:
        await call(client, seeded)
    assert (info.value.status, info.value.method, info.value.body) == (200, "PATCH", body)
    assert info.value.url.startswith(fake.base_url + "/api/v2/llm-obs/v1/")
    assert len(fake.requests) == 1  # a bad 2xx is not retried
