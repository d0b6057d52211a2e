"""The processes of the rate-limit benchmark: the server, and the clients of one row.

``RateServer`` runs ``server.py`` and talks to its control endpoints;
``RedisProcess`` runs the redis-server of the rows with the shared store;
``Workers`` runs the K ``clients.py`` processes of a row, holds them until
all are ready, lets them go together and collects their JSON lines.
"""

from __future__ import annotations

import dataclasses
import json
import math
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
PER_REQUEST = 100
CONCURRENCY = 16
"""Requests in flight per client process (llmobs_async's default ``max_concurrency``)."""
# The port is the OS's choice; loopback calls must never go through a proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclasses.dataclass(frozen=True)
class Case:
    """A limit of ``limit`` requests per ``period`` seconds, a job of ``requests``, a latency."""

    limit: int
    period: int
    requests: int
    latency_ms: int = 0
    """The server's service time for every answer."""

    @classmethod
    def parse(cls, text: str, latency_ms: int = 0) -> Case:
        """``"20/2x100"``: 20 requests per 2 s, 100 requests of 100 records.

        ``"600/60x400@50"``: the same with a 50 ms service time (else ``latency_ms``).
        """
        try:
            job, _, latency = text.strip().partition("@")
            rate, requests = job.split("x")
            limit, period = rate.split("/")
            case = cls(
                int(limit), int(period), int(requests), int(latency) if latency else latency_ms
            )
        except ValueError:
            raise SystemExit(
                f"bad case {text!r}: expected L/PxN or L/PxN@MS, e.g. 20/2x100, 600/60x400@50"
            ) from None
        if min(case.limit, case.period, case.requests) < 1 or case.latency_ms < 0:
            raise SystemExit(f"bad case {text!r}: L, P and N must be >= 1, MS >= 0")
        return case

    @property
    def ideal_s(self) -> int:
        """What the limit allows: ``ceil(N / L) * P`` seconds."""
        return math.ceil(self.requests / self.limit) * self.period

    @property
    def roomy(self) -> bool:
        """The limit has room for the whole job in one window: only concurrency binds it."""
        return self.requests <= self.limit and self.latency_ms > 0

    def label(self) -> str:
        """``20/2s N=100``, with ``@50ms`` when the server takes time."""
        text = f"{self.limit}/{self.period}s N={self.requests}"
        return text + (f" @{self.latency_ms}ms" if self.latency_ms else "")


@dataclasses.dataclass(frozen=True)
class Row:
    """One measurement: a case under one mode, run by ``procs`` processes of one client."""

    mode: str
    case: Case
    procs: int
    client: str
    control: bool = False
    """A row run only to compare with the shared store (issue 11): measured, not judged."""

    def label(self) -> str:
        """A short description for progress lines."""
        client = self.client + (" (control)" if self.control else "")
        return f"{self.mode} {self.case.label()} K={self.procs} {client}"

    @property
    def ideal_s(self) -> float:
        """What the job needs at best: the limit's ``ceil(N / L) * P`` seconds.

        When the limit has room for it all, what concurrency allows instead:
        ``ceil(N / (K * 16)) * latency`` (each process sends its part at
        ``CONCURRENCY`` in flight).
        """
        if self.case.roomy:
            per_process = math.ceil(self.case.requests / self.procs)
            return math.ceil(per_process / CONCURRENCY) * self.case.latency_ms / 1000
        return float(self.case.ideal_s)


class RateServer:
    """The server process: ``with RateServer() as server: server.reset(...)``."""

    def __enter__(self) -> RateServer:
        command = [sys.executable, str(HERE / "server.py")]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        announced = self._process.stdout.readline().split()
        if len(announced) != 2 or announced[0] != "PORT":
            self._process.kill()
            raise RuntimeError(f"the server did not announce its port: {announced!r}")
        self.url = f"http://127.0.0.1:{announced[1]}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)

    def reset(self, row: Row, offset: float) -> None:
        """Put the row's limit in force now, its first window begun ``offset`` s ago."""
        case = row.case
        body = {
            "limit": case.limit,
            "period": case.period,
            "mode": row.mode,
            "offset": offset,
            "latency": case.latency_ms / 1000,
        }
        request = urllib.request.Request(
            self.url + "/_reset", data=json.dumps(body).encode(), method="POST"
        )
        with _OPENER.open(request, timeout=10):
            pass

    def stats(self) -> dict[str, Any]:
        """Answers per status code and every applied record id since the reset."""
        with _OPENER.open(self.url + "/_stats", timeout=30) as response:
            stats: dict[str, Any] = json.loads(response.read())
        return stats


def shares(requests: int, procs: int) -> list[int]:
    """Split ``requests`` as evenly as possible over ``procs`` processes."""
    return [requests // procs + (index < requests % procs) for index in range(procs)]


class RedisProcess:
    """A ``redis-server`` on a free loopback port, for the rows with the shared store."""

    def __enter__(self) -> RedisProcess:
        executable = shutil.which("redis-server")
        if executable is None:
            raise SystemExit("redis-server is missing: apt-get install redis-server")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        command = [executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers("PING", b"+PONG"):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.__exit__()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)

    def flush(self) -> None:
        """Forget every key: each row starts with no plan, as its server limit does."""
        if not self._answers("FLUSHALL", b"+OK"):
            raise RuntimeError("redis-server did not flush")

    def _answers(self, command: str, expected: bytes) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(command.encode() + b"\r\n")
                return sock.recv(64).startswith(expected)
        except OSError:
            return False


class Workers:
    """The K client processes of one row, started together and collected."""

    def __init__(self, row: Row, url: str, redis: str | None = None) -> None:
        self.row, self.url, self.redis = row, url, redis
        self._processes: list[tuple[subprocess.Popen[str], IO[str]]] = []

    def __enter__(self) -> Workers:
        first = 0
        for count in shares(self.row.case.requests, self.row.procs):
            spec = {
                "client": self.row.client,
                "url": self.url,
                "requests": count,
                "per_request": PER_REQUEST,
                "first_record": first * PER_REQUEST,
                "redis": self.redis,
            }
            first += count
            log = tempfile.TemporaryFile("w+")
            command = [sys.executable, str(HERE / "clients.py"), json.dumps(spec)]
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
            self._processes.append((process, log))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process, log in self._processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()

    def wait_ready(self, timeout: float) -> str | None:
        """Wait until every process has imported its library and opened its client.

        Returns why a process did not get ready, or None when all did.
        """
        for process, log in self._processes:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], timeout)
            line = process.stdout.readline().strip() if ready else "(no answer)"
            if line != "READY":
                return f"a client process did not start: {line} {_tail(log)}"
        return None

    def go(self) -> None:
        """Let every process start its job, all at once."""
        for process, _ in self._processes:
            assert process.stdin is not None
            process.stdin.write("GO\n")
            process.stdin.flush()

    def results(self, deadline: float) -> list[dict[str, Any]]:
        """Each process's JSON line, or an ``error`` entry if it failed or ran out of time."""
        out = []
        for process, log in self._processes:
            try:
                stdout, _ = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                out.append({"error": "timed out"})
                continue
            try:
                out.append(json.loads(stdout.strip().splitlines()[-1]))
            except (IndexError, json.JSONDecodeError):
                out.append({"error": f"exit {process.returncode}, no result {_tail(log)}"})
        return out


def _tail(log: IO[str]) -> str:
    log.seek(0)
    return " / ".join(log.read().strip().splitlines()[-3:])
