"""The pager benchmark's dataset: records in the live API's list shape, and its cursors.

Used by the server (to build and pre-encode the pages) and by the runner (to
know what every client must have received). Deterministic: the same
arguments give the same bytes in every process.

A record is what the live records list sends (API-REFERENCE 2.3 and 4.2): a
JSON:API resource ``{"id", "type": "datasets", "attributes": {...}}`` whose
attributes hold ``author`` ``{id}``, ``canonical_id``, ``dataset_id``,
``created_at``/``updated_at`` written as Go writes them (RFC 3339, up to nine
fractional digits, trailing zeros cut), ``input``, and usually
``expected_output``, ``metadata`` and ``tags`` (left out when empty, as the
API does). Each record has its own timestamps: a dataset is built over time,
so no two records share a ``created_at``.
"""

from __future__ import annotations

import base64
import datetime
import random
from collections.abc import Iterator
from typing import Any, Final

import orjson

PROJECT_ID: Final = "3a1a13ae-5b8e-4f3c-9d5e-2f0a6c1b7e41"
DATASET_ID: Final = "09ac049e-7c2d-4b7e-a1f3-5d8e9c0b2a63"
WARMUP_DATASET_ID: Final = "5f2d7a10-1e3b-4c9a-8f60-7b4e2d9c1a05"
"""A second, small dataset for the warm-up: other ids, other timestamps (no cache reuse)."""

_AUTHORS: Final = (
    "422c9d15-5a7b-4e0f-b3c1-8d2e6f9a0b14",
    "7e1f3a2b-9c4d-4e5f-a6b7-c8d9e0f1a2b3",
    "b5c6d7e8-f9a0-4b1c-8d2e-3f4a5b6c7d8e",
)
_WORDS: Final = (  # noqa: SIM905 (a word list, easier to read as text)
    "the model answer question context retrieval document latency token budget "
    "evaluation score precision recall summary customer invoice refund policy "
    "shipping account password reset billing cycle plan upgrade region cluster "
    "service deploy rollback metric alert threshold dashboard query index shard "
    "replica cache timeout retry backoff payload schema version migration user "
    "session request response error warning incident postmortem owner team"
).split()
# A few records carry non-ASCII text, as multilingual eval sets do.
_ACCENTED: Final = ("café", "naïve", "Zürich", "São Paulo", "東京", "Kraków", "👍")
_BASE_NS: Final = int(
    datetime.datetime(2026, 3, 26, 20, 1, 34, tzinfo=datetime.UTC).timestamp() * 1e9
)


def record_id(dataset_id: str, index: int) -> str:
    """The id of record ``index`` of a dataset (a UUID-shaped string, unique per dataset)."""
    return f"{dataset_id[:8]}-0000-4000-8000-{index:012d}"


def expected_ids(dataset_id: str, count: int) -> set[str]:
    """The ids a full pull of the first ``count`` records must yield, each once."""
    return {record_id(dataset_id, index) for index in range(count)}


def go_timestamp(ns: int) -> str:
    """A UTC instant as Go's RFC 3339 with nanoseconds writes it (trailing zeros cut)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def _text(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choices(_WORDS, k=words))
    if rng.random() < 0.05:
        text += " " + rng.choice(_ACCENTED)
    return text[0].upper() + text[1:] + "."


def make_records(dataset_id: str, count: int) -> Iterator[dict[str, Any]]:
    """The first ``count`` records of a dataset, in list order (one seeded generator)."""
    rng = random.Random(dataset_id)
    base_ns = _BASE_NS + (0 if dataset_id == DATASET_ID else 86_400 * 10**9)
    for index in range(count):
        yield make_record(rng, dataset_id, index, base_ns)


def make_record(
    rng: random.Random, dataset_id: str, index: int, base_ns: int = _BASE_NS
) -> dict[str, Any]:
    """Record ``index`` as one list item of the live API (about 1.5 KB of JSON)."""
    created = base_ns + index * 7_919_113 + rng.randrange(1_000)
    updated = created if rng.random() < 0.8 else created + rng.randrange(10**9, 10**14)
    attributes: dict[str, Any] = {
        "author": {"id": _AUTHORS[index % 7 % len(_AUTHORS)]},
        "canonical_id": f"{rng.getrandbits(32):08x}-{index % 65536:04x}-4{rng.getrandbits(12):03x}"
        f"-a{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}",
        "created_at": go_timestamp(created),
        "dataset_id": dataset_id,
        "input": {
            "question": _text(rng, rng.randint(12, 30)),
            "context": _text(rng, rng.randint(40, 90)),
            "chat_history": [
                {"role": "user", "content": _text(rng, rng.randint(5, 15))},
                {"role": "assistant", "content": _text(rng, rng.randint(5, 20))},
            ],
        },
        "updated_at": go_timestamp(updated),
    }
    if rng.random() < 0.95:  # the API leaves out an empty expected_output
        if rng.random() < 0.5:
            attributes["expected_output"] = _text(rng, rng.randint(15, 40))
        else:
            attributes["expected_output"] = {
                "answer": _text(rng, rng.randint(10, 30)),
                "citations": [rng.randrange(1, 40) for _ in range(rng.randint(0, 3))],
            }
    if rng.random() < 0.9:
        attributes["metadata"] = {
            "source": rng.choice(("prod-traces", "synthetic", "support-tickets")),
            "difficulty": rng.choice(("easy", "medium", "hard")),
            "split": "test",
            "score": round(rng.random(), 4),
            "reviewed": rng.random() < 0.5,
        }
    if rng.random() < 0.85:
        attributes["tags"] = [
            f"team:{rng.choice(('ml', 'search', 'support'))}",
            f"priority:{rng.choice(('high', 'low'))}",
            "lang:en",
        ]
    return {"id": record_id(dataset_id, index), "type": "datasets", "attributes": attributes}


def cursor(dataset_id: str, page_size: int, offset: int) -> str:
    """An opaque next-page cursor: base64 of JSON (its ``=`` padding must be percent-encoded)."""
    token = orjson.dumps({"d": dataset_id, "o": offset, "l": page_size, "s": "created_at:desc"})
    return base64.urlsafe_b64encode(token).decode()


def encode_pages(
    dataset_id: str, records: list[bytes], page_size: int
) -> Iterator[tuple[str | None, bytes]]:
    """Every page of the list as ``(its cursor, its body)``; the first page's cursor is None.

    ``records`` are the records already encoded, so a page is joined, not re-encoded.
    """
    for offset in range(0, len(records), page_size):
        end = offset + page_size
        after = cursor(dataset_id, page_size, end) if end < len(records) else ""
        body = b'{"data":[%s],"meta":{"after":%s}}' % (
            b",".join(records[offset:end]),
            orjson.dumps(after),
        )
        yield (cursor(dataset_id, page_size, offset) if offset else None), body


SPEC_PREFIX: Final = "spec-"
"""Datasets whose id starts with this are served in the specification's flat shape."""


def spec_record(resource: dict[str, Any]) -> dict[str, Any]:
    """A record in the 2.62.0 specification's flat shape (``LLMObsDatasetRecordDataResponse``).

    The live API does not send this shape (API-REFERENCE 4.2); it is what the
    official client's models expect: the required fields present, nullable ones null.
    """
    attributes = resource["attributes"]
    flat = {key: attributes.get(key) for key in ("input", "expected_output", "metadata")}
    for key in ("dataset_id", "created_at", "updated_at"):
        flat[key] = attributes[key]
    return {"id": resource["id"], **flat}
