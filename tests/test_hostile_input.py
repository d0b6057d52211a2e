"""Hostile input: a clear ValidationError naming the field, before anything is sent."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import decimal
import enum
import logging
import math
import os
import sys
import time
import types
import uuid
from typing import Any

import aiohttp
import attrs
import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded, client_for
from .test_cli import _cli

# --- keys ---------------------------------------------------------------------------

SECRET = "sekrit-key-0123456789"
BAD_KEYS = {
    "empty": "",
    "blank": "  \t ",
    "trailing newline": SECRET + "\n",
    "carriage return": SECRET[:5] + "\r" + SECRET[5:],
    "NUL": SECRET + "\0",
}


def _assert_refused(info: pytest.ExceptionInfo[errors.ValidationError], field: str) -> None:
    assert info.value.field == field
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


@pytest.mark.parametrize("key", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
@pytest.mark.parametrize("which", ["api_key", "app_key"])
def test_bad_keys_are_refused_by_the_constructor_and_with_options(key: str, which: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(**{"api_key": "k", "app_key": "a", which: key})
    _assert_refused(info, which)
    client = LLMObsClient(api_key="parent-api", app_key="parent-app")
    # A tenant whose key is missing must never write with the parent's key.
    with pytest.raises(errors.ValidationError) as info:
        client.with_options(**{which: key})
    _assert_refused(info, which)


ENV_KEYS = {k: v for k, v in BAD_KEYS.items() if k not in ("empty", "NUL")}  # empty is unset


@pytest.mark.parametrize("key", list(ENV_KEYS.values()), ids=list(ENV_KEYS))
@pytest.mark.parametrize("variable", ["DD_API_KEY", "DD_APP_KEY", "DD_APPLICATION_KEY"])
def test_bad_keys_in_the_environment_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, key: str, variable: str
) -> None:
    monkeypatch.setenv("DD_API_KEY", "env-api")
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    monkeypatch.setenv("DD_APPLICATION_KEY", "env-app")
    monkeypatch.setenv(variable, key)
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient()
    _assert_refused(info, variable)


async def test_the_cli_reports_a_key_with_a_newline_as_a_configuration_error() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    environ.update(DD_API_KEY=SECRET + "\n", DD_APP_KEY="app-" + SECRET)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmobs_async",
        "projects",
        "update",
        "X",
        "--name",
        "y",
        "--base-url",
        "http://127.0.0.1:9",  # never reached: the key is refused first
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = (out + err).decode()
    assert proc.returncode == 2
    assert "DD_API_KEY" in text
    assert len(text.strip().splitlines()) == 1
    assert "Traceback" not in text
    assert SECRET not in text


BAD_STORES = {
    "not redis": "http://user:store-password@example.com/0",
    "no host": "redis://:store-password@/0",
    "bad port": "redis://:store-password@localhost:99999999/0",
}


@pytest.mark.parametrize("url", list(BAD_STORES.values()), ids=list(BAD_STORES))
def test_a_bad_store_url_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("LLMOBS_RATE_LIMIT_STORE", url)
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(api_key="k", app_key="a")
    assert info.value.field == "LLMOBS_RATE_LIMIT_STORE"
    assert "store-password" not in str(info.value)
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(api_key="k", app_key="a", rate_limit_store=url)
    assert info.value.field == "rate_limit_store"  # given as an argument: named as one


async def test_the_cli_names_the_store_variable_the_user_set() -> None:
    run = await _cli(
        None,
        "projects",
        "update",
        "p",
        "--name",
        "x",
        "--base-url",
        "http://127.0.0.1:9",  # never reached: the store is refused first
        env={
            "DD_API_KEY": "k",
            "DD_APP_KEY": "a",
            "LLMOBS_RATE_LIMIT_STORE": BAD_STORES["not redis"],
        },
    )
    assert run.code == 2
    assert run.err.startswith("llmobs-async: error: LLMOBS_RATE_LIMIT_STORE: ")
    assert "rate_limit_store" not in run.err and "store-password" not in run.err
    assert len(run.err.splitlines()) == 1


# --- numeric options -----------------------------------------------------------------

BAD_OPTIONS = [
    ("max_concurrency", 2.5),
    ("max_concurrency", True),
    ("max_concurrency", "4"),
    ("max_concurrency", 0),
    ("max_retries", 1.5),
    ("max_retries", True),
    ("max_retries", -1),
    ("max_retries", None),
    ("timeout", math.nan),
    ("timeout", math.inf),
    ("timeout", -math.inf),
    ("timeout", -1),
    ("timeout", True),
    ("timeout", "30"),
    ("timeout", aiohttp.ClientTimeout(total=math.nan)),
    ("timeout", aiohttp.ClientTimeout(sock_read=math.inf)),
    ("timeout", aiohttp.ClientTimeout(total=5, connect=-1)),
]


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS, ids=repr)
def test_bad_options_are_refused(option: str, value: Any) -> None:
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(api_key="k", app_key="a", **{option: value})
    assert info.value.field.startswith(option)
    if option != "max_concurrency" and value is not None:
        with pytest.raises(errors.ValidationError) as info:
            LLMObsClient(api_key="k", app_key="a").with_options(**{option: value})
        assert info.value.field.startswith(option)


def test_good_options_are_kept() -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=5)
    client = LLMObsClient(api_key="k", app_key="a", max_concurrency=3, timeout=timeout)
    assert client._pool.max_concurrency == 3 and client._transport.timeout is timeout
    view = client.with_options(timeout=2, max_retries=0)
    assert view._transport.timeout.total == 2.0 and view.max_retries == 0


# --- base_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.datadoghq.com/api/v2",
        "https://api.datadoghq.com/api/v2/",
        "https://api.datadoghq.eu/api",
        "http://127.0.0.1:8126/api/v2/llm-obs/v1",
    ],
)
def test_a_base_url_with_the_api_path_is_refused(base_url: str) -> None:
    with pytest.raises(errors.ValidationError, match="the client adds /api/v2") as info:
        LLMObsClient(base_url=base_url, api_key="k", app_key="a")
    assert info.value.field == "base_url"
    assert base_url.split("/api")[0] in str(info.value)  # the origin to use instead


def test_a_base_url_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(base_url=8126, api_key="k", app_key="a")  # type: ignore[arg-type]
    assert info.value.field == "base_url"


def test_a_proxy_path_prefix_is_kept() -> None:
    client = LLMObsClient(base_url="https://proxy.internal/datadog/", api_key="k", app_key="a")
    assert client.base_url == "https://proxy.internal/datadog"


# --- request models ------------------------------------------------------------------

NOW_MS = int(time.time() * 1000)
VALID_MODELS: dict[type[Any], dict[str, Any]] = {
    models.ProjectCreate: {"name": "n"},
    models.ProjectUpdate: {},
    models.DatasetCreate: {"name": "n"},
    models.DatasetUpdate: {},
    models.RecordCreate: {"input": 1},
    models.RecordUpdate: {"id": "r"},
    models.ExperimentCreate: {"name": "n", "project_id": "p"},
    models.ExperimentUpdate: {},
    models.ExperimentMetric: {
        "span_id": "",  # a summary metric's: empty is allowed
        "label": "l",
        "metric_type": "score",
        "timestamp_ms": NOW_MS,
        "score_value": 1.0,
    },
    models.ExperimentSpan: {
        "span_id": "s",
        "trace_id": "t",
        "name": "n",
        "project_id": "p",
        "dataset_id": "d",
        "start_ns": NOW_MS * 1_000_000,
        "duration": 1,
        "status": "ok",
    },
}
WRONG_VALUES = [5, 1.5, True, None, b"x", object(), ["x", 1], {1: 2}]


@pytest.mark.parametrize("cls", list(VALID_MODELS), ids=lambda cls: cls.__name__)
def test_every_request_model_field_refuses_a_wrong_type_with_a_validation_error(
    cls: type[Any],
) -> None:
    cls(**VALID_MODELS[cls])
    wrong: list[str] = []
    for field in attrs.fields(cls):
        for value in WRONG_VALUES:
            try:
                cls(**{**VALID_MODELS[cls], field.name: value})
            except errors.ValidationError as exc:
                if exc.field.partition("[")[0] != field.name:
                    wrong.append(f"{field.name}={value!r} named {exc.field}")
            except Exception as exc:  # attrs' own TypeError, a KeyError from a lookup...
                wrong.append(f"{field.name}={value!r} raised {exc!r}")
    assert wrong == []


def test_a_metric_with_an_int_span_id_names_span_id() -> None:
    with pytest.raises(errors.ValidationError) as info:
        models.ExperimentMetric(**{**VALID_MODELS[models.ExperimentMetric], "span_id": 5})
    assert info.value.field == "span_id"


# --- ids -----------------------------------------------------------------------------

SURROGATE = "exp-\ud800"


async def test_an_id_with_a_lone_surrogate_is_a_validation_error(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    calls = {
        "experiment_id": client.experiments.update(SURROGATE, name="x"),
        "project_id": client.projects.update(SURROGATE, name="x"),
        "dataset_id": client.records.update(seeded.project_id, SURROGATE, [{"id": "rec-1"}]),
    }
    for field, call in calls.items():
        with pytest.raises(errors.ValidationError) as info:
            await call
        assert info.value.field == field
        assert "surrogate" in str(info.value)
    with pytest.raises(errors.ValidationError) as info:
        await client.records.update_many(SURROGATE, seeded.dataset_id, [{"id": "rec-1"}])
    assert info.value.field == "project_id"
    assert fake.requests == []


FORGED = "x\r\nERROR forged log line"


async def test_an_id_with_a_line_break_cannot_forge_lines(
    fake: FakeLLMObsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llmobs_async")
    raised: list[errors.LLMObsError] = []
    async with client_for(fake, max_retries=1) as client:
        with pytest.raises(errors.NotFoundError) as missing:
            await client.experiments.update(FORGED, name="x")
        raised.append(missing.value)
        fake.inject(status=503, times=2)
        with pytest.raises(errors.ServerError) as failing:
            await client.projects.update(FORGED, name="x")
        raised.append(failing.value)
    async with FakeLLMObsServer() as gone:
        base_url = gone.base_url
    async with LLMObsClient(base_url=base_url, api_key="k", app_key="a", max_retries=0) as c:
        with pytest.raises(errors.APIConnectionError) as refused:
            await c.projects.update(FORGED, name="x")
        raised.append(refused.value)
    for exc in raised:
        assert "\r" not in str(exc) and "\n" not in str(exc)
        assert "x%0D%0AERROR" in str(exc)
    messages = [r.getMessage() for r in caplog.records]
    assert any("x%0D%0AERROR" in m for m in messages)
    assert not any("\r" in m or "\n" in m for m in messages)


# --- the value rule --------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Mode(enum.StrEnum):
    FAST = "fast"


@dataclasses.dataclass
class Point:
    x: float


class Name(str):
    pass


class Items(list[int]):
    pass


Pair = collections.namedtuple("Pair", "a b")

NOT_PLAIN = {
    "naive datetime": datetime.datetime(2026, 1, 1),
    "aware datetime": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    "date": datetime.date(2026, 1, 1),
    "UUID": uuid.UUID(int=7),
    "Enum": Colour.RED,
    "IntEnum": Level.HIGH,
    "StrEnum": Mode.FAST,
    "dataclass": Point(1.0),
    "dataclass holding NaN": Point(math.nan),
    "Decimal": decimal.Decimal("1.5"),
    "bytes": b"raw",
    "set": {1, 2},
    "complex": 1j,
    "namedtuple": Pair(1, 2),
    "str subclass": Name("n"),
    "list subclass": Items([1]),
    "NaN": math.nan,
    "infinity": -math.inf,
    "int past 64 bits": 2**64,
}


@pytest.mark.parametrize("value", list(NOT_PLAIN.values()), ids=list(NOT_PLAIN))
async def test_values_that_are_not_plain_json_are_refused_everywhere(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient, value: Any
) -> None:
    p, d = seeded.project_id, seeded.dataset_id
    refused = {
        "records[0].input.a[1]": client.records.update(
            p, d, [{"id": "rec-1", "input": {"a": [1, value]}}]
        ),
        "records[1].expected_output": client.records.update(
            p, d, [{"id": "rec-1"}, models.RecordUpdate(id="rec-2", expected_output=value)]
        ),
        "records[0].metadata.m": client.records.update(
            p, d, [models.RecordUpdate(id="rec-1", metadata={"m": value})]
        ),
        "metadata.k": client.experiments.update(seeded.experiment_id, metadata={"k": value}),
    }
    for field, call in refused.items():
        with pytest.raises(errors.ValidationError) as info:
            await call
        assert info.value.field == field
    result = await client.records.update_many(
        p, d, [{"id": "rec-1", "input": {"a": [1, value]}}, {"id": "rec-2"}]
    )
    assert result.applied == 1
    (failure,) = result.failed
    assert isinstance(failure.error, errors.ValidationError)
    assert failure.error.field == "records[0].input.a[1]"
    assert all(b"rec-1" not in r.body for r in fake.requests)  # nothing of it was sent


def test_refusals_say_how_to_send_the_value() -> None:
    from llmobs_async._json import encode_json

    with pytest.raises(errors.ValidationError, match="isoformat"):
        encode_json({"when": datetime.datetime(2026, 1, 1)})
    with pytest.raises(errors.ValidationError, match=r"Level\.HIGH is an Enum member.*\.value"):
        encode_json([Level.HIGH])
    with pytest.raises(errors.ValidationError) as info:
        encode_json({"forged\nline": {1}})
    assert info.value.field == "forged\nline" and "\n" not in str(info.value)


async def test_one_enum_among_many_plain_values_is_still_found(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    records: list[dict[str, Any]] = [
        {"id": f"rec-{i}", "input": {"text": "x" * 1000, "n": [i, i / 2]}} for i in range(2000)
    ]
    records[1234]["input"]["n"].append(Level.HIGH)
    records[5] = {"id": "rec-5", "input": "y" * 2_000_000}  # slack in the size budget
    with pytest.raises(errors.ValidationError) as info:
        await client.records.update(seeded.project_id, seeded.dataset_id, records)
    assert info.value.field == "records[1234].input.n[2]"
    assert fake.requests == []


async def test_plain_data_in_every_accepted_form_is_sent(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    deep: Any = "bottom"
    for _ in range(200):
        deep = [deep]
    value = {
        "proxy": types.MappingProxyType({"a": 1}),
        "ordered": collections.OrderedDict(b=2),
        "tuple": (1, "two", None, True),
        "ints": [2**63 - 1, -(2**63)],
        "floats": [-0.0, 1e308],
        "text": "é \u2028 \x00",
        "deep": deep,
        "nothing": None,
    }
    await client.records.update(
        seeded.project_id, seeded.dataset_id, [{"id": "rec-1", "input": value}]
    )
    stored = fake.records(seeded.dataset_id)["rec-1"]["input"]
    assert stored["proxy"] == {"a": 1} and stored["ordered"] == {"b": 2}
    assert stored["tuple"] == [1, "two", None, True]
    assert stored["ints"] == [2**63 - 1, -(2**63)] and stored["text"] == "é \u2028 \x00"
    depth, node = 0, stored["deep"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert (depth, node) == (200, "bottom")
    await client.experiments.update(seeded.experiment_id, status=models.ExperimentStatus.FAILED)
    assert fake.experiments[seeded.experiment_id]["status"] == "failed"


def test_the_fast_check_passes_plain_data_and_stops_on_objects() -> None:
    # White-box: plain data must take the fast path (else every request pays
    # for the exact walk); a UUID or an Enum member must never pass it.
    from llmobs_async import _json

    plain: Any = [
        {"id": f"rec-{i}", "input": {"q": "2+2", "n": [i, 0.5, None, True]}, "metadata": {}}
        for i in range(100)
    ]
    encoded = _json.encode_json(plain)
    assert _json._plain(plain, len(encoded))
    for odd in (uuid.UUID(int=1), Level.HIGH, Mode.FAST, Colour.RED):
        doc = [*plain, {"id": "x", "input": [odd]}]
        assert not _json._plain(doc, len(encoded) + 1000)


def test_a_compiled_route_is_reused_and_never_mixes_up_ids() -> None:
    from llmobs_async import _routes

    route = _routes.UPDATE_DATASET
    first = route.compile(project_id="d", dataset_id="p")
    assert route.compile(project_id="d", dataset_id="p") is first
    swapped = route.compile(dataset_id="d", project_id="p")
    assert (first.path, swapped.path) == (
        "/api/v2/llm-obs/v1/d/datasets/p",
        "/api/v2/llm-obs/v1/p/datasets/d",
    )
    with pytest.raises(errors.ValidationError, match="dataset_id"):
        route.compile(project_id="d", dataset_id=["unhashable"])  # type: ignore[arg-type]
