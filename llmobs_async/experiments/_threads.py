"""The run's threads for plain (not ``async``) tasks and evaluators: bounded, and cheap per call.

``loop.run_in_executor`` costs about 35 µs of CPU per call when fifty rows
hand their evaluators over at once (a ``concurrent.futures.Future`` chained
to an asyncio one, the executor's idle semaphore and locks); this pool costs
about 2 µs: a job queue, and the answer set on the loop's own future with one
``call_soon_threadsafe``. Threads start as jobs need them, up to ``size``,
and are daemons: a task stuck in C code cannot keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from .._threadloop import serve

__all__ = ["ThreadPool"]

_STOP = None


class ThreadPool:
    """At most ``size`` threads running plain functions for one event loop."""

    def __init__(self, size: int, name: str = "llmobs-experiment") -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0  # jobs queued or running; touched on the loop's thread only
        self._orphans = 0  # of those, jobs whose caller stopped waiting (a task_timeout)
        self._closed = False

    def run(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """``function(*args)`` in a thread; its result (or exception) on the returned future."""
        if self._closed:
            raise RuntimeError("the run's threads are shut down")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._busy += 1
        future.add_done_callback(self._orphaned)
        # A job whose caller stopped waiting (a sync task past its timeout) still
        # holds its thread: one more thread takes its place, so later rows do not wait.
        if self._busy > len(self._threads) and len(self._threads) < self._size + self._orphans:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._jobs.put((loop, future, function, args))
        return future

    def shutdown(self) -> None:
        """Let every thread end once its job (if any) is done; queued jobs still run."""
        if not self._closed:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(_STOP)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not _STOP:
            loop, future, function, args = job
            serve(loop)  # a plain task's `with limiter.acquire():` waits on this loop
            if future.cancelled():  # its row was cancelled while the job waited
                loop.call_soon_threadsafe(self._done, future, None, None)
                continue
            try:
                result, error = function(*args), None
            except BaseException as exc:
                result, error = None, exc
            # A closed loop (RuntimeError) has nobody awaiting the answer any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._done, future, result, error)

    def _orphaned(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self._orphans += 1

    def _done(self, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        self._busy -= 1
        if future.cancelled():
            self._orphans -= 1
        if future.done():
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
