"""``client.records.create_from_csv`` and ``CsvSource``: CSV rows in, records out, by line."""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest

from llmobs_async import CsvSource, LLMObsClient
from llmobs_async.errors import ValidationError
from llmobs_async.testing import FakeLLMObsServer

from ..conftest import Seeded

# Line 1 the header (after a BOM), line 2-3 one record with a quoted two-line
# cell, line 4 a quoted delimiter and an escaped quote, line 5 blank, line 6
# too few fields, line 7 too many, line 8-10 one record spanning three lines.
MESSY = (
    b"\xef\xbb\xbfquestion,answer,source,rid\r\n"
    b'"What is\r\nthe capital?",Boston,atlas,r-1\r\n'
    b'"a, b and ""c""",abc,notes,r-2\r\n'
    b"\r\n"
    b"only,three,fields\r\n"
    b"one,two,three,four,five\r\n"
    b'"three\nline\nquestion",yes,notes,\r\n'
)


def _source(data: bytes, **options: object) -> CsvSource:
    options.setdefault("input_columns", ["question"])
    options.setdefault("expected_output_columns", ["answer"])
    options.setdefault("metadata_columns", ["source"])
    options.setdefault("id_column", "rid")
    return CsvSource(io.BytesIO(data), **options)  # type: ignore[arg-type]


