"""CSV in: records built from chosen columns, read lazily, each with the line it starts on.

:class:`CsvSource` does what ddtrace's ``LLMObs.create_dataset_from_csv``
does to a row (``input``, ``expected_output`` and ``metadata`` are objects of
the chosen columns' cells; ``id`` from an id column), without reading the
file into memory: rows are parsed in chunks, off the event loop when read
with ``async for``. A row that cannot be a record (a wrong number of fields,
an unclosed quote, bytes that are not UTF-8, a field over 10 MB) is set aside
with its line number and reason and never sent, like the command line's JSON
Lines reader.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import io
import os
import threading
from array import array
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import IO, Any, Final, TypeAlias, cast

from ..errors import ValidationError

FIELD_SIZE_LIMIT: Final = 10 * 1024 * 1024
"""The largest field read, as ddtrace's ``create_dataset_from_csv`` allows (10 MB)."""

CsvFile: TypeAlias = "str | os.PathLike[str] | IO[bytes] | IO[str]"

# What the reading thread hands to the consumer, per row: (first line, last line,
# the record / a reason it is malformed / None for a blank line, the raw text if malformed).
_Entry: TypeAlias = tuple[int, int, "dict[str, Any] | str | None", bytes]
_LIMIT_LOCK = threading.Lock()  # csv.field_size_limit is process-wide


def _names(argument: str, value: object, *, required: bool = False) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValidationError(argument, f"must be a list of column names; got {value!r}")
    if required and not value:
        raise ValidationError(argument, "must name at least one column")
    for name in value:
        if not isinstance(name, str) or not name:
            raise ValidationError(argument, f"must hold non-empty column names; got {name!r}")
    return tuple(value)


