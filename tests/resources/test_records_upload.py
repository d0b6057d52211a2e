"""``client.records.upload_csv``: a CSV file through the upload endpoint, streamed."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from llmobs_async import LLMObsClient
from llmobs_async._bulk.upload import load_answer
from llmobs_async.errors import UploadError, ValidationError
from llmobs_async.testing import FakeLLMObsServer

from ..conftest import Seeded

CSV = (
    b"\xef\xbb\xbfquestion,answer,source,rid\r\n"
    b'"What is\r\nthe capital?",Boston,atlas,r-1\r\n'
    b"only,three,fields\r\n"
    b'"a, b and ""c""",abc,notes,\r\n'
)
COLUMNS: dict[str, Any] = {
    "input_columns": ["question"],
    "expected_output_columns": ["answer"],
    "metadata_columns": ["source"],
    "id_column": "rid",
}


def _uploads(fake: FakeLLMObsServer) -> list[bytes]:
    return [r.body for r in fake.requests_to("/records/upload")]


async def test_a_csv_file_is_streamed_in_the_api_upload_format(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(CSV)
    did = seeded.dataset_id
    before = fake.datasets[did].version
    result = await client.records.upload_csv(
        seeded.project_id, did, path, tags=["src:csv"], **COLUMNS
    )
    assert (result.sent, result.records_created, result.attempts) == (2, 2, 1)
    assert [(n, why) for n, why, _ in result.malformed] == [(4, "has 3 fields; the header has 4")]
    stored = fake.records(did)
    assert stored["r-1"]["input"] == {"question": "What is\r\nthe capital?"}
    assert stored["r-1"]["expected_output"] == {"answer": "Boston"}
    assert stored["r-1"]["metadata"] == {"source": "atlas"} and stored["r-1"]["tags"] == ["src:csv"]
    [other] = [r for r in stored.values() if r["input"] == {"question": 'a, b and "c"'}]
    assert other["id"] != ""  # an empty id cell: the API gives the id
    assert fake.datasets[did].version == before + 1
    [request] = fake.requests_to("/records/upload")
    assert request.url_path.endswith(f"/v2/{seeded.project_id}/datasets/{did}/records/upload")
    assert request.query == {"deduplicate": ["true"], "tags": ["src:csv"]}
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    # Streamed: sent in chunks as it is written, so no length is known up front.
    assert request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in request.headers
    assert b'name="file"' in request.body and b"Content-Type: text/csv" in request.body
    assert b"input,expected_output,metadata,id\r\n" in request.body
    assert b"only" not in request.body  # the malformed row is never sent


async def test_a_retried_upload_re_sends_the_whole_file_and_adds_nothing_twice(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.inject(status=503, times=1, match=lambda r: r.url_path.endswith("/records/upload"))
    stream = io.BytesIO(b"junk before\n" + CSV)
    stream.seek(len(b"junk before\n"))  # a stream is read (and re-read) from where it stands
    result = await client.records.upload_csv(
        seeded.project_id, seeded.dataset_id, stream, **COLUMNS
    )
    assert (result.attempts, result.sent, result.records_created) == (2, 2, 2)
    first, second = (body.replace(body.split(b"\r\n", 1)[0], b"--B") for body in _uploads(fake))
    assert first == second and b"Boston" in first  # but the multipart boundary
    assert len(fake.records(seeded.dataset_id)) == 12
    assert not stream.closed

    again = await client.records.upload_csv(
        seeded.project_id, seeded.dataset_id, io.BytesIO(CSV), **COLUMNS
    )
    assert again.records_created == 0 and len(fake.records(seeded.dataset_id)) == 12


async def test_upload_options_are_checked_before_anything_is_sent(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    ids = (seeded.project_id, seeded.dataset_id)
    with pytest.raises(ValidationError) as caught:
        await client.records.upload_csv(*ids, io.BytesIO(CSV), **{**COLUMNS, "id_column": "x"})
    assert caught.value.field == "id_column"

    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False  # as stdin or a socket: a retry could not read it again

    with pytest.raises(ValidationError) as caught:
        await client.records.upload_csv(*ids, Pipe(CSV), input_columns=["question"])
    assert caught.value.field == "file" and "seekable" in caught.value.reason
    with pytest.raises(ValidationError) as caught:
        await client.records.upload_csv(*ids, io.BytesIO(CSV), tags="a:b", **COLUMNS)
    assert caught.value.field == "tags"
    assert fake.requests == []


async def test_an_error_event_raises_upload_error(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    events = (
        'event: progress\ndata: {"records_processed": 1000}\n\n'
        'event: error\ndata: {"message": "row 1204: input is required"}\n\n'
    )
    fake.inject(status=200, body=events, headers={"Content-Type": "text/event-stream"})
    with pytest.raises(UploadError, match="row 1204: input is required"):
        await client.records.upload_csv(
            seeded.project_id, seeded.dataset_id, io.BytesIO(CSV), **COLUMNS
        )


def test_the_answers_of_the_upload_endpoint_are_read() -> None:
    stream = b'event: progress\r\ndata: {"records_processed": 5}\r\n\r\nevent: completed\r\n'
    stream += b'data: {"records_created": 5}\r\n\r\n'
    assert load_answer(stream) == (5, None, None)
    # The v1 alias ddtrace uses answers the new dataset version.
    version = {
        "data": {
            "id": "v-1",
            "type": "dataset_version",
            "attributes": {"dataset_id": "d", "last_used": None, "version_number": 3},
        }
    }
    assert load_answer(json.dumps(version).encode()) == (None, 3, None)
    assert load_answer(b"") == (None, None, None)
