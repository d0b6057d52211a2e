"""The upload endpoint: a CSV file's records in one streamed request (``records.upload_csv``).

The user's CSV is read with :class:`~llmobs_async.CsvSource` (the same
columns, the same rows set aside) and re-written on the fly in the API's
upload format: columns ``input``, ``expected_output``, ``metadata`` (and
``id``), each cell JSON, as ddtrace's ``dataset_bulk_upload`` writes it. The
body is streamed in 64 KB pieces, never held whole; a retry reads the file
again from the start, so the file must be a path or a seekable stream.

The answer has no per-record account: ``text/event-stream`` events
``progress``, ``completed`` (``records_created``) and ``error``
(``message``), or, on the v1 alias ddtrace uses, a ``dataset_version``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final

import aiohttp
import attrs

from .. import _routes
from .._transport import Transport
from ..errors import UploadError, ValidationError
from .csvsource import CsvFile, CsvSource, open_source

_PIECE: Final = 64 * 1024
_COLUMNS: Final = ("input", "expected_output", "metadata", "id")


@attrs.frozen
class CsvUploadResult:
    """What ``client.records.upload_csv`` did.

    The upload endpoint answers for the file, not for each record: a record it
    skipped (a duplicate) or refused is not named here.
    """

    sent: int
    """Records written into the upload (the rows that made records)."""
    records_created: int | None
    """Records the API says it created (its ``completed`` event), if it said."""
    dataset_version: int | None
    """The dataset version the upload made, when the answer names it."""
    malformed: tuple[tuple[int, str, bytes], ...]
    """``(line, reason, raw bytes)`` of each row set aside and not sent."""
    attempts: int
    """Requests made: more than one if the upload was retried (re-sent whole)."""


class _Upload:
    """The body of each attempt: a fresh read of the file, re-written as the API's CSV."""

    def __init__(self, first: CsvSource, reopen: Callable[[], CsvSource]) -> None:
        self.source = first
        self._reopen = reopen
        self.attempts = 0
        self.sent = 0

    def payload(self) -> aiohttp.Payload:
        self.attempts += 1
        if self.attempts > 1:
            self.source.close()
            self.source = self._reopen()
            self.sent = 0
        writer = aiohttp.MultipartWriter("form-data")
        part = writer.append_payload(
            aiohttp.AsyncIterablePayload(self._pieces(self.source), content_type="text/csv")
        )
        part.set_content_disposition("form-data", name="file", filename="records.csv")
        return writer

    async def _pieces(self, source: CsvSource) -> AsyncIterator[bytes]:
        out = io.StringIO()
        write = csv.writer(out, lineterminator="\r\n").writerow
        with_id = source.id_column is not None
        write(_COLUMNS if with_id else _COLUMNS[:3])
        dumps = json.dumps  # ASCII-only cells, as ddtrace writes them
        async for record in source:
            row = [dumps(record["input"]), dumps(record["expected_output"])]
            row.append(dumps(record["metadata"]))
            if with_id:
                row.append(record.get("id", ""))
            write(row)
            self.sent += 1
            if out.tell() >= _PIECE:
                yield out.getvalue().encode()
                out.seek(0)
                out.truncate()
        yield out.getvalue().encode()


def _reopener(file: CsvFile, options: dict[str, Any]) -> Callable[[], CsvSource]:
    if not isinstance(file, str) and not hasattr(file, "__fspath__"):
        seekable = getattr(file, "seekable", None)
        if seekable is None or not seekable():
            raise ValidationError(
                "file", "must be a path or a seekable file: a retried upload reads it again"
            )
        start = file.tell()

        def rewound() -> CsvSource:
            file.seek(start)
            return CsvSource(file, **options)

        return rewound
    return lambda: CsvSource(file, **options)


def load_answer(body: bytes) -> tuple[int | None, int | None, str | None]:
    """``(records_created, dataset_version, error message)`` from the upload's answer."""
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        attributes = json.loads(text)["data"]["attributes"]
        version = attributes.get("version_number")
        return None, version if isinstance(version, int) else None, None
    created: int | None = None
    error: str | None = None
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = "message", []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        if not data:
            continue
        try:
            doc = json.loads("\n".join(data))
        except ValueError:
            doc = "\n".join(data)
        if event == "completed" and isinstance(doc, dict):
            count = doc.get("records_created")
            created = count if isinstance(count, int) else created
        elif event == "error":
            error = str(doc.get("message", doc) if isinstance(doc, dict) else doc)
    return created, None, error


async def upload_csv(
    transport: Transport,
    project_id: str,
    dataset_id: str,
    file: CsvFile,
    *,
    deduplicate: bool,
    tags: Sequence[str],
    **options: Any,
) -> CsvUploadResult:
    """Stream ``file`` to the upload endpoint; see ``Records.upload_csv``."""
    route = _routes.UPLOAD_RECORDS.compile(project_id=project_id, dataset_id=dataset_id)
    if not isinstance(deduplicate, bool):
        raise ValidationError("deduplicate", f"must be true or false; got {deduplicate!r}")
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise ValidationError("tags", f"must be a list of non-empty strings; got {tags!r}")
    if isinstance(file, CsvSource):
        raise ValidationError("file", "must be a path or a seekable file, not a CsvSource")
    reopen = _reopener(file, options)
    upload = _Upload(await open_source(file, **options), reopen)
    query = [("deduplicate", "true" if deduplicate else "false")]
    query += [("tags", tag) for tag in tags]
    try:
        created, version, error = await transport.request(
            route, load_answer, body=upload.payload, query=query
        )
    finally:
        upload.source.close()
    if error is not None:
        raise UploadError(f"the upload failed after {upload.sent} records were sent: {error}")
    return CsvUploadResult(
        sent=upload.sent,
        records_created=created,
        dataset_version=version,
        malformed=tuple(upload.source.malformed),
        attempts=upload.attempts,
    )
