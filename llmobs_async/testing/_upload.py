"""``POST .../v2/{project_id}/datasets/{dataset_id}/records/upload``: a CSV file of records.

As the live API: a ``multipart/form-data`` body whose part ``file`` is a CSV
with an ``input`` column and any of ``expected_output``, ``metadata``,
``id``, ``tags`` (cells are JSON; a cell that is not is taken as a string);
query ``deduplicate`` (default false) and repeated ``tags``. The answer is
``text/event-stream``: ``progress`` events, then ``completed``
(``records_created``), or ``error`` (``message``) with nothing stored. One
new dataset version when anything was created.
"""

from __future__ import annotations

import csv
import email.parser
import email.policy
import io
import json
from typing import TYPE_CHECKING, Any, Final

import attrs
from multidict import MultiMapping

from ._records import insert
from ._wire import Reply, bad_parameter, bad_request

if TYPE_CHECKING:
    from ._store import FakeStore

_PROGRESS_EVERY: Final = 1000
EVENT_STREAM: Final = "text/event-stream"


@attrs.frozen
class Multipart:
    """A request body that is not JSON: its bytes and its Content-Type (with the boundary)."""

    body: bytes
    content_type: str


def _file_part(form: Any) -> bytes:
    if not isinstance(form, Multipart) or not form.content_type.startswith("multipart/form-data"):
        raise bad_request("expected a multipart/form-data body with a part named file")
    head = f"Content-Type: {form.content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + form.body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    raise bad_request("the form has no part named file")


def _cell(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _event(name: str, doc: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(doc)}\n\n"


def upload_records(
    store: FakeStore, project_id: str, dataset_id: str, query: MultiMapping[str], form: Any
) -> Reply:
    """Store the file's records as one new version; answer the live API's event stream."""
    dataset = store.dataset(project_id, dataset_id)
    flag = query.get("deduplicate", "false")
    if flag not in ("true", "false"):
        raise bad_parameter("deduplicate", "must be true or false")
    try:
        text = _file_part(form).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad_request("the file is not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if "input" not in (reader.fieldnames or ()):
        raise bad_request("the CSV has no input column")
    events: list[str] = []
    records: list[dict[str, Any]] = []
    try:
        for row in reader:
            if None in row or None in row.values():
                raise ValueError(f"row {reader.line_num}: wrong number of fields")
            rec: dict[str, Any] = {"input": _cell(row["input"])}
            for key in ("expected_output", "metadata", "tags"):
                if row.get(key):
                    rec[key] = _cell(row[key])
            if rec.get("metadata") is not None and not isinstance(rec["metadata"], dict):
                raise ValueError(f"row {reader.line_num}: metadata must be a JSON object")
            if isinstance(rec.get("tags"), str):
                rec["tags"] = [t for t in rec["tags"].split(",") if t]
            if row.get("id"):
                rec["id"] = row["id"]
            records.append(rec)
            if len(records) % _PROGRESS_EVERY == 0:
                events.append(_event("progress", {"records_processed": len(records)}))
    except (ValueError, csv.Error) as exc:
        events.append(_event("error", {"message": str(exc)}))
        return Reply(200, "".join(events), content_type=EVENT_STREAM)
    version = dataset.version + 1
    tags = query.getall("tags", [])
    created = insert(dataset, records, version, deduplicate=flag == "true", tags=tags)
    if created:
        dataset.bump()
    events.append(_event("completed", {"records_created": len(created)}))
    return Reply(200, "".join(events), content_type=EVENT_STREAM)
