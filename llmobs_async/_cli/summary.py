"""The end of a bulk run (``records update``, ``create``): the counts, the failures by cause.

Causes are grouped (status and title, an invalid field, a malformed line, not
sent) with a count and the first few records, so an error that refused a
whole batch is never hidden behind a list of malformed lines. ``-v`` adds
every failed line (a short list is always shown in full).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

import attrs

from .._bulk.results import BulkFailure, BulkInterruptedError, BulkResult
from ..errors import APIStatusError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator

_EXAMPLES = 3
_SHOWN_CAUSES = 12
_SHOWN_LINES = 10  # up to this many failed lines are listed one by one


class _Lines(Protocol):
    malformed: list[tuple[int, str, bytes]]

    def line_of(self, index: int) -> int: ...


@attrs.define
class _Cause:
    text: str
    rank: int  # 0: the API refused; 1: invalid records; 2: malformed lines; 3: not sent
    detail: str = ""
    count: int = 0
    whole_batch: bool = False
    examples: list[str] = attrs.field(factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(example)

    def describe(self) -> str:
        what = "record" if self.rank != 2 else "line"
        text = f"{self.count:,} {what}{'s' if self.count != 1 else ''}: {self.text}"
        if self.whole_batch:
            text += " [whole batch refused]"
        if self.detail:
            text += f" ({self.detail})"
        more = ", ..." if self.count > len(self.examples) else ""
        return f"{text}; {', '.join(self.examples)}{more}"


def _cause_of(failure: BulkFailure) -> tuple[str, int, str]:
    error = failure.error
    if isinstance(error, BulkInterruptedError):
        return "not sent (interrupted)", 3, ""
    if not failure.sent:
        return f"not sent: the job stopped on {_status_title(error)}", 3, ""
    if isinstance(error, APIStatusError):
        detail = error.errors[0].detail if error.errors else ""
        return _status_title(error), 0, detail or ""
    if isinstance(error, ValidationError):
        field = error.field.partition("]")[2].lstrip(".")
        return f"invalid: {field or 'record'}: {error.reason[:120]}", 1, ""
    return type(error).__name__, 0, str(error)[:200]


def _status_title(error: BaseException) -> str:
    if isinstance(error, APIStatusError):
        title = error.errors[0].title if error.errors and error.errors[0].title else None
        return f"{error.status} {title or type(error).__name__}"
    return type(error).__name__


def _failed_lines(lines: _Lines, result: BulkResult) -> Iterator[tuple[int, str, str, _Cause]]:
    """Every failed line: its number, its example label, its own message, its cause."""
    causes: dict[str, _Cause] = {}

    def cause(text: str, rank: int, detail: str) -> _Cause:
        found = causes.get(text)
        if found is None:
            found = causes[text] = _Cause(text, rank, detail)
        elif found.detail != detail:
            found.detail = ""  # details differ (one per record): each line has its own
        return found

    for failure in result.failed:
        text, rank, detail = _cause_of(failure)
        group = cause(text, rank, detail)
        group.whole_batch |= failure.sent and len(failure.records) > 1
        for rid, position in zip(failure.record_ids, failure.positions, strict=True):
            line = lines.line_of(position)
            label = f"{rid} (line {line})" if rid is not None else f"line {line}"
            yield line, label, f"line {line}: {failure_text(failure, rid)}", group
    for number, reason, _ in lines.malformed:
        group = cause(f"malformed: {reason.partition(' (')[0]}", 2, "")
        yield number, f"line {number}", f"line {number}: {reason}", group


def failure_text(failure: BulkFailure, rid: str | None = None) -> str:
    """What went wrong with one record of ``failure`` (named by ``rid``, if given)."""
    cause = _cause_of(failure)[0]
    error = failure.error
    if isinstance(error, ValidationError):
        field = error.field.partition("]")[2].lstrip(".")
        return f"{field or 'record'}: {error.reason}"
    detail = error.errors[0].detail if isinstance(error, APIStatusError) and error.errors else None
    text = f"{cause}: {detail}" if detail else cause
    return f"{rid}: {text}" if rid is not None else text


def print_summary(
    lines: _Lines, result: BulkResult, elapsed: float, *, verbose: int, verb: str = "applied"
) -> None:
    """Print the failures by cause (and, with ``verbose``, every line) and the counts.

    ``verb`` is what became of a record that went through: ``applied``, ``created``.
    """
    every = sorted(_failed_lines(lines, result), key=lambda entry: entry[0])
    for _, label, _, group in every:
        group.add(label)  # in line order: the examples are the first lines
    causes = sorted({id(c): c for *_, c in every}.values(), key=lambda c: (c.rank, -c.count))
    err = sys.stderr
    if verbose or len(every) <= _SHOWN_LINES:
        for _, _, said, _ in every:
            print(f"llmobs-async: {said}", file=err)
    if len(every) > _SHOWN_LINES:
        hint = "" if verbose else " (-v lists every line)"
        print(f"llmobs-async: {len(every):,} lines not {verb}, by cause{hint}:", file=err)
        for group in causes[:_SHOWN_CAUSES]:
            print(f"  {group.describe()}", file=err)
        if len(causes) > _SHOWN_CAUSES:
            print(f"  ... and {len(causes) - _SHOWN_CAUSES} more causes", file=err)
    unsent = sum(len(f.records) for f in result.unsent)
    failed = result.failed_count - unsent + len(lines.malformed)
    total = result.submitted + len(lines.malformed)
    rate = result.applied / elapsed if elapsed > 0 else 0.0
    summary = (
        f"{verb} {result.applied:,} of {total:,} records in {elapsed:.1f}s "
        f"({rate:,.0f} records/s); {failed:,} failed; "
    )
    if unsent:
        summary += f"{unsent:,} not sent; "
    print(summary + f"{result.retries:,} retries")
