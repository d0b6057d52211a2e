"""The event loop a worker thread works for, for code in the thread that must call back into it.

The experiment runner's threads run plain tasks for one event loop; a plain task
that paces its calls with a :class:`~llmobs_async.RateLimiter` (``with
limiter.acquire():``) waits on that loop, where the limiter's queue lives. The
runner's threads say which loop they serve here; the limiter reads it.
"""

from __future__ import annotations

import asyncio
import threading

_here = threading.local()


def serve(loop: asyncio.AbstractEventLoop) -> None:
    """This thread now works for ``loop``."""
    _here.loop = loop


def home() -> asyncio.AbstractEventLoop | None:
    """The loop this thread works for, if a runner's thread pool said so."""
    loop: asyncio.AbstractEventLoop | None = getattr(_here, "loop", None)
    return loop