class CsvSource:
    """Records read lazily from a CSV file with a header row; bad rows set aside.

    Each row becomes ``{"input": {col: cell, ...}, "expected_output": {...},
    "metadata": {...}}`` over ``input_columns``, ``expected_output_columns``
    and ``metadata_columns`` (cells are strings; the two optional objects are
    ``{}`` when no column is named, as ddtrace sends), plus ``"id"`` from
    ``id_column`` when its cell is not empty. The header is read (and every
    named column checked) when the source is made, so a missing column is a
    :class:`~llmobs_async.errors.ValidationError` before anything is sent.

    ``file`` is a path or an open file (bytes or text); a path is opened and
    closed here, an open file is left open. A UTF-8 byte-order mark is
    ignored. Records starting before line ``start_line`` are parsed but not
    passed on (to resume an interrupted run).

    Iterate with ``async for`` (rows parsed ``chunk_rows`` at a time in a
    worker thread, so the event loop is never held for long) or plain
    ``for``; either way, once. As it goes it keeps :attr:`last_line`,
    :attr:`skipped` and :attr:`malformed`, and :meth:`line_of` maps a bulk
    result's ``positions`` to the lines the records start on.
    """

    def __init__(
        self,
        file: CsvFile,
        *,
        input_columns: Sequence[str],
        expected_output_columns: Sequence[str] = (),
        metadata_columns: Sequence[str] = (),
        id_column: str | None = None,
        delimiter: str = ",",
        start_line: int = 1,
        chunk_rows: int = 1000,
    ) -> None:
        inputs = _names("input_columns", input_columns, required=True)
        outputs = _names("expected_output_columns", expected_output_columns)
        metas = _names("metadata_columns", metadata_columns)
        if id_column is not None and (not isinstance(id_column, str) or not id_column):
            raise ValidationError("id_column", f"must be a column name; got {id_column!r}")
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValidationError("delimiter", f"must be one character; got {delimiter!r}")
        for argument, value, low in (("start_line", start_line, 1), ("chunk_rows", chunk_rows, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValidationError(argument, f"must be an integer >= {low}; got {value!r}")
        # A read in a worker thread may still be under way when the reader is
        # cancelled: closing then waits for the end of that chunk (see close()).
        self._state = threading.Lock()
        self._busy = self._closing = self._closed = False
        self._owned: bool | None = False
        self._text, self._owned = _open_text(file)
        self._line = 0  # physical lines read so far
        self._raw: list[str] = []  # the lines of the row being parsed
        self._reader = csv.reader(self._lines(), delimiter=delimiter, strict=True)
        try:
            header = self._header()
            where = {name: i for i, name in enumerate(header)}  # the last of a repeated name
            for argument, names in (
                ("input_columns", inputs),
                ("expected_output_columns", outputs),
                ("metadata_columns", metas),
                ("id_column", (id_column,) if id_column else ()),
            ):
                missing = [n for n in names if n not in where]
                if missing:
                    shown = ", ".join(map(repr, header[:20])) + ", ..." * (len(header) > 20)
                    raise ValidationError(
                        argument,
                        f"column {', '.join(map(repr, missing))} not in the CSV header ({shown})",
                    )
        except BaseException:
            self.close()
            raise
        self.header: tuple[str, ...] = tuple(header)
        """The column names of the header row."""
        self._fields = len(header)
        self._columns = tuple(
            tuple((n, where[n]) for n in names) for names in (inputs, outputs, metas)
        )
        self._id = where[id_column] if id_column else None
        self.id_column = id_column
        """The column of each record's id, if any."""
        self._chunk_rows = chunk_rows
        self.start = start_line
        self.last_line = max(start_line - 1, self._line)
        """The last line read and passed on: reading resumes at ``last_line + 1``."""
        self.skipped: list[int] = []
        """First lines of the rows not passed on (blank or malformed)."""
        self.malformed: list[tuple[int, str, bytes]] = []
        """``(line, reason, raw bytes)`` of each row set aside, in file order."""
        self._passed = 0
        self._next_line = -1  # where the next record starts if it follows the last on one line
        # line_of's map: (index, line) wherever a record is not on the line after the
        # previous one's first; 16 bytes only per record that spans lines or follows skips.
        self._at_index = array("q")
        self._at_line = array("q")
        self._used = False

    # --- reading ----------------------------------------------------------------

    def _lines(self) -> Iterator[str]:
        raw = self._raw
        for line in self._text:
            self._line += 1
            raw.append(line)
            yield line

    def _header(self) -> list[str]:
        with _LIMIT_LOCK:
            old = csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
            try:
                header = next(self._reader, None)
            except csv.Error as exc:
                raise ValidationError("file", f"the header row is not valid CSV ({exc})") from None
            finally:
                csv.field_size_limit(old)
        if not header:
            raise ValidationError("file", "has no header row (the CSV is empty)")
        if header[0].startswith("\ufeff"):  # a text stream opened without utf-8-sig
            header[0] = header[0][1:]
        self._raw.clear()
        return header

    def _read_chunk(self) -> list[_Entry]:
        """Parse up to ``chunk_rows`` rows (the reading thread's work); none once closed."""
        with self._state:
            if self._closed:
                return []
            self._busy = True
        try:
            return self._parse_chunk()
        finally:
            with self._state:
                self._busy = False
                closing = self._closing
            if closing:
                self._close_now()

    def _parse_chunk(self) -> list[_Entry]:
        entries: list[_Entry] = []
        reader, raw, fields, start = self._reader, self._raw, self._fields, self.start
        inputs, outputs, metas = self._columns
        rid = self._id
        with _LIMIT_LOCK:
            old = csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
            try:
                while len(entries) < self._chunk_rows:
                    first = self._line + 1
                    row: list[str] | None = None
                    reason: str | None = None
                    try:
                        row = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        reason = f"not valid CSV ({exc})"
                    if first < start:
                        raw.clear()
                        continue
                    value: dict[str, Any] | str | None = None
                    if row is None or (row and len(row) != fields):
                        if reason is None and row is not None:
                            reason = f"has {len(row)} fields; the header has {fields}"
                        value = reason
                    elif row:
                        text = "".join(row)
                        if not text.isascii() and not _is_utf8(text):
                            value = "not valid UTF-8"
                        else:
                            value = {
                                "input": {n: row[i] for n, i in inputs},
                                "expected_output": {n: row[i] for n, i in outputs},
                                "metadata": {n: row[i] for n, i in metas},
                            }
                            if rid is not None and row[rid]:
                                value["id"] = row[rid]
                    kept = _raw_bytes(raw) if isinstance(value, str) else b""
                    raw.clear()
                    entries.append((first, self._line, value, kept))
            finally:
                csv.field_size_limit(old)
        return entries

    def _take(self, entry: _Entry) -> dict[str, Any] | None:
        """Account for one parsed row (on the consumer's side); the record, if any."""
        first, last, value, raw = entry
        self.last_line = last
        if value is None or isinstance(value, str):
            self.skipped.append(first)
            if value is not None:
                self.malformed.append((first, value, raw))
            return None
        index = self._passed
        self._passed = index + 1
        if first != self._next_line:
            self._at_index.append(index)
            self._at_line.append(first)
        self._next_line = first + 1
        return value

    def _begin(self) -> None:
        if self._used:
            raise RuntimeError("a CsvSource is read once; make another to read the file again")
        self._used = True

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._begin()
        try:
            while chunk := self._read_chunk():
                for entry in chunk:
                    value = self._take(entry)
                    if value is not None:
                        yield value
        finally:
            self.close()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        self._begin()
        try:
            while chunk := await asyncio.to_thread(self._read_chunk):
                for entry in chunk:
                    value = self._take(entry)
                    if value is not None:
                        yield value
        finally:
            self.close()

    # --- lines -----------------------------------------------------------------

    def line_of(self, index: int) -> int:
        """The line the ``index``-th record passed on (0-based) starts on."""
        k = bisect.bisect_right(self._at_index, index) - 1
        if k < 0:
            raise IndexError(f"no record {index} was read")
        return self._at_line[k] + (index - self._at_index[k])

    def close(self) -> None:
        """Close the file if this source opened it (a path); idempotent.

        A stream the caller passed stays open. If a chunk is being read in a
        worker thread (the reader was cancelled meanwhile), the file is closed
        when that chunk is done.
        """
        with self._state:
            if self._busy:
                self._closing = True
                return
        self._close_now()

    def _close_now(self) -> None:
        with self._state:
            self._closed = True
        owned, self._owned = self._owned, False
        if owned:
            self._text.close()
        elif owned is None and not self._text.closed:
            self._text.detach()  # type: ignore[attr-defined]  # our TextIOWrapper

    def __enter__(self) -> CsvSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_text(file: CsvFile) -> tuple[IO[str], bool | None]:
    """A text stream over ``file`` (csv's newline handling; bad bytes kept to report).

    The flag: True if this opened the file, None if it wraps the caller's binary
    stream (to be detached, not closed: the caller's stream stays open).
    """
    if isinstance(file, str | os.PathLike):
        try:
            binary: IO[bytes] = open(file, "rb")  # noqa: SIM115  # closed by CsvSource.close
        except OSError as exc:
            reason = f"cannot open {os.fspath(file)!r}: {exc.strerror}"
            raise ValidationError("file", reason) from None
        return _wrap(binary), True
    if isinstance(file, io.TextIOBase):
        return cast("IO[str]", file), False
    if hasattr(file, "read"):
        return _wrap(cast("IO[bytes]", file)), None  # not text: bytes
    raise ValidationError("file", f"must be a path or an open file; got {type(file).__name__}")


def _wrap(binary: IO[bytes]) -> IO[str]:
    return io.TextIOWrapper(
        binary,
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a byte that was not UTF-8, kept as a lone surrogate
        return False
    return True


def _raw_bytes(lines: list[str]) -> bytes:
    text = "".join(lines).rstrip("\r\n")
    try:
        return text.encode("utf-8", "surrogateescape")  # the bytes as they were in the file
    except UnicodeEncodeError:  # a lone surrogate from a caller's text stream
        return text.encode("utf-8", "backslashreplace")


async def open_source(file: CsvFile | CsvSource, **options: Any) -> CsvSource:
    """``file`` as a :class:`CsvSource`, its header read off the event loop.

    A ``CsvSource`` is taken as it is; then no column options may be given.
    """
    if isinstance(file, CsvSource):
        given = [name for name, value in options.items() if value not in (None, (), ",", 1)]
        if given:
            raise ValidationError(given[0], "is set on the CsvSource already; give it there")
        return file
    return await asyncio.to_thread(lambda: CsvSource(file, **options))
