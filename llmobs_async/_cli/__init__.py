"""The ``llmobs-async`` command line: the dataset and experiment workflow from the shell.

Exit codes: 0 everything applied, 1 something failed, 2 usage or configuration
error, 130 interrupted. Credentials come from DD_API_KEY and DD_APP_KEY only
(never from arguments, which end up in shell history), and are never printed.

``parser`` holds the grammar (``runparser`` that of the runner's
commands); the commands live in ``commands`` (single calls, the fake, the
demo), ``workflow`` (datasets, experiments), ``pull`` (``records list``),
``records`` (the bulk ``records update/create``), ``experiments``
(``experiments run/resume``, with ``callables`` importing the task and
evaluators, ``tally`` counting their values and ``again`` the command lines
a run prints to type next), ``sharded`` (``experiments create/summarize``,
the ends of a sharded run) and ``compare``.
Nothing imports this module but the console script.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from ..errors import LLMObsError, ValidationError
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, cli_message, configure_logging
from .parser import build

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build().parse_args(argv)
    configure_logging(getattr(args, "verbose", 0))
    try:
        code: int = asyncio.run(args.run(args))
    except ValidationError as exc:
        message = cli_message(exc, getattr(args, "cli_names", None))
        print(f"llmobs-async: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except LLMObsError as exc:
        print(f"llmobs-async: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `llmobs-async ... | head`: the reader has had enough, which is no error.
        # Point stdout at nothing so the interpreter's final flush does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
