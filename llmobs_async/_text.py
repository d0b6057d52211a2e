"""Text that is safe to put in a message or a log line."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` on one line, control characters escaped.

    Server-sent text and ids end up in messages and log lines; a CR or LF in
    them must not be able to start a forged line.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