async def test_rows_become_records_with_their_lines_and_bad_rows_are_set_aside(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    source = _source(MESSY)
    assert source.header == ("question", "answer", "source", "rid")  # the BOM is not a name
    result = await client.records.create_from_csv(seeded.project_id, seeded.dataset_id, source)
    assert (result.ok, result.applied, result.submitted) == (True, 3, 3)
    stored = fake.records(seeded.dataset_id)
    assert stored["r-1"]["input"] == {"question": "What is\r\nthe capital?"}
    assert stored["r-1"]["expected_output"] == {"answer": "Boston"}
    assert stored["r-1"]["metadata"] == {"source": "atlas"}
    assert stored["r-2"]["input"] == {"question": 'a, b and "c"'}
    third = [r for r in stored.values() if r["input"] == {"question": "three\nline\nquestion"}]
    assert len(third) == 1  # an empty id cell: the API gives the id
    assert [source.line_of(i) for i in range(3)] == [2, 4, 8]
    assert [(n, reason) for n, reason, _ in source.malformed] == [
        (6, "has 3 fields; the header has 4"),
        (7, "has 5 fields; the header has 4"),
    ]
    assert source.malformed[0][2] == b"only,three,fields"
    assert source.skipped == [5, 6, 7]
    assert source.last_line == 10
    sent = b"".join(r.body for r in fake.requests_to("/batch_update"))
    assert b"only" not in sent and b"five" not in sent


async def test_a_missing_column_is_refused_by_name_before_anything_is_sent(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(MESSY)
    options: tuple[tuple[str, Any], ...] = (
        ("input_columns", ["question", "prompt"]),
        ("expected_output_columns", ["gold"]),
        ("metadata_columns", ["nope"]),
        ("id_column", "uid"),
    )
    for option, value in options:
        with pytest.raises(ValidationError) as caught:
            await client.records.create_from_csv(
                seeded.project_id,
                seeded.dataset_id,
                path,
                **{"input_columns": ["question"], option: value},
            )
        assert caught.value.field == option
        assert (
            "not in the CSV header" in caught.value.reason and "'question'" in caught.value.reason
        )
    with pytest.raises(ValidationError) as caught:
        await client.records.create_from_csv(seeded.project_id, seeded.dataset_id, path)
    assert caught.value.field == "input_columns"
    with pytest.raises(ValidationError) as caught:
        await client.records.create_from_csv(
            seeded.project_id, seeded.dataset_id, io.BytesIO(b""), input_columns=["q"]
        )
    assert caught.value.field == "file"
    assert fake.requests == []


async def test_a_record_the_api_refuses_is_reported_with_the_line_it_starts_on(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.reject_record("bad")
    rows = [f'"q\n{i}",a{i},m,{"bad" if i == 6 else f"id-{i}"}\r\n' for i in range(10)]
    source = _source(b"question,answer,source,rid\r\n" + "".join(rows).encode())
    result = await client.records.create_from_csv(
        seeded.project_id, seeded.dataset_id, source, deduplicate=False
    )
    assert (result.applied, result.submitted) == (9, 10)
    [failure] = result.failed
    assert failure.record_ids == ("bad",)
    assert [source.line_of(p) for p in failure.positions] == [2 + 2 * 6]
    assert "bad" not in fake.records(seeded.dataset_id)


async def test_a_semicolon_file_with_resume_line_and_a_text_stream(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    text = io.StringIO("\ufeffq;a\n1;x\n2;y\n3;z\n")
    result = await client.records.create_from_csv(
        seeded.project_id,
        seeded.dataset_id,
        text,
        input_columns=["q"],
        expected_output_columns=["a"],
        delimiter=";",
        start_line=3,
    )
    assert result.applied == 2
    inputs = sorted(
        r["input"]["q"] for r in fake.records(seeded.dataset_id).values() if "q" in r["input"]
    )
    assert inputs == ["2", "3"]
    assert not text.closed  # the caller's stream stays theirs


async def test_reading_is_in_chunks_off_the_event_loop() -> None:
    data = b"q,a\n" + b"".join(b"question %d,answer\n" % i for i in range(20_000))
    source = CsvSource(io.BytesIO(data), input_columns=["q"], chunk_rows=500)
    turns = 0
    done = False

    async def ticker() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    count = 0
    async for _ in source:  # nothing in this loop awaits: only the reader lets the loop run
        count += 1
    done = True
    await task
    assert count == 20_000
    assert turns >= 20_000 // 500 - 1  # at least one loop turn a chunk


async def test_a_large_file_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = [
        b'r%d,"What is %d times %d, exactly?",%d,"row %d of the big file"\n' % (i, i, i, i * i, i)
        for i in range(200_000)
    ]
    header = b"id,question,answer,notes\n"
    path.write_bytes(header + b"".join(rows))
    ends = list(itertools.accumulate((len(row) for row in rows), initial=len(header)))
    size = ends[-1]
    ahead = 0  # the most bytes read past the record just passed on
    with path.open("rb") as f:
        source = CsvSource(
            f,
            input_columns=["question"],
            expected_output_columns=["answer"],
            metadata_columns=["notes"],
            id_column="id",
        )
        count = 0
        async for record in source:
            if count % 500 == 0:
                ahead = max(ahead, f.tell() - ends[count + 1])
            count += 1
            assert record["id"] == f"r{count - 1}"
    assert count == 200_000 and source.line_of(199_999) == 200_001
    assert size > 10_000_000
    # One chunk (1000 rows, ~90 KB) and the text layer's buffer: never the file.
    assert 0 < ahead < 500_000, (ahead, size)


def test_plain_iteration_and_read_once() -> None:
    source = _source(MESSY)
    records = list(source)
    assert [r.get("id") for r in records] == ["r-1", "r-2", None]
    with pytest.raises(RuntimeError, match="read once"):
        list(source)


async def test_a_reader_cancelled_mid_chunk_closes_after_the_chunk_and_leaves_the_stream() -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow(io.BytesIO):
        """A caller's stream whose second read blocks until released (a slow disk or pipe)."""

        reads = 0

        def read1(self, size: int = -1) -> bytes:
            self.reads += 1
            if self.reads == 2:
                entered.set()
                release.wait(30)
            return super().read1(min(size, 64))

    stream = Slow(b"q\n" + b"".join(b"row %d\n" % i for i in range(2000)))
    source = CsvSource(stream, input_columns=["q"], chunk_rows=1)
    got: list[object] = []

    async def consume() -> None:
        async for record in source:
            got.append(record)

    task = asyncio.create_task(consume())
    await asyncio.to_thread(entered.wait, 30)  # the worker thread is inside a read
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source._busy and not source._closed  # close() waits for the chunk
    release.set()
    await asyncio.get_running_loop().shutdown_default_executor()  # the chunk has ended
    assert source._closed and not stream.closed  # detached from, not closed: the caller's
    assert stream.read(3) and got  # still readable; records were passed on before
