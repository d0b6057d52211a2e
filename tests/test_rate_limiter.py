"""The task's own rate limiter in one process, against a FakeProvider that enforces its limit.

Assertions count what the provider saw (429s, the most calls in one of its
fixed windows), not wall-clock time; where a pause is checked, only its lower
bound is (a loaded machine makes waits longer, never shorter).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest

from llmobs_async import LLMObsClient, RateLimiter, RateLimiterStats, errors
from llmobs_async._ratelimit.headers import wait_from
from llmobs_async.testing import FakeProvider
from llmobs_async.testing.provider import main as provider_main


@pytest.fixture
async def client() -> AsyncIterator[LLMObsClient]:
    """A client with no store (the limiter needs no server of the API)."""
    async with LLMObsClient(api_key="k", app_key="a", base_url="http://127.0.0.1:9") as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class ProviderError(Exception):
    """Shaped like openai's / anthropic's RateLimitError: status_code and response.headers."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(f"Error code: {status}")
        self.status_code = status
        self.response = type("Response", (), {"headers": headers})()


class ClientResponseLike(Exception):
    """Shaped like aiohttp's ClientResponseError: status and headers."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(f"{status}")
        self.status = status
        self.headers = headers


async def chat(
    http: aiohttp.ClientSession,
    provider: FakeProvider,
    limiter: RateLimiter | None,
    *,
    tokens: int = 0,
    error: type[Exception] = ProviderError,
) -> int:
    """One chat call (1 prompt word + max_tokens 9 = 10 tokens), through the limiter if given."""
    body = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}

    async def send() -> int:
        async with http.post(f"{provider.url}/v1/chat/completions", json=body) as response:
            await response.read()
            if response.status == 429:
                raise error(429, response.headers)  # type: ignore[call-arg]
            return response.status

    if limiter is None:
        try:
            return await send()
        except Exception:
            return 429
    async with limiter.acquire(tokens=tokens):
        return await send()


async def test_two_windows_of_calls_get_no_429(
    client: LLMObsClient, http: aiohttp.ClientSession
) -> None:
    """Twice the limit at once: the limiter spreads them; the provider never refuses one."""
    limiter = client.rate_limiter("p", requests=10, per=0.5)
    async with FakeProvider(limit=(10, 0.5), service_time=0.01) as provider:
        statuses = await asyncio.gather(*(chat(http, provider, limiter) for _ in range(20)))
    assert statuses == [200] * 20
    assert provider.calls == 20
    assert provider.rate_limited == 0
    assert provider.max_per_window <= 10
    assert limiter.stats.acquired == 20


async def test_without_the_limiter_the_provider_refuses(http: aiohttp.ClientSession) -> None:
    """The control: the same calls unpaced get 429s (the provider does bite)."""
    async with FakeProvider(limit=(10, 0.5), service_time=0.01) as provider:
        statuses = await asyncio.gather(*(chat(http, provider, None) for _ in range(20)))
    assert statuses.count(429) >= 5
    assert provider.rate_limited == statuses.count(429)


async def test_the_tokens_limit_bounds_tokens(
    client: LLMObsClient, http: aiohttp.ClientSession
) -> None:
    """30 tokens per window, 10 a call: at most 3 calls' tokens in any provider window."""
    limiter = client.rate_limiter("t", requests=100, per=0.4, tokens=30)
    async with FakeProvider(limit=(100, 0.4), service_time=0.0) as provider:
        await asyncio.gather(*(chat(http, provider, limiter, tokens=10) for _ in range(6)))
    assert provider.max_tokens_per_window <= 30
    assert limiter.stats.tokens == 60
    assert limiter.stats.acquired == 6


async def test_first_in_first_out_a_small_one_does_not_pass_a_big_one(
    client: LLMObsClient,
) -> None:
    """20 tokens wait for room; 5 tokens queued behind them go after, though they would fit."""
    limiter = client.rate_limiter("f", requests=100, per=0.3, tokens=30)
    order: list[str] = []
    queued = {"big": asyncio.Event(), "small": asyncio.Event()}

    async def take(label: str, tokens: int) -> None:
        # Set before acquire: the waiter is queued before this task first yields,
        # so whoever waits on the event resumes after the waiter is in line.
        queued[label].set()
        async with limiter.acquire(tokens=tokens):
            order.append(label)

    async with limiter.acquire(tokens=20):
        pass
    big = asyncio.create_task(take("big", 20))
    await queued["big"].wait()
    small = asyncio.create_task(take("small", 5))
    await queued["small"].wait()
    async with asyncio.timeout(10):
        await asyncio.gather(big, small)
    assert order == ["big", "small"]
    assert limiter.stats.tokens == 45


