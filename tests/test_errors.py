"""Typed exceptions: the errors array in every shape, status mapping, rate-limit details."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmobs_async import LLMObsClient, errors
from llmobs_async._errorbody import parse_errors
from llmobs_async.errors import ErrorItem, ErrorSource, RateLimitInfo
from llmobs_async.models import ExperimentUpdate
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded, client_for

HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)
SEED_EXAMPLE = {
    "errors": [
        {
            "detail": "Missing required attribute in body",
            "meta": {},
            "source": {
                "header": "Authorization",
                "parameter": "limit",
                "pointer": "/data/attributes/title",
            },
            "status": "400",
            "title": "Bad Request",
        }
    ]
}


# --- parse_errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"errors":[{"title":"Generic Error","detail":"prompt template not found"}]}',
            [ErrorItem(title="Generic Error", detail="prompt template not found")],
        ),
        (
            b'{"errors":[{"status":"404","title":"Not Found"}]}',
            [ErrorItem(status="404", title="Not Found")],
        ),
        (b'{"errors":["Bad Request"]}', [ErrorItem(detail="Bad Request")]),
        (
            b'{"errors":["Too many requests", "Try later"]}',
            [ErrorItem(detail="Too many requests"), ErrorItem(detail="Try later")],
        ),
        (b"", []),
        (b"  \r\n", []),
        (b'{"errors": []}', []),
        (
            json.dumps(SEED_EXAMPLE).encode(),
            [
                ErrorItem(
                    title="Bad Request",
                    detail="Missing required attribute in body",
                    status="400",
                    source=ErrorSource(
                        pointer="/data/attributes/title", parameter="limit", header="Authorization"
                    ),
                    meta={},
                )
            ],
        ),
    ],
    ids=["generic", "status-title", "strings", "two-strings", "empty", "blank", "none", "seed"],
)
def test_parse_errors_reads_every_documented_shape(body: bytes, expected: list[ErrorItem]) -> None:
    assert parse_errors(body) == expected


def test_parse_errors_keeps_the_title_of_an_html_page() -> None:
    [item] = parse_errors(HTML_PAGE)
    assert item.detail == "502 Bad Gateway"
    assert "<" not in str(item)


def test_error_item_str_has_title_detail_and_pointer() -> None:
    [item] = parse_errors(json.dumps(SEED_EXAMPLE).encode())
    assert (
        str(item) == "Bad Request: Missing required attribute in body (at /data/attributes/title)"
    )
    assert str(ErrorItem()) == "(no detail)"


GARBAGE = {
    "bad-utf8": b"\xff\xfe\x00garbage",
    "truncated": b'{"errors": [{"title": "Bad',
    "null": b"null",
    "number": b"42",
    "string": b'"oops"',
    "errors-int": b'{"errors": 5}',
    "errors-object": b'{"errors": {"title": "Only One"}}',
    "errors-null": b'{"errors": null}',
    "odd-items": b'{"errors": [null, 1, {"source": "x", "meta": [], "title": {"a": 1}}]}',
    "html-no-title": b"<html><body><h1>oops</h1></body></html>",
    "huge-text": b"x" * 100_000,
}


@pytest.mark.parametrize("body", GARBAGE.values(), ids=GARBAGE.keys())
def test_parse_errors_never_raises_on_garbage(body: bytes) -> None:
    items = parse_errors(body)
    assert all(isinstance(item, ErrorItem) for item in items)
    assert all(len(str(item)) <= 1000 for item in items)


DEEP = b"[" * 100_000


def test_parse_errors_never_raises_on_deeply_nested_json() -> None:
    items = parse_errors(DEEP)
    assert all(isinstance(item, ErrorItem) for item in items)


async def test_deeply_nested_error_body_still_gives_a_typed_error(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    fake.inject(status=400, body=DEEP)
    with pytest.raises(errors.BadRequestError) as info:
        await client.projects.update(seeded.project_id, name="x")
    assert info.value.body == DEEP[: errors.BODY_SNIPPET_BYTES]  # a bounded snippet


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(st.binary() | json_values.map(lambda v: json.dumps({"errors": v}).encode()))
def test_parse_errors_never_raises_on_arbitrary_bodies(body: bytes) -> None:
    assert all(isinstance(item, ErrorItem) for item in parse_errors(body))


# --- status mapping through the real client -------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (413, errors.PayloadTooLargeError),
        (422, errors.UnprocessableEntityError),
        (429, errors.RateLimitError),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (503, errors.ServerError),
        (418, errors.APIStatusError),
    ],
)
async def test_each_status_maps_to_its_exception(
    fake: FakeLLMObsServer, seeded: Seeded, status: int, cls: type[errors.APIStatusError]
) -> None:
    body = json.dumps(
        {"errors": [{"status": str(status), "title": "Nope Title", "detail": "nope detail"}]}
    ).encode()
    fake.inject(status=status, body=body, headers={"X-Request-Id": "req-42"})
    async with client_for(fake, max_retries=0) as client:
        with pytest.raises(errors.APIStatusError) as info:
            await client.projects.update(seeded.project_id, name="x")
    err = info.value
    path = f"/api/v2/llm-obs/v1/projects/{seeded.project_id}"
    assert type(err) is cls
    assert isinstance(err, errors.LLMObsError)
    assert (err.status, err.method, err.url, err.body) == (
        status,
        "PATCH",
        fake.base_url + path,
        body,
    )
    assert err.errors == [ErrorItem(status=str(status), title="Nope Title", detail="nope detail")]
    assert err.headers["X-Request-Id"] == "req-42"
    text = str(err)
    for part in (str(status), "PATCH", path, "Nope Title", "nope detail"):
        assert part in text, part
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "detail"),
    [
        (b'{"errors":["Bad Request"]}', None, 400, "Bad Request"),
        (HTML_PAGE, {"Content-Type": "text/html"}, 502, "502 Bad Gateway"),
        (b"", None, 503, None),
    ],
    ids=["strings", "html", "empty"],
)
async def test_undocumented_error_bodies_still_give_a_typed_error(
    fake: FakeLLMObsServer,
    seeded: Seeded,
    body: bytes,
    headers: dict[str, str] | None,
    status: int,
    detail: str | None,
) -> None:
    fake.inject(status=status, body=body, headers=headers)
    async with client_for(fake, max_retries=0) as client:
        with pytest.raises(errors.APIStatusError) as info:
            await client.experiments.update(seeded.experiment_id, name="x")
    err = info.value
    assert err.status == status
    assert err.errors == ([ErrorItem(detail=detail)] if detail else [])
    assert str(err).startswith(f"{status} ")
    assert f"PATCH /api/v2/llm-obs/v1/experiments/{seeded.experiment_id}" in str(err)
    if detail:
        assert detail in str(err)


# --- real failures from the fake server ------------------------------------------------


@pytest.mark.parametrize("wrong", ["api_key", "app_key"])
async def test_wrong_keys_are_permission_denied(
    fake: FakeLLMObsServer, seeded: Seeded, wrong: str
) -> None:
    async with client_for(fake, **{wrong: "not-the-key"}) as client:
        with pytest.raises(errors.PermissionDeniedError) as info:
            await client.projects.update(seeded.project_id, name="x")
    assert info.value.status == 403
    assert info.value.errors[0].title == "Forbidden"
    assert fake.projects[seeded.project_id]["name"] == "proj"
    assert [r.status for r in fake.requests] == [403]  # not retried


async def test_unknown_experiment_is_not_found(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    with pytest.raises(errors.NotFoundError) as info:
        await client.experiments.update("no-such-experiment", name="x")
    assert info.value.status == 404
    assert info.value.errors[0].title == "Not Found"
    assert "no-such-experiment" in (info.value.errors[0].detail or "")
    assert [r.status for r in fake.requests] == [404]


async def test_server_validation_error_carries_the_json_pointer(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    # A model forced past its validators: the API, not the client, refuses the value.
    update = ExperimentUpdate(status="running")
    object.__setattr__(update, "status", "paused")
    with pytest.raises(errors.BadRequestError) as info:
        await client.experiments.update(seeded.experiment_id, update)
    [item] = info.value.errors
    assert item.source is not None
    assert item.source.pointer == "/data/attributes/status"
    assert item.status == "400"
    assert "(at /data/attributes/status)" in str(info.value)
    assert fake.experiments[seeded.experiment_id]["status"] == "running"


# --- rate limits ----------------------------------------------------------------------------

RATE_HEADERS = {
    "X-RateLimit-Limit": "60",
    "X-RateLimit-Period": "60",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": "17",
    "X-RateLimit-Name": "llm_obs_update",
}


async def _rate_limited(
    fake: FakeLLMObsServer, project_id: str, headers: dict[str, str]
) -> errors.RateLimitError:
    fake.inject(status=429, body=b'{"errors":["Too many requests"]}', headers=headers)
    async with client_for(fake, max_retries=0) as client:
        with pytest.raises(errors.RateLimitError) as info:
            await client.projects.update(project_id, name="x")
    assert info.value.errors == [ErrorItem(detail="Too many requests")]
    return info.value


async def test_rate_limit_error_reads_the_rate_limit_headers(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    err = await _rate_limited(fake, seeded.project_id, {**RATE_HEADERS, "Retry-After": "99"})
    assert err.retry_after == 17.0  # the reset header wins over Retry-After
    assert err.rate_limit == RateLimitInfo(
        limit=60, period=60.0, remaining=0, reset=17.0, name="llm_obs_update"
    )


async def test_rate_limit_error_falls_back_to_retry_after_seconds(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    err = await _rate_limited(fake, seeded.project_id, {"Retry-After": "9"})
    assert err.retry_after == 9.0
    assert err.rate_limit is None


async def test_rate_limit_error_reads_retry_after_as_an_http_date(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    err = await _rate_limited(fake, seeded.project_id, {"Retry-After": when})
    assert err.retry_after is not None
    assert 100 < err.retry_after <= 121


async def test_rate_limit_error_without_headers_has_no_retry_after(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    err = await _rate_limited(fake, seeded.project_id, {})
    assert (err.retry_after, err.rate_limit) == (None, None)


# --- hierarchy ----------------------------------------------------------------------------


def test_validation_error_is_an_llmobs_error_and_a_value_error() -> None:
    with pytest.raises(ValueError, match="status") as info:
        ExperimentUpdate(status="nope")
    assert isinstance(info.value, errors.LLMObsError)
    assert isinstance(info.value, errors.ValidationError)
    assert info.value.field == "status"


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (errors.ValidationError, errors.LLMObsError),
        (errors.APIConnectionError, errors.LLMObsError),
        (errors.APITimeoutError, errors.APIConnectionError),
        (errors.APIStatusError, errors.LLMObsError),
        (errors.APIResponseValidationError, errors.LLMObsError),
    ],
)
def test_exception_hierarchy(cls: type, base: type) -> None:
    assert issubclass(cls, base)
