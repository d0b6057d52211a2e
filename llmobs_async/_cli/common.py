"""What every command shares: exit codes, the client from the environment, messages, Ctrl-C.

Credentials come from DD_API_KEY and DD_APP_KEY only (never from arguments,
which end up in shell history), and are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from .._client import LLMObsClient
from ..errors import ValidationError
from ..models import UNSET

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def make_client(args: argparse.Namespace) -> LLMObsClient:
    """The client the options and the environment describe (keys checked first)."""
    # Checked here so the message names the variable, not a Python argument.
    _check_key("DD_API_KEY", os.environ.get("DD_API_KEY"), "API key")
    app_name = "DD_APP_KEY" if os.environ.get("DD_APP_KEY") else "DD_APPLICATION_KEY"
    _check_key("DD_APP_KEY", os.environ.get(app_name), "application key", name=app_name)
    # With neither --site nor --base-url the client reads DD_LLMOBS_OVERRIDE_ORIGIN, then DD_SITE.
    return LLMObsClient(site=args.site, base_url=args.base_url, max_retries=args.max_retries)


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options ``names`` as keyword arguments: one not given is ``UNSET`` (left unchanged)."""
    return {name: UNSET if getattr(args, name) is None else getattr(args, name) for name in names}


def _check_key(field: str, value: str | None, what: str, *, name: str | None = None) -> None:
    if not value or not value.strip():
        raise ValidationError(field, f"is not set: export your Datadog {what}")
    if value != value.strip() or any(c in value for c in "\r\n\0"):
        # Typically a key pasted or read from a file with its newline.
        raise ValidationError(
            name or field, "has a line break, a NUL or whitespace around it (read from a file?)"
        )


# The library names its arguments; the command line speaks of options and variables.
CLI_NAMES = {
    "api_key": "DD_API_KEY",
    "app_key": "DD_APP_KEY",
    "base_url": "--base-url",
    "site": "--site",
    "batch_size": "--batch-size",
    "max_retries": "--max-retries",
    "dataset_id": "--dataset-id",
    "project_id": "--project-id",
    "experiment_id": "EXPERIMENT_ID",
    "status": "--status",
    "name": "--name",
    "description": "--description",
    "error": "--error",
    "metadata": "--metadata",
    "cursor": "--cursor",
    "page_size": "--page-size",
    "version": "--version",
}
_PYTHON_ARGUMENT = re.compile(r"\b(" + "|".join(CLI_NAMES) + r")=")


def cli_message(exc: ValidationError, names: Mapping[str, str] | None = None) -> str:
    """A ValidationError in command-line terms: ``--base-url: ...``, not ``base_url: ...``.

    ``names`` overrides the usual names for one command (``datasets create``
    takes its name as the positional NAME, not ``--name``).
    """
    table = {**CLI_NAMES, **(names or {})}
    head, sep, rest = exc.field.partition(".")
    field = table.get(head, head) + sep + rest
    reason = _PYTHON_ARGUMENT.sub(lambda m: table[m.group(1)], exc.reason)
    return f"{field}: {reason}" if field else reason


def configure_logging(verbose: int) -> None:
    """The CLI owns its output: the library's log shows only under -v."""
    library = logging.getLogger("llmobs_async")
    library.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("llmobs-async: %(message)s"))
    library.addHandler(handler)
    if not verbose:
        # Except one warning: the shared rate-limit store is down, so this process paces
        # alone at its share. Nothing else the command prints would tell the user.
        handler.setLevel(logging.WARNING)
        handler.addFilter(lambda record: record.module == "redis_store")
        return
    library.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)


def say(message: str) -> None:
    """One line for the user on stderr (stdout carries only data)."""
    sys.stderr.write(f"llmobs-async: {message}\n")
    sys.stderr.flush()


def open_input(path: str) -> IO[bytes]:
    """FILE of a command, or stdin for ``-``; a usage error naming FILE if it cannot be read."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ValidationError("FILE", f"cannot open {path!r}: {exc.strerror}") from None


def quoted(value: str) -> str:
    """``value`` as it must be typed in a shell."""
    return shlex.quote(value)


@contextlib.contextmanager
def on_ctrl_c(
    first: Callable[[], object], *, again: str | Callable[[], str] = "quitting at once"
) -> Iterator[None]:
    """Call ``first`` on the first Ctrl-C; quit at once (exit 130) on the second, saying ``again``.

    Installed on the running loop, so ``first`` runs between two steps of the
    command, never in the middle of writing a page or a summary. ``again``
    may be a function, for words known only by then.
    """
    count = 0

    def handler() -> None:
        nonlocal count
        count += 1
        if count == 1:
            first()
            return
        said = again() if callable(again) else again
        sys.stderr.write(f"\nllmobs-async: interrupted again: {said}\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C stays KeyboardInterrupt
        loop.add_signal_handler(signal.SIGINT, handler)
    try:
        yield
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