async def test_tokens_are_ignored_without_a_token_limit(client: LLMObsClient) -> None:
    limiter = client.rate_limiter("n", requests=5, per=1)
    async with limiter.acquire(tokens=10**9):
        pass
    assert limiter.stats == RateLimiterStats(
        acquired=1, tokens=0, waited=limiter.stats.waited, backed_off=0
    )


async def test_back_off_pauses_the_next_acquisition(client: LLMObsClient) -> None:
    """A pause holds the next permit for at least its length; a shorter later one keeps it."""
    limiter = client.rate_limiter("b", requests=100, per=1)
    await limiter.back_off(retry_after=0.4)
    await limiter.back_off(retry_after=0.01)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(10), limiter.acquire():
        waited = loop.time() - start
    assert waited >= 0.35
    assert limiter.stats.backed_off == 2
    assert limiter.stats.waited >= 0.35


async def test_back_off_prefers_the_headers(client: LLMObsClient) -> None:
    """retry-after-ms over retry_after: a 200 ms pause, not the 30 s argument."""
    limiter = client.rate_limiter("h", requests=100, per=1)
    await limiter.back_off(30.0, headers={"Retry-After-Ms": "200", "Retry-After": "40"})
    async with asyncio.timeout(10), limiter.acquire():
        pass
    assert limiter.stats.waited >= 0.15


def test_the_wait_comes_from_ms_then_seconds_then_the_argument_then_one_second() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert wait_from(None, {"retry-after-ms": "250", "retry-after": "7"}) == 0.25
    assert wait_from(5.0, {"Retry-After": "7"}) == 7.0
    assert 20 < wait_from(None, {"retry-after": soon}) <= 30
    assert wait_from(2.5, {"retry-after": "soon"}) == 2.5
    assert wait_from(None, None) == 1.0


@pytest.mark.parametrize("error", [ProviderError, ClientResponseLike])
async def test_a_provider_429_inside_acquire_backs_off(
    client: LLMObsClient, http: aiohttp.ClientSession, error: type[Exception]
) -> None:
    """A 429 raised inside ``acquire`` pauses the limiter to the provider's window end.

    openai-like (status_code) or aiohttp-like (status): the next call is not refused
    again, and the error still propagates.
    """
    limiter = client.rate_limiter("e", requests=100, per=0.3)  # laxer than the provider
    statuses: list[int | str] = []
    async with FakeProvider(limit=(2, 0.3), service_time=0.0) as provider:
        for _ in range(4):
            try:
                statuses.append(await chat(http, provider, limiter, error=error))
            except error:
                statuses.append("raised")
        assert provider.rate_limited == 1
    assert statuses[-1] == 200
    assert statuses.count("raised") == 1
    assert limiter.stats.backed_off == 1


async def test_other_exceptions_do_not_back_off(client: LLMObsClient) -> None:
    limiter = client.rate_limiter("o", requests=100, per=1)
    with pytest.raises(ProviderError):
        async with limiter.acquire():
            raise ProviderError(500, {})
    assert limiter.stats.backed_off == 0
    assert limiter.stats.acquired == 1


async def test_one_limiter_per_name_across_views(client: LLMObsClient) -> None:
    limiter = client.rate_limiter("openai:gpt-4o", requests=500, per=60, tokens=30_000)
    view = client.with_options(max_retries=1)
    assert view.rate_limiter("openai:gpt-4o", requests=500, per=60.0, tokens=30_000) is limiter
    assert client.rate_limiter("other", requests=500, per=60) is not limiter
    assert "openai:gpt-4o" in repr(limiter) and "requests=500" in repr(limiter)
    for field, kwargs in (
        ("requests", {"requests": 400, "per": 60, "tokens": 30_000}),
        ("per", {"requests": 500, "per": 30, "tokens": 30_000}),
        ("tokens", {"requests": 500, "per": 60}),
    ):
        with pytest.raises(errors.ValidationError) as caught:
            view.rate_limiter("openai:gpt-4o", **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
        assert "already made with requests=500" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("name", {"name": ""}),
        ("name", {"name": 3}),
        ("name", {"name": "x" * 201}),
        ("name", {"name": "a\nb"}),
        ("requests", {"requests": 0}),
        ("requests", {"requests": True}),
        ("requests", {"requests": 2.5}),
        ("per", {"per": 0}),
        ("per", {"per": float("inf")}),
        ("per", {"per": float("nan")}),
        ("per", {"per": "60"}),
        ("tokens", {"tokens": 0}),
        ("tokens", {"tokens": False}),
    ],
)
def test_bad_limits_name_the_field(field: str, kwargs: dict[str, Any]) -> None:
    client = LLMObsClient(api_key="k", app_key="a")
    arguments: dict[str, Any] = {"name": "x", "requests": 10, "per": 1.0, **kwargs}
    with pytest.raises(errors.ValidationError) as caught:
        client.rate_limiter(**arguments)
    assert caught.value.field == field


