"""A real ``redis-server`` on a loopback port, for the tests of the shared rate-limit store.

Never a mock: the store's script runs in the Redis the Debian package
``redis-server`` installs (``make test`` installs it when missing). Without
it the fixtures fail with a message saying so; they never skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

STARTUP_S = 10.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process: ``--save '' --appendonly no``, loopback only."""

    def __init__(self, *, password: str | None = None, port: int | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail(
                "redis-server is not installed; `make test` installs it "
                "(apt-get install redis-server), or install it yourself",
                pytrace=False,
            )
        self.password = password
        self.port = port or free_port()
        command = [
            executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        if password is not None:
            command += ["--requirepass", password]
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log)
        self._wait_ready()

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:port/0``."""
        auth = "" if self.password is None else f":{self.password}@"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.seek(0)
                err = self._log.read().strip()[-500:]
                self._log.close()
                pytest.fail(f"redis-server exited at start: {err}", pytrace=False)
            if self.ping():
                return
            time.sleep(0.01)  # polling a real state (the port answering PONG), with a deadline
        self.stop()
        pytest.fail(f"redis-server did not answer within {STARTUP_S:g} s", pytrace=False)

    def ping(self) -> bool:
        """True if the server answers PING (``NOAUTH`` counts: it is up)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                answer = sock.recv(64)
        except OSError:
            return False
        return answer.startswith((b"+PONG", b"-NOAUTH"))

    def command(self, *args: str) -> str:
        """Run one command with ``redis-cli`` and return its raw output."""
        cli = shutil.which("redis-cli")
        assert cli is not None, "redis-cli comes with redis-server"
        auth = [] if self.password is None else ["--no-auth-warning", "-a", self.password]
        out = subprocess.run(
            [cli, "-p", str(self.port), *auth, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture(scope="session")
def _redis_process() -> Iterator[RedisServer]:
    """The session's one redis-server process."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(_redis_process: RedisServer) -> RedisServer:
    """The session's redis-server, emptied for this test.

    Tests used to keep apart by their fake's origin alone, but the OS hands a freed port
    out again: a test whose fake got the port of an earlier one found that test's pause
    (a 429's ``Retry-After``) still in the store, and parked before sending anything.
    """
    _redis_process.command("FLUSHALL")
    return _redis_process
