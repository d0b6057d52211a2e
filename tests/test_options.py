"""Per-call options against the fake: every resource, every page of a list, every batch of a job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .conftest import Seeded, client_for
from .resources.test_events import span

HEADERS = {"X-Trace-Tag": "nightly", "Accept": "application/vnd.api+json"}
QUERY = {"preview": "1", "fields": ["a", "b"]}


def _carries_options(request: RecordedRequest) -> bool:
    return (
        request.headers.get("X-Trace-Tag") == "nightly"
        and request.headers.get("Accept") == "application/vnd.api+json"  # replaced, not added
        and request.query.get("preview") == ["1"]
        and request.query.get("fields") == ["a", "b"]
    )


Call = Callable[[LLMObsClient, Seeded], Awaitable[Any]]
WRITES: dict[str, tuple[Call, dict[str, Any]]] = {
    "projects.update": (
        lambda c, s: c.projects.update(s.project_id, name="renamed", **_opts("description")),
        {"name": "renamed", "description": "merged"},
    ),
    "datasets.update": (
        lambda c, s: c.datasets.update(
            s.project_id, s.dataset_id, name="renamed", **_opts("description")
        ),
        {"name": "renamed", "description": "merged"},
    ),
    "experiments.create": (
        lambda c, s: c.experiments.create(
            s.project_id, s.dataset_id, "run", **_opts("description")
        ),
        {"name": "run", "description": "merged"},
    ),
}


def _opts(field: str) -> dict[str, Any]:
    return {
        "extra_headers": HEADERS,
        "extra_query": QUERY,
        "extra_body": {"data": {"attributes": {field: "merged"}}},
    }


@pytest.mark.parametrize("name", WRITES)
async def test_a_write_sends_the_headers_query_and_merged_body(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, name: str
) -> None:
    call, attributes = WRITES[name]
    result = await call(client, seeded)
    sent = fake.requests[0]
    assert _carries_options(sent)
    # Deep-merged: the method's own attributes are kept beside the extra one.
    assert {k: sent.json()["data"]["attributes"].get(k) for k in attributes} == attributes
    assert sent.json()["data"]["type"] in ("projects", "datasets", "experiments")
    assert result.description == "merged"  # the fake stored what was merged in


async def test_a_field_the_models_do_not_know_is_sent(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    with pytest.raises(errors.BadRequestError):  # the fake knows no more than the models
        await client.records.update(
            seeded.project_id,
            seeded.dataset_id,
            [{"id": "rec-1", "input": "x"}],
            extra_body={"data": {"attributes": {"new_field": {"n": 1}}}},
        )
    attributes = fake.requests[0].json()["data"]["attributes"]
    assert attributes["new_field"] == {"n": 1}
    assert attributes["records"] == [{"id": "rec-1", "input": "x"}]


async def test_events_and_deletes_take_the_options(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    await client.experiments.events.create(
        seeded.experiment_id,
        spans=[span(seeded, 1)],
        extra_headers=HEADERS,
        extra_query=QUERY,
        extra_body={"data": {"attributes": {"tags": ["env:ci"]}}},
    )
    await client.records.delete(
        seeded.project_id, seeded.dataset_id, "rec-0", extra_headers=HEADERS, extra_query=QUERY
    )
    push, delete = fake.requests
    assert _carries_options(push) and _carries_options(delete)
    assert push.json()["data"]["attributes"]["tags"] == ["env:ci"]
    assert push.json()["data"]["attributes"]["spans"][0]["span_id"] == "s1"


async def test_a_get_and_an_update_read_back_carry_headers_and_query_not_the_body(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    await client.datasets.get(
        seeded.project_id, seeded.dataset_id, extra_headers=HEADERS, extra_query=QUERY
    )
    await client.experiments.update(
        seeded.experiment_id,
        status="running",
        extra_headers=HEADERS,
        extra_query=QUERY,
        extra_body={"data": {"attributes": {"description": "merged"}}},
    )
    get, patch, *read_back = fake.requests
    assert get.method == "GET" and _carries_options(get)
    assert get.query["filter[id]"] == [seeded.dataset_id]  # the call's own query is kept
    assert patch.method == "PATCH" and _carries_options(patch)
    assert patch.json()["data"]["attributes"] == {"status": "running", "description": "merged"}
    assert read_back and all(r.method == "GET" and _carries_options(r) for r in read_back)
    assert all(r.body == b"" for r in read_back)


async def test_a_list_sends_its_options_on_every_page(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    for i in range(7):
        fake.add_project(name=f"p{i}")
    listed = [
        p async for p in client.projects.list(page_size=3, extra_headers=HEADERS, extra_query=QUERY)
    ]
    assert len(listed) == 7 and len(fake.requests) == 3
    assert all(_carries_options(r) for r in fake.requests)
    assert [r.query["page[limit]"] for r in fake.requests] == [["3"]] * 3


async def test_extra_query_replaces_a_parameter_the_call_sets(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    records = client.records.list(
        seeded.project_id, seeded.dataset_id, page_size=3, extra_query={"page[limit]": "4"}
    )
    assert len([r async for r in records]) == 10
    assert [r.query["page[limit]"] for r in fake.requests] == [["4"]] * 3


async def test_a_bulk_job_sends_its_headers_and_query_with_every_request(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    result = await client.records.update_many(
        seeded.project_id,
        seeded.dataset_id,
        [{"id": f"rec-{i}", "input": f"v{i}"} for i in range(10)],
        batch_size=3,
        extra_headers=HEADERS,
        extra_query=QUERY,
    )
    assert result.applied == 10
    batches = [r for r in fake.requests if r.method == "POST"]
    assert len(batches) == 4
    # The batches and the reads of the dataset's version alike.
    assert all(_carries_options(r) for r in fake.requests)


async def test_a_per_call_timeout_overrides_the_clients(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    async with client_for(fake, max_retries=0, timeout=30) as client:
        fake.inject(delay=1.0, match=lambda r: r.method == "PATCH")
        await client.projects.update(seeded.project_id, name="a")  # the client's 30 s: fine
        fake.inject(delay=1.0, match=lambda r: r.method == "PATCH")
        with pytest.raises(errors.APITimeoutError):
            await client.projects.update(seeded.project_id, name="b", timeout=0.1)


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"timeout": -1}, "timeout", "finite positive"),
    ({"timeout": "5"}, "timeout", "finite positive"),
    ({"timeout": float("nan")}, "timeout", "finite positive"),
    ({"extra_headers": {"DD-API-KEY": "s3cr3t"}}, "extra_headers['DD-API-KEY']", "with_options"),
    (
        {"extra_headers": {"dd-application-key": "s3cr3t"}},
        "extra_headers['dd-application-key']",
        "app_key",
    ),
    ({"extra_headers": {"X-A": "1\r\nX-Injected: 1"}}, "extra_headers['X-A']", "CR, LF"),
    ({"extra_headers": {"X-A": "1\n"}}, "extra_headers['X-A']", "CR, LF"),
    ({"extra_headers": {"X-A": 1}}, "extra_headers['X-A']", "must be a str"),
    ({"extra_headers": {"X A": "1"}}, "extra_headers", "not a valid header name"),
    ({"extra_headers": {"Content-Length": "1"}}, "extra_headers['Content-Length']", "HTTP library"),
    ({"extra_headers": [("X-A", "1")]}, "extra_headers", "mapping"),
    ({"extra_query": "a=b"}, "extra_query", "mapping"),
    ({"extra_query": {"a": 1}}, "extra_query['a']", "str or a list"),
    ({"extra_query": {"a": ["x", None]}}, "extra_query['a']", "str or a list"),
    ({"extra_query": {"": "x"}}, "extra_query", "parameter name"),
    ({"extra_body": ["x"]}, "extra_body", "JSON object"),
    ({"extra_body": {"data": {"n": float("nan")}}}, "extra_body.data.n", ""),
    ({"extra_headrs": {"X-A": "1"}}, "extra_headrs", "timeout, extra_headers"),
]


@pytest.mark.parametrize(("options", "field", "says"), BAD)
async def test_bad_options_are_refused_naming_the_option_and_nothing_is_sent(
    fake: FakeLLMObsServer,
    client: LLMObsClient,
    seeded: Seeded,
    options: dict[str, Any],
    field: str,
    says: str,
) -> None:
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.projects.update(seeded.project_id, name="x", **options),
        lambda: client.records.update_many(
            seeded.project_id, seeded.dataset_id, [{"id": "rec-1", "input": "x"}], **options
        ),
        lambda: client.experiments.events.create(
            seeded.experiment_id, spans=[span(seeded, 1)], **options
        ),
    ]
    bodied = "extra_body" in options  # refused by bulk jobs and lists whatever its value
    for call in calls[::2] if bodied else calls:
        with pytest.raises(errors.ValidationError) as caught:
            await call()
        assert caught.value.field == field
        assert says in str(caught.value)
        assert "s3cr3t" not in str(caught.value)  # a refused key's value is not echoed
    with pytest.raises(errors.ValidationError) as caught:
        client.projects.list(**options)  # refused when the paginator is made, not later
    assert caught.value.field == ("extra_body" if bodied else field)
    assert fake.requests == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c, s: c.projects.list(extra_body={"a": 1}),
        lambda c, s: c.projects.get(s.project_id, extra_body={"a": 1}),
        lambda c, s: c.datasets.versions(s.project_id, s.dataset_id, extra_body={"a": 1}),
        lambda c, s: c.records.update_many(
            s.project_id, s.dataset_id, [{"id": "rec-1"}], extra_body={"a": 1}
        ),
        lambda c, s: c.records.add_tags(
            s.project_id, s.dataset_id, "rec-1", ["a:b"], extra_body={}
        ),
        lambda c, s: c.records.upload_csv(
            s.project_id, s.dataset_id, "missing.csv", input_columns=["q"], extra_body={"a": 1}
        ),
    ],
)
async def test_extra_body_is_refused_where_the_call_builds_no_json_body_of_its_own(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, call: Call
) -> None:
    async def run() -> None:
        result = call(client, seeded)
        if not hasattr(result, "pages"):  # a list is refused as it is made
            await result

    with pytest.raises(errors.ValidationError) as caught:
        await run()
    assert caught.value.field == "extra_body"
    assert fake.requests == []


async def test_a_call_without_options_keeps_the_views_transport(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    await client.projects.update(seeded.project_id, name="plain")
    sent = fake.requests[0]
    assert "X-Trace-Tag" not in sent.headers and sent.query == {}
    assert sent.headers["Accept"] == "application/json"