async def test_bad_acquisitions_and_pauses_name_the_field(client: LLMObsClient) -> None:
    limiter = client.rate_limiter("v", requests=10, per=1, tokens=100)
    for bad in (-1, True, 1.5):
        with pytest.raises(errors.ValidationError) as caught:
            limiter.acquire(tokens=bad)  # type: ignore[arg-type]
        assert caught.value.field == "tokens"
    with pytest.raises(errors.ValidationError, match="can never be granted: the limit is 100"):
        limiter.acquire(tokens=101)
    for pause in (-1, float("inf"), "2"):
        with pytest.raises(errors.ValidationError) as caught:
            await limiter.back_off(pause)  # type: ignore[arg-type]
        assert caught.value.field == "retry_after"
    assert limiter.stats.backed_off == 0


async def test_closing_the_client_fails_the_waiters() -> None:
    """A waiter queued when the client closes gets an error, not a hang."""
    client = LLMObsClient(api_key="k", app_key="a")
    limiter = client.rate_limiter("c", requests=1, per=60)
    async with limiter.acquire():
        pass
    entered = asyncio.Event()

    async def second() -> None:
        entered.set()
        async with limiter.acquire():
            pass

    task = asyncio.create_task(second())
    await entered.wait()  # set just before acquire queues it, without yielding between
    await client.close()
    with pytest.raises(errors.LLMObsError, match="closed"):
        await asyncio.wait_for(task, 5)


# --- the fake provider ------------------------------------------------------------------


async def test_fake_provider_shapes(http: aiohttp.ClientSession) -> None:
    """OpenAI's and Anthropic's shapes echo the last user message; 429s carry retry-after."""
    async with FakeProvider(limit=(2, 60.0), service_time=0.0) as provider:
        messages = [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
        ]
        async with http.post(
            f"{provider.url}/v1/chat/completions", json={"model": "gpt", "messages": messages}
        ) as response:
            chat_body = await response.json()
        async with http.post(
            f"{provider.url}/v1/messages", json={"model": "claude", "messages": messages}
        ) as response:
            message_body = await response.json()
        async with http.post(f"{provider.url}/v1/messages", json={"messages": []}) as response:
            refused = response.status, response.headers.get("retry-after"), await response.json()
        async with http.get(f"{provider.url}/stats") as response:
            stats = await response.json()
    assert chat_body["choices"][0]["message"] == {"role": "assistant", "content": "hello there"}
    assert chat_body["usage"]["prompt_tokens"] == 2 and chat_body["model"] == "gpt"
    assert message_body["content"] == [{"type": "text", "text": "hello there"}]
    assert message_body["type"] == "message" and message_body["usage"]["input_tokens"] == 2
    status, retry_after, error_body = refused
    assert status == 429 and retry_after is not None and 1 <= int(retry_after) <= 60
    assert error_body["error"]["type"] == "rate_limit_error"
    assert stats == {"calls": 3, "rate_limited": 1, "max_per_window": 3, "max_tokens_per_window": 8}


async def test_fake_provider_command_line(http: aiohttp.ClientSession) -> None:
    """``python -m llmobs_async.testing.provider`` prints its URL first and serves until killed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmobs_async.testing.provider",
        "--limit",
        "1/30",
        "--service-time",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode().strip()
        assert line.startswith("URL http://127.0.0.1:")
        url = line.removeprefix("URL ")
        body = {"messages": [{"role": "user", "content": "hi"}]}
        codes = []
        for _ in range(2):
            async with http.post(f"{url}/v1/chat/completions", json=body) as response:
                codes.append(response.status)
                error_body = await response.json()
        async with http.get(f"{url}/stats") as response:
            stats = await response.json()
    finally:
        process.kill()
        await process.wait()
    assert codes == [200, 429]
    assert error_body["error"]["code"] == "rate_limit_exceeded"
    assert stats["calls"] == 2 and stats["rate_limited"] == 1


@pytest.mark.parametrize(
    "argv", [["--limit", "120"], ["--limit", "0/10"], ["--service-time", "-1"], ["--port", "70000"]]
)
def test_fake_provider_command_line_refuses_bad_options(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        provider_main(argv)
    assert caught.value.code == 2
    assert "must be" in capsys.readouterr().err
