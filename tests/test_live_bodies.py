"""The live API's real answers parse, directly and through the client (API-REFERENCE 4.2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from llmobs_async import errors, models
from llmobs_async._wire import jsonapi
from llmobs_async._wire import records as _wire_records
from llmobs_async.models import Author, DatasetRecord, Experiment, Project

from . import live_bodies
from .conftest import Seeded

PROJECT = Project(
    id="c4b49fb5-…",
    name="new-different-project",
    description=None,
    created_at=datetime(2025, 10, 16, 21, 4, 7, 493104, tzinfo=UTC),
    updated_at=datetime(2025, 10, 16, 21, 4, 7, 493104, tzinfo=UTC),
    author=Author(id="de473b30-…"),
)
EXPERIMENT = Experiment(
    id="9d015796-…",
    name="test_experiment-1774555824312",
    experiment="test_experiment",
    description="",
    project_id="c4b49fb5-…",
    dataset_id="056ba26f-…",
    dataset_version=1,
    run_count=1,
    config={},
    metadata={"tags": ["ddtrace.version:1.2.3", "project_id:c4b49fb5-…"]},
    created_at=datetime(2026, 3, 26, 20, 10, 24, 312240, tzinfo=UTC),
    updated_at=datetime(2026, 3, 26, 20, 10, 24, 312240, tzinfo=UTC),
    author=Author(id="422c9d15-…"),
)
RECORD = DatasetRecord(
    id="record-id-1",
    dataset_id="09ac049e-…",
    input={"prompt": "What is the capital of Massachusetts?"},
    expected_output={"answer": "Boston"},
    tags=("priority:high", "team:ml"),
    canonical_id="24671c08-…",
    version=1,
    author=Author(id="422c9d15-…"),
    created_at=datetime(2026, 3, 26, 20, 1, 34, 51443, tzinfo=UTC),
    updated_at=datetime(2026, 3, 26, 20, 1, 34, 51443, tzinfo=UTC),
)
LISTED = attrs.evolve(RECORD, version=None)

Load = Callable[[bytes], Any]
CASES: dict[str, tuple[Load, bytes, Any]] = {
    "project-create": (jsonapi.one(jsonapi.structure_project), live_bodies.PROJECT_CREATE, PROJECT),
    "experiment-create": (
        jsonapi.one(jsonapi.structure_experiment),
        live_bodies.EXPERIMENT_CREATE,
        EXPERIMENT,
    ),
    "batch-update": (_wire_records.load_records, live_bodies.BATCH_UPDATE, [RECORD]),
    "records-list": (_wire_records.load_records, live_bodies.RECORDS_LIST, [LISTED]),
}


@pytest.mark.parametrize(("load", "body", "expected"), CASES.values(), ids=CASES.keys())
def test_real_bodies_parse_into_the_right_model(load: Load, body: bytes, expected: Any) -> None:
    assert load(body) == expected  # every field, ``extra`` included (empty here)


def test_a_record_resource_keeps_tags_canonical_id_version_and_author() -> None:
    [record] = _wire_records.load_records(live_bodies.BATCH_UPDATE)
    assert record.tags == ("priority:high", "team:ml")
    assert (record.canonical_id, record.version) == ("24671c08-…", 1)
    assert record.author == Author(id="422c9d15-…")
    assert record.metadata == {}  # left out by the API, as it was sent null


def _without(body: bytes, key: str) -> bytes:
    doc = json.loads(body)
    del doc["data"]["attributes"][key]
    return json.dumps(doc).encode()


def _with_attribute(body: bytes, key: str, value: Any) -> bytes:
    doc = json.loads(body)
    data = doc["data"][0] if isinstance(doc["data"], list) else doc["data"]
    data["attributes"][key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("load", "body"),
    [
        (jsonapi.one(jsonapi.structure_project), live_bodies.PROJECT_CREATE),
        (
            jsonapi.one(jsonapi.structure_experiment),
            _without(live_bodies.EXPERIMENT_CREATE, "description"),
        ),
    ],
    ids=["project", "experiment"],
)
def test_a_missing_description_reads_as_none(load: Load, body: bytes) -> None:
    assert load(body).description is None


@pytest.mark.parametrize(("load", "body", "expected"), CASES.values(), ids=CASES.keys())
def test_unknown_attributes_of_real_bodies_are_kept_in_extra(
    load: Load, body: bytes, expected: Any
) -> None:
    got = load(_with_attribute(body, "dataset_type", "user"))
    [one] = got if isinstance(got, list) else [got]
    assert one.extra == {"dataset_type": "user"}
    assert attrs.evolve(one, extra={}) == (expected[0] if isinstance(expected, list) else expected)


# --- through the client, the fake answering the real bodies --------------------------------


async def test_the_client_reads_the_real_bodies(fake, seeded: Seeded, client) -> None:
    pid, did, eid = seeded.project_id, seeded.dataset_id, seeded.experiment_id
    fake.inject(status=200, body=live_bodies.PROJECT_CREATE)
    project = await client.projects.update(pid, description="")
    fake.inject(status=200, body=live_bodies.EXPERIMENT_CREATE)
    experiment = await client.experiments.update(eid, status="running")
    fake.inject(status=200, body=live_bodies.BATCH_UPDATE)
    updated = await client.records.update(pid, did, [{"id": "rec-1", "input": "x"}])
    fake.inject(status=200, body=live_bodies.RECORDS_LIST)
    listed = await client.records.update(pid, did, [{"id": "rec-1", "input": "x"}])
    assert (project, experiment, updated, listed) == (PROJECT, EXPERIMENT, [RECORD], [LISTED])
    assert [r.status for r in fake.requests] == [200] * 4


async def test_the_client_reads_answers_without_description(fake, seeded: Seeded, client) -> None:
    fake.inject(status=200, body=_without(live_bodies.EXPERIMENT_CREATE, "description"))
    experiment = await client.experiments.update(seeded.experiment_id, status="completed")
    assert (experiment.id, experiment.description) == ("9d015796-…", None)


@pytest.mark.parametrize("body", [b"", b"\n"], ids=["empty", "newline"])
async def test_an_empty_200_to_an_experiment_patch_is_read_back(
    fake, seeded: Seeded, client, body: bytes
) -> None:
    # The live API answers a status change with an empty 200 (API-REFERENCE 2.4):
    # the client reads the experiment back, so the result is what is stored.
    fake.inject(status=200, body=body)
    # The injected answer stands in for the PATCH: the store holds what it writes already,
    # as it would after a real one (a read-back that shows other values is retried).
    fake.experiments[seeded.experiment_id]["status"] = "completed"
    experiment = await client.experiments.update(seeded.experiment_id, status="completed")
    stored = fake.experiments[seeded.experiment_id]
    assert (experiment.id, experiment.name) == (seeded.experiment_id, stored["name"])
    assert [(r.method, r.query.get("filter[id]")) for r in fake.requests] == [
        ("PATCH", None),
        ("GET", [seeded.experiment_id]),
    ]


async def test_an_empty_200_to_a_project_or_records_patch_is_still_refused(
    fake, seeded: Seeded, client
) -> None:
    fake.inject(status=200, body=b"", times=2)
    with pytest.raises(errors.APIResponseValidationError):
        await client.projects.update(seeded.project_id, name="x")
    with pytest.raises(errors.APIResponseValidationError):
        await client.records.update(seeded.project_id, seeded.dataset_id, [{"id": "rec-1"}])


# --- every field but id may be missing or null -----------------------------------------------


def _fields(model: type[Any], how: str) -> dict[str, Any]:
    names = [a.name for a in attrs.fields(model) if a.name not in ("id", "extra")]
    return dict.fromkeys(names) if how == "null" else {}


SHAPES: dict[str, tuple[type[Any], Callable[[dict[str, Any]], Any]]] = {
    "project": (Project, lambda f: {"data": {"id": "x", "type": "projects", "attributes": f}}),
    "experiment": (Experiment, lambda f: {"data": {"id": "x", "attributes": f}}),
    "record-resource": (
        DatasetRecord,
        lambda f: {"data": [{"id": "x", "type": "datasets", "attributes": f}]},
    ),
    "record-flat": (DatasetRecord, lambda f: {"data": [{"id": "x", **f}]}),
    "record-in-group": (DatasetRecord, lambda f: {"data": [{"records": [{"id": "x", **f}]}]}),
}
LOADERS: dict[type[Any], Load] = {
    Project: jsonapi.one(jsonapi.structure_project),
    Experiment: jsonapi.one(jsonapi.structure_experiment),
    DatasetRecord: lambda body: _wire_records.load_records(body)[0],
}


@pytest.mark.parametrize("how", ["missing", "null"])
@pytest.mark.parametrize(("model", "shape"), SHAPES.values(), ids=SHAPES.keys())
def test_every_field_but_id_may_be_missing_or_null(
    model: type[Any], shape: Callable[[dict[str, Any]], Any], how: str
) -> None:
    got = LOADERS[model](json.dumps(shape(_fields(model, how))).encode())
    assert got == model(id="x")
    for field in attrs.fields(model):
        value = getattr(got, field.name)
        if field.name in ("config", "metadata", "tags", "extra"):
            assert value is not None and not value, field.name  # empty, not None
        elif field.name != "id":
            assert value is None, field.name


def test_only_id_is_required() -> None:
    for model, shape in SHAPES.values():
        body = json.dumps(shape({"name": "n", "input": 1})).replace('"id": "x", ', "")
        with pytest.raises(KeyError):
            LOADERS[model](body.encode())


BROKEN_RECORDS = {
    "no-id": b'{"data":[{"type":"datasets","attributes":{"tags":["a"]}}]}',
    "attributes-not-object": b'{"data":[{"id":"r","type":"datasets","attributes":"x"}]}',
    "tags-not-list": b'{"data":[{"id":"r","type":"datasets","attributes":{"tags":"a:b"}}]}',
    "version-not-number": b'{"data":[{"id":"r","attributes":{"version":"v2"}}]}',
    "author-not-object": b'{"data":[{"id":"r","attributes":{"author":"jane"}}]}',
    "bad-timestamp": b'{"data":[{"id":"r","attributes":{"created_at":"yesterday"}}]}',
}


@pytest.mark.parametrize("body", BROKEN_RECORDS.values(), ids=BROKEN_RECORDS.keys())
async def test_a_broken_record_is_a_response_validation_error(
    fake, seeded: Seeded, client, body: bytes
) -> None:
    fake.inject(status=200, body=body)
    with pytest.raises(errors.APIResponseValidationError) as info:
        await client.records.update(seeded.project_id, seeded.dataset_id, [{"id": "rec-1"}])
    assert info.value.body == body


def test_authors_sent_as_an_id_are_shared_but_full_authors_are_read_whole() -> None:
    doc = {
        "data": [
            {"id": f"r{i}", "type": "datasets", "attributes": {"author": {"id": "u1"}}}
            for i in range(3)
        ]
        + [{"id": "r3", "attributes": {"author": {"id": "u1", "name": "Jane", "team": "ml"}}}]
    }
    records = _wire_records.load_records(json.dumps(doc).encode())
    assert records[0].author is records[1].author is records[2].author
    assert records[0].author == Author(id="u1")
    full = records[3].author
    assert full is not None and (full.id, full.name, full.extra) == ("u1", "Jane", {"team": "ml"})


def test_experiment_author_is_the_same_class_under_its_former_name() -> None:
    assert models.ExperimentAuthor is Author
