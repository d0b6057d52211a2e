"""What the benchmarks share: server and worker processes, core pinning, the checkout's state.

Every benchmark is a folder (``cpu/``, ``ratelimit/``, ``pager/``, ``chaos/``,
``csv_import/``, ``update_paths/``, ``experiments/``) whose ``run.py`` is the command; each script
that runs as a process puts ``benchmarks/`` on ``sys.path`` first, so modules are
imported by folder (``from cpu.scenarios import make_record``) or from here.

Workers import this module too, so it imports aiohttp and urllib only where they
are used: a worker's heap holds the library it measures and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent


class Server:
    """A loopback server process: ``with Server(cpu) as server: server.url``.

    A benchmark names its server script in a subclass (``script``); the script
    announces ``PORT <n>`` on stdout (see :func:`serve`) and serves ``/_stats``.
    """

    script: Path

    def __init__(self, cpu: int | None, *args: str) -> None:
        self._cpu = cpu
        self._args = args
        self.url = ""

    def __enter__(self) -> Server:
        command = [sys.executable, str(self.script), *self._args]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self._process.kill()
            raise RuntimeError(f"the server did not announce its port: {line!r}")
        pin(self._process.pid, self._cpu)
        self.url = f"http://127.0.0.1:{line[1]}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)

    def stats(self) -> dict[str, int]:
        """The server's counters: requests per route, ``non_200``, ``records_received``."""
        import urllib.request

        # The server's port is chosen by the OS; urllib must not send loopback calls to a proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.url + "/_stats", timeout=10) as response:
            stats: dict[str, int] = json.loads(response.read())
        return stats


def pin(pid: int, cpu: int | None) -> None:
    """Keep a process on one core (server and worker apart), where the OS allows it."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu})


def cores() -> tuple[int | None, int | None]:
    """The cores for the server and for the workers, or no pinning on one core."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0], cores[1]) if len(cores) >= 2 else (None, None)


_QUIET: dict[str, Any] = {"capture_output": True, "text": True, "check": False}


def source_state() -> str:
    """The checkout's commit, and whether llmobs_async/ has uncommitted changes."""
    try:
        git = ["git", "-C", str(ROOT)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], **_QUIET).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "llmobs_async"], **_QUIET)
    except OSError:
        return "unknown"
    return f"{commit or 'unknown'}{' (llmobs_async modified)' if dirty.stdout.strip() else ''}"


def worker_main(run: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]], argv: list[str]) -> int:
    """A worker process's whole life: run the JSON spec ``argv[1]``, print one JSON line.

    An error prints its traceback on stderr and ``{"error": ...}`` on stdout, exit 1,
    so the runner marks the row instead of losing it.
    """
    try:
        result = asyncio.run(run(json.loads(argv[1])))
    except Exception as exc:
        traceback.print_exc()
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


async def serve(app: web.Application) -> None:
    """Listen on a free loopback port, announce it, and serve ``app`` until killed."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
