"""Broken or hostile servers: bounded memory, no key in any cause or log, the caller's session."""

from __future__ import annotations

import asyncio
import logging
import traceback
import tracemalloc
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from llmobs_async import LLMObsClient, errors
from llmobs_async._client import USER_AGENT
from llmobs_async._transport import MAX_RESPONSE_BYTES
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded, client_for

API_KEY = "hostile-api-key-0123456789abcdef"
APP_KEY = "hostile-app-key-fedcba9876543210"
MiB = 1 << 20
PATH = "/api/v2/llm-obs/v1/projects/p"


def _gzip_bomb(decompressed: int) -> bytes:
    """A gzip body of zeros, about 1 KiB per MiB it expands to.

    After a full flush the compressor starts afresh, so one compressed MiB
    can be repeated; the trailer is left out, as no reader should get there.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = bytes(MiB)
    first = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    return first + again * (decompressed // MiB - 1)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    body = _gzip_bomb(512 * MiB)
    assert len(body) < MiB  # half a MiB on the wire, half a GiB unpacked
    assert len(zlib.decompressobj(31).decompress(body, 40 * MiB)) == 40 * MiB
    return body


async def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


class Counter:
    """What a test server handled: requests, and body bytes it managed to send."""

    def __init__(self) -> None:
        self.requests = 0
        self.sent = 0


async def test_a_gzip_bomb_stops_at_the_cap_in_bounded_memory(bomb: bytes) -> None:
    seen = Counter()

    async def handler(request: web.Request) -> web.Response:
        seen.requests += 1
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    runner = await _serve(handler)
    try:
        async with LLMObsClient(base_url=_url(runner), api_key="k", app_key="a") as client:
            tracemalloc.start()
            try:
                with pytest.raises(errors.ResponseTooLargeError) as info:
                    await client.projects.update("p", name="x")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        await runner.cleanup()
    assert info.value.limit == MAX_RESPONSE_BYTES == 32 * MiB
    assert info.value.status == 200
    assert "32 MiB" in str(info.value)
    assert seen.requests == 1  # not retried
    # Reading it whole took more than 1 GiB; the cap keeps the peak near 32 MiB.
    assert peak < 2 * MAX_RESPONSE_BYTES, f"peak {peak / MiB:.0f} MiB"


@pytest.mark.parametrize("status", [200, 503])
async def test_an_endless_chunked_stream_stops_at_the_cap(status: int) -> None:
    seen = Counter()

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.requests += 1
        response = web.StreamResponse(status=status)
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"x" * (256 * 1024)
        try:
            while seen.sent < 20 * MAX_RESPONSE_BYTES:  # "endless", within a test's patience
                await response.write(chunk)
                seen.sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up
        return response

    runner = await _serve(handler)
    try:
        async with LLMObsClient(base_url=_url(runner), api_key="k", app_key="a") as client:
            with pytest.raises(errors.ResponseTooLargeError) as info:
                await client.projects.update("p", name="x")
    finally:
        await runner.cleanup()
    assert info.value.status == status
    assert seen.requests == 1  # a 503 too: the body, not the status, is the problem
    # The client stopped reading (and closed the connection) soon after the cap.
    assert seen.sent < MAX_RESPONSE_BYTES + 16 * MiB


async def test_a_declared_length_over_the_cap_fails_before_reading() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n{" % (64 * MiB))
        await writer.drain()
        await reader.read()  # then nothing: only the header can end this quickly
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with (
        server,
        LLMObsClient(
            base_url=f"http://127.0.0.1:{port}", api_key="k", app_key="a", timeout=5
        ) as client,
    ):
        with pytest.raises(errors.ResponseTooLargeError):
            await asyncio.wait_for(client.projects.update("p", name="x"), 4)


async def test_error_bodies_are_kept_as_a_bounded_snippet(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    detail = "the reason, after a long preamble"
    body = b'{"padding": "%s", "errors": [{"title": "Bad", "detail": "%s"}]}' % (
        b"p" * (2 * MiB),
        detail.encode(),
    )
    fake.inject(status=400, body=body)
    with pytest.raises(errors.BadRequestError) as info:
        await client.projects.update(seeded.project_id, name="x")
    assert info.value.errors[0].detail == detail  # parsed from the whole body
    assert len(info.value.body) == errors.BODY_SNIPPET_BYTES
    assert body.startswith(info.value.body)
    fake.inject(status=200, body=b'{"data": ' + b"[" * (3 * MiB))
    with pytest.raises(errors.APIResponseValidationError) as bad:
        await client.projects.update(seeded.project_id, name="x")
    assert len(bad.value.body) == errors.BODY_SNIPPET_BYTES


# --- keys never leak through causes ---------------------------------------------------

GARBAGE = {
    "bad status line": b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    "not HTTP at all": b"\x00\x01garbage\r\n\r\n",
    "oversized header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    "duplicate Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
    b"Content-Length: 3\r\n\r\n{}",
    "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "key echoed in a bad status line": b"HTTP/1.1 2OO %s %s\r\n\r\n"
    % (API_KEY.encode(), APP_KEY.encode()),
}


@pytest.fixture
async def garbage_server(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    reply: bytes = request.param

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is not None and all(e is not s for s in seen):
            seen.append(e)
            todo += [e.__cause__, e.__context__]
    return seen


def _assert_clean(text: str) -> None:
    assert API_KEY not in text
    assert APP_KEY not in text


@pytest.mark.parametrize("garbage_server", list(GARBAGE.values()), ids=list(GARBAGE), indirect=True)
async def test_malformed_answers_chain_no_key(
    garbage_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with LLMObsClient(
        base_url=garbage_server, api_key=API_KEY, app_key=APP_KEY, max_retries=1
    ) as client:
        object.__setattr__(client._transport.retry, "initial", 0.001)
        with pytest.raises(errors.APIConnectionError) as info:
            await client.projects.update("p", name="x")
    exc = info.value
    chain = _chain(exc)
    assert len(chain) > 1  # a cause is kept, for debugging
    for e in chain:
        _assert_clean(f"{e!r} {e} {e.args!r} {getattr(e, '__dict__', {})!r}")
    _assert_clean("".join(traceback.format_exception(exc)))
    _assert_clean(caplog.text)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert "\n" not in str(exc)  # the server's bytes cannot add log lines


@pytest.mark.parametrize(
    "garbage_server", [GARBAGE["bad status line"]], ids=["bad status line"], indirect=True
)
async def test_the_scrubbed_cause_still_says_what_went_wrong(garbage_server: str) -> None:
    async with LLMObsClient(
        base_url=garbage_server, api_key=API_KEY, app_key=APP_KEY, max_retries=0
    ) as client:
        with pytest.raises(errors.APIConnectionError) as info:
            await client.projects.update("p", name="x")
    cause = info.value.__cause__
    assert isinstance(cause, aiohttp.ClientResponseError)
    assert "Bad status line" in str(cause)
    assert cause.request_info.headers["DD-API-KEY"] == "**********"
    assert cause.request_info.method == "PATCH"
    assert info.value.__context__ is None  # the original is not chained behind it


# --- answers of the wrong shape --------------------------------------------------------

SPAN = {"span_id": "s1", "eval_metrics": []}
EVENTS = {"id": "e", "type": "experiment_events", "attributes": {"spans": [SPAN]}}
WRONG_EVENTS = {
    "data is a list": {"data": [EVENTS]},
    "data is null": {"data": None},
    "data is missing": {"meta": {"after": ""}},
    "attributes are a list": {"data": {**EVENTS, "attributes": [SPAN]}},
    "attributes are missing": {"data": {"id": "e", "type": "experiment_events"}},
    "spans are missing": {"data": {**EVENTS, "attributes": {"summary_metrics": []}}},
    "spans are an object": {"data": {**EVENTS, "attributes": {"spans": SPAN}}},
    "spans are a string": {"data": {**EVENTS, "attributes": {"spans": "s1"}}},
    "summary metrics are an object": {
        "data": {**EVENTS, "attributes": {"spans": [], "summary_metrics": {"label": "x"}}}
    },
    "meta is a list": {"data": EVENTS, "meta": [{"after": "c2"}]},
    "meta is a string": {"data": EVENTS, "meta": "c2"},
}


@pytest.mark.parametrize("body", list(WRONG_EVENTS.values()), ids=list(WRONG_EVENTS))
async def test_an_events_page_of_the_wrong_shape_is_refused_not_read_as_empty(
    fake: FakeLLMObsServer, client: LLMObsClient, body: dict[str, Any]
) -> None:
    fake.inject(status=200, body=body)
    with pytest.raises(errors.APIResponseValidationError, match="not the documented shape"):
        [s async for s in client.experiments.events.list("e")]


async def test_null_spans_are_a_page_without_spans_but_missing_spans_are_refused(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    body = {"data": {**EVENTS, "attributes": {"spans": None, "summary_metrics": None}}}
    fake.inject(status=200, body=body)  # Go's encoding of an empty slice: said, not missing
    pages = [p async for p in client.experiments.events.list("e").pages()]
    assert len(pages) == 1 and list(pages[0].items) == []
    fake.inject(status=200, body={"data": {**EVENTS, "attributes": {"summary_metrics": None}}})
    with pytest.raises(errors.APIResponseValidationError, match="spans is missing"):
        [p async for p in client.experiments.events.list("e").pages()]


RECORD = {"id": "r", "type": "datasets", "attributes": {"input": 1}}
PROJECT = {"id": "p", "type": "projects", "attributes": {"name": "n"}}
WRONG_ELSEWHERE: dict[str, tuple[Callable[[LLMObsClient], Awaitable[Any]], dict[str, Any]]] = {
    "records meta is a string": (
        lambda c: _drain(c.records.list("p", "d")),
        {"data": [RECORD], "meta": "c2"},
    ),
    "projects meta is a list": (
        lambda c: _drain(c.projects.list()),
        {"data": [PROJECT], "meta": [{"after": "c2"}]},
    ),
    "project in a list without attributes": (
        lambda c: _drain(c.projects.list()),
        {"data": [{"id": "p", "type": "projects"}]},
    ),
    "updated project with null attributes": (
        lambda c: c.projects.update("p", name="n"),
        {"data": {"id": "p", "type": "projects", "attributes": None}},
    ),
    "updated project as a list": (
        lambda c: c.projects.update("p", name="n"),
        {"data": [PROJECT]},
    ),
}


async def _drain(items: AsyncIterable[Any]) -> list[Any]:
    return [item async for item in items]


@pytest.mark.parametrize(
    ("call", "body"), list(WRONG_ELSEWHERE.values()), ids=list(WRONG_ELSEWHERE)
)
async def test_other_answers_of_the_wrong_shape_are_refused_not_read_as_empty(
    fake: FakeLLMObsServer,
    client: LLMObsClient,
    call: Callable[[LLMObsClient], Awaitable[Any]],
    body: dict[str, Any],
) -> None:
    fake.inject(status=200, body=body)
    with pytest.raises(errors.APIResponseValidationError, match="not the documented shape"):
        await call(client)


# --- the caller's own session ----------------------------------------------------------


async def test_a_raise_for_status_session_still_gets_typed_errors(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    session = aiohttp.ClientSession(raise_for_status=True)
    async with session, client_for(fake, session=session) as client:
        with pytest.raises(errors.NotFoundError) as info:
            await client.projects.update("no-such-project", name="x")
        fake.inject(status=503, times=1)
        project = await client.projects.update(seeded.project_id, name="after a 503")
    assert info.value.__cause__ is None
    assert project.name == "after a 503"
    assert [r.status for r in fake.requests] == [404, 503, 200]  # the 404 was not retried


async def test_the_caller_sessions_user_agent_is_kept(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    session = aiohttp.ClientSession(headers={"User-Agent": "my-app/1.0"})
    async with session, client_for(fake, session=session) as client:
        await client.projects.update(seeded.project_id, name="x")
        await client.with_options(max_retries=0).projects.update(seeded.project_id, name="y")
    agents = [r.headers["User-Agent"] for r in fake.requests]
    assert agents == [f"my-app/1.0 {USER_AGENT}"] * 2
