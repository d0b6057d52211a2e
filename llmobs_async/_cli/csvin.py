"""CSV in for ``records create``: which FILE is CSV, and its reader.

A FILE is CSV with ``--format csv`` or, without ``--format``, a name ending
``.csv``. Its rows become records as :class:`~llmobs_async.CsvSource` makes
them (``--input-columns`` and the other column options). ``--failed-out``
is JSON Lines either way (``jsonl.write_failed``): each failed record as the
JSON it became (so ``records create FAILED-OUT`` re-runs it without the
column options), marked ``_failure`` with the CSV line it starts on; each
malformed row as a mark alone keeping the row's CSV text under ``raw``, which
reads back as a malformed line again (never sent).
"""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Callable, Collection
from typing import IO

from .._bulk.csvsource import FIELD_SIZE_LIMIT, CsvSource
from ..errors import ValidationError
from .jsonl import JsonLinesSource, count_lines

_OPTIONS = {
    "input_columns": "--input-columns",
    "expected_output_columns": "--expected-output-columns",
    "metadata_columns": "--metadata-columns",
    "id_column": "--id-column",
    "delimiter": "--delimiter",
    "start_line": "--start-line",
    "file": "FILE",
}

Source = JsonLinesSource | CsvSource
Counter = Callable[[str, int], "int | None"]


def add_options(parser: argparse.ArgumentParser) -> None:
    """The CSV options of ``records create``."""
    group = parser.add_argument_group(
        "CSV input", "FILE is CSV with a header row if its name ends .csv or with --format csv"
    )
    group.add_argument("--format", choices=("jsonl", "csv"), help="FILE's format (by its name)")
    for option, what in (
        ("--input-columns", "the columns of each record's input (required for CSV)"),
        ("--expected-output-columns", "the columns of its expected_output"),
        ("--metadata-columns", "the columns of its metadata"),
    ):
        group.add_argument(option, metavar="A,B", help=f"{what}, comma-separated")
    group.add_argument("--id-column", metavar="NAME", help="the column of each record's id")
    group.add_argument("--delimiter", default=",", help="the field separator (,)")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",")) if value else ()


def open_source(
    args: argparse.Namespace, stream: IO[bytes], drop: Collection[str]
) -> tuple[Source, Counter]:
    """FILE's reader and its record counter (for the progress bar)."""
    fmt = getattr(args, "format", None)
    if fmt == "csv" or (fmt is None and args.file.lower().endswith(".csv")):
        if not args.input_columns:
            raise ValidationError("--input-columns", "is required for a CSV file")
        try:
            source = CsvSource(
                stream,
                input_columns=_split(args.input_columns),
                expected_output_columns=_split(args.expected_output_columns),
                metadata_columns=_split(args.metadata_columns),
                id_column=args.id_column or None,
                delimiter=args.delimiter,
                start_line=args.start_line,
            )
        except ValidationError as exc:
            raise ValidationError(_OPTIONS.get(exc.field, exc.field), exc.reason) from None
        return source, _count_records(args.delimiter)
    for name in ("input_columns", "expected_output_columns", "metadata_columns", "id_column"):
        if getattr(args, name, None):
            raise ValidationError(_OPTIONS[name], "applies to CSV input only (--format csv)")
    return JsonLinesSource(stream, start=args.start_line, drop=drop), count_lines


def _count_records(delimiter: str) -> Counter:
    def count(path: str, start: int) -> int | None:
        if path == "-" or not os.path.isfile(path):
            return None
        old = csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
        try:
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                reader = csv.reader(f, delimiter=delimiter)
                rows = 0
                try:
                    for row in reader:
                        rows += bool(row) and reader.line_num >= start
                except csv.Error:
                    return None  # the run reports it; the bar goes without a total
                return max(rows - (start <= 1), 0)  # less the header
        finally:
            csv.field_size_limit(old)

    return count
