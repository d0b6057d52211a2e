"""FakeProvider: an LLM provider on 127.0.0.1 that enforces its own rate limit, for tests.

``python -m llmobs_async.testing.provider --limit 120/10 --service-time 0.05``
runs one in the foreground (for multi-process tests and benchmarks): its first
line is ``URL http://127.0.0.1:PORT``, and ``GET /stats`` answers its counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import sys
import time
from collections import Counter
from types import TracebackType
from typing import Any

from aiohttp import web


class FakeProvider:
    """A fake OpenAI/Anthropic-like API under a fixed-window rate limit, on a random port.

    Windows of ``limit[1]`` seconds start when the server starts; beyond
    ``limit[0]`` calls in one window it answers 429 with ``retry-after``
    (seconds to the window's end, rounded up; ``retry-after-ms`` too, as
    OpenAI sends) and an error body in the provider's shape. Each call takes
    ``service_time`` seconds (a real sleep; calls run concurrently)::

        async with FakeProvider(limit=(120, 10.0), service_time=0.05) as provider:
            ...  # POST f"{provider.url}/v1/chat/completions"
            assert provider.rate_limited == 0

    Endpoints: ``POST /v1/chat/completions`` (OpenAI's shape) and
    ``POST /v1/messages`` (Anthropic's) echo the last user message;
    ``GET /stats`` returns the counts as JSON.
    """

    def __init__(
        self,
        limit: tuple[int, float] = (120, 10.0),
        service_time: float = 0.05,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        calls, per = limit
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
            raise ValueError(f"limit: the calls per window must be an int >= 1; got {calls!r}")
        if not 0 < per < math.inf:
            raise ValueError(
                f"limit: the window must be a finite number of seconds > 0; got {per!r}"
            )
        if not 0 <= service_time < math.inf:
            raise ValueError(f"service_time must be finite and >= 0; got {service_time!r}")
        self.limit = (calls, float(per))
        self.service_time = service_time
        self.calls = 0
        """Calls received, the refused ones included."""
        self.rate_limited = 0
        """Calls answered 429."""
        self.arrivals: Counter[int] = Counter()
        """Calls received (429s included) per window index."""
        self.accepted: Counter[int] = Counter()
        """Calls served per window index."""
        self.tokens: Counter[int] = Counter()
        """Tokens of the calls served (prompt words plus ``max_tokens``) per window index."""
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._start = 0.0
        self._ids = itertools.count(1)
        self.url = ""
        """``http://127.0.0.1:PORT``, set once the server has started."""

    @property
    def max_per_window(self) -> int:
        """The most calls (429s included) received in one window: <= the limit: none refused."""
        return max(self.arrivals.values(), default=0)

    @property
    def max_tokens_per_window(self) -> int:
        """The most tokens served in one window."""
        return max(self.tokens.values(), default=0)

    def stats(self) -> dict[str, int]:
        """The counts ``GET /stats`` returns."""
        return {
            "calls": self.calls,
            "rate_limited": self.rate_limited,
            "max_per_window": self.max_per_window,
            "max_tokens_per_window": self.max_tokens_per_window,
        }

    async def start(self) -> FakeProvider:
        """Start listening; ``url`` is set afterwards, and the first window starts."""
        if self._runner is not None:
            return self
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_get("/stats", self._stats)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=0.1,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._start = time.monotonic()
        return self

    async def stop(self) -> None:
        """Stop the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeProvider:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- inside ------------------------------------------------------------------------

    def _admit(self) -> float | None:
        """Count one call; None if it is served, else the seconds to the window's end."""
        calls, per = self.limit
        elapsed = time.monotonic() - self._start
        window = int(elapsed // per)
        self.calls += 1
        self.arrivals[window] += 1
        if self.accepted[window] >= calls:
            self.rate_limited += 1
            return (window + 1) * per - elapsed
        self.accepted[window] += 1
        return None

    async def _serve(self, request: web.Request, anthropic: bool) -> web.StreamResponse:
        refused = self._admit()
        window = int((time.monotonic() - self._start) // self.limit[1])
        if refused is not None:
            message = f"Rate limit reached: {self.limit[0]} requests per {self.limit[1]:g} s"
            body: dict[str, Any] = (
                {"type": "error", "error": {"type": "rate_limit_error", "message": message}}
                if anthropic
                else {
                    "error": {
                        "message": message,
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                }
            )
            headers = {
                "retry-after": str(max(1, math.ceil(refused))),
                "retry-after-ms": str(max(1, math.ceil(refused * 1000))),
            }
            return web.json_response(body, status=429, headers=headers)
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return web.json_response(
                {"error": {"message": "the body must be a JSON object"}}, status=400
            )
        text = _last_user_text(payload.get("messages"))
        prompt = len(text.split())
        completion = max(1, prompt)
        max_tokens = payload.get("max_tokens")
        self.tokens[window] += prompt + (max_tokens if isinstance(max_tokens, int) else completion)
        if self.service_time:
            await asyncio.sleep(self.service_time)
        model = str(payload.get("model", "fake-model"))
        number = next(self._ids)
        if anthropic:
            return web.json_response(
                {
                    "id": f"msg_fake{number}",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": prompt, "output_tokens": completion},
                }
            )
        return web.json_response(
            {
                "id": f"chatcmpl-fake{number}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, anthropic=False)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, anthropic=True)

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats())


def _last_user_text(messages: object) -> str:
    """The last user message's text (a string, or the text parts of a content list)."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
            return ""
    return ""


def _limit(text: str) -> tuple[int, float]:
    calls, sep, per = text.partition("/")
    try:
        value = (int(calls), float(per))
    except ValueError:
        value = (0, 0.0)
    if not sep or value[0] < 1 or not 0 < value[1] < math.inf:
        raise argparse.ArgumentTypeError(f"must be CALLS/SECONDS, e.g. 120/10; got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0; got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535 (0: any free port); got {text!r}")
    return value


async def _serve_forever(args: argparse.Namespace) -> None:
    async with FakeProvider(args.limit, args.service_time, port=args.port) as provider:
        print(f"URL {provider.url}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    """``python -m llmobs_async.testing.provider``: serve a FakeProvider until killed."""
    parser = argparse.ArgumentParser(
        prog="python -m llmobs_async.testing.provider",
        description="A fake LLM provider that enforces a fixed-window rate limit (429 beyond it).",
    )
    parser.add_argument("--limit", type=_limit, default=(120, 10.0), help="CALLS/SECONDS (120/10)")
    parser.add_argument(
        "--service-time", type=_seconds, default=0.05, help="seconds per call (0.05)"
    )
    parser.add_argument("--port", type=_port, default=0, help="0: any free port")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
