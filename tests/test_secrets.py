"""API and application keys never show in reprs, logs, exceptions or tracebacks."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer

API_KEY = "sekrit-api-key-0123456789"
APP_KEY = "sekrit-app-key-9876543210"


@pytest.fixture
async def keyed() -> AsyncIterator[FakeLLMObsServer]:
    async with FakeLLMObsServer(api_key=API_KEY, app_key=APP_KEY) as server:
        yield server


def _assert_clean(text: str) -> None:
    assert API_KEY not in text
    assert APP_KEY not in text


def _client(fake: FakeLLMObsServer, **kwargs: object) -> LLMObsClient:
    return LLMObsClient(base_url=fake.base_url, api_key=API_KEY, app_key=APP_KEY, **kwargs)


def test_reprs_hide_the_keys() -> None:
    client = LLMObsClient(api_key=API_KEY, app_key=APP_KEY)
    view = client.with_options(site="datadoghq.eu")
    for obj in (client, view, client._keys, client._keys[0]):
        _assert_clean(repr(obj))
        _assert_clean(str(obj))
    assert "**" in repr(client._keys[0])


async def test_failures_and_their_logs_hide_the_keys(
    keyed: FakeLLMObsServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    project_id = keyed.add_project()
    caplog.set_level(logging.DEBUG, logger="llmobs_async")
    raised: list[BaseException] = []
    async with _client(keyed, max_retries=1, timeout=0.2) as client:
        keyed.inject(status=503, times=2)
        keyed.inject(drop=True, times=2)
        keyed.inject(delay=1.0, times=2)
        for _ in range(3):
            with pytest.raises(errors.LLMObsError) as info:
                await client.projects.update(project_id, name="x")
            raised.append(info.value)
        with pytest.raises(errors.PermissionDeniedError) as denied:
            await client.with_options(app_key="wrong-" + APP_KEY[::-1]).projects.update(
                project_id, name="x"
            )
        raised.append(denied.value)
    assert [type(e) for e in raised] == [
        errors.ServerError,
        errors.APIConnectionError,
        errors.APITimeoutError,
        errors.PermissionDeniedError,
    ]
    for exc in raised:
        _assert_clean("".join(traceback.format_exception(exc)))
        _assert_clean(repr(exc) + repr(vars(exc)))
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    _assert_clean(caplog.text)
    captured = capsys.readouterr()
    _assert_clean(captured.out + captured.err)
    for request in keyed.requests:
        _assert_clean(repr(request))


def test_library_logger_has_no_handlers_of_its_own() -> None:
    logger = logging.getLogger("llmobs_async")
    assert logger.handlers == []
    assert logger.level == logging.NOTSET
