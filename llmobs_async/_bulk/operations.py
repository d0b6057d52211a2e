"""What the bulk engine is given: one endpoint's operation, and ``batch_update`` for records.

The engine (:mod:`.engine`) knows nothing of records: it is given a
:class:`BulkOperation` that says which endpoint to call, how one item is
validated and encoded, how encoded items are framed into a body, how an item's
id is read and which item an error points at. Every records job
goes through :func:`batch_update` (``update_records``, ``insert_records`` or
``delete_records``), so a job makes one new dataset version (see :mod:`.versions`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from .._json import encode_json
from .._wire import records as _wire_records
from ..errors import APIStatusError, ValidationError
from ..models import RecordCreate, RecordUpdate
from . import changes as _changes

if TYPE_CHECKING:
    from .._routes import Compiled
    from .versions import OneVersion

__all__ = ["BulkOperation", "RecordsOperation"]


class BulkOperation(Protocol):
    """What is specific to one bulk endpoint; the engine does the rest."""

    @property
    def route(self) -> Compiled:
        """The endpoint, ids filled in."""

    @property
    def body_overhead(self) -> int:
        """Bytes of a body around zero items (the largest, if bodies differ)."""

    @property
    def version(self) -> OneVersion | None:
        """The job's one new dataset version, when it makes one: its first batch goes alone."""

    @property
    def resend_unsure(self) -> bool:
        """A request whose answer was lost may be sent again (it cannot apply twice)."""

    def encode(self, item: Any) -> bytes:
        """Validate and encode one item; raise ValidationError naming the field."""

    def body(self, joined: bytes | bytearray, new_version: bool = False) -> bytes:
        """The request body around encoded items joined by commas.

        ``new_version``: the body asks for the job's new dataset version.
        """

    def load(self, body: bytes) -> object:
        """Read a 2xx answer; raise (KeyError, TypeError, ValueError) if it is not the API's."""

    def item_id(self, item: Any) -> str | None:
        """The item's id, for reports; ``None`` if it has none."""

    def pointed_index(self, error: APIStatusError, joined: bytes | bytearray) -> int | None:
        """The index (in the request) of the item the error points at, if any.

        ``joined`` is the request's items, encoded and comma-separated.
        """


def _record_id(item: Any) -> str | None:
    if isinstance(item, RecordUpdate | RecordCreate):
        return item.id if isinstance(item.id, str) else None
    rid = item.get("id") if isinstance(item, Mapping) else None
    return rid if isinstance(rid, str) else None


def given_id(item: Any) -> str | None:
    return item if isinstance(item, str) else None


@attrs.define(kw_only=True)
class RecordsOperation:
    """A records endpoint for the bulk engine: ``head + items + tail`` bodies.

    ``new_head``, when set, is the head of a request that asks for the job's
    one new dataset version (``create_new_version: true``); the engine sends
    such requests one at a time until one has landed (:mod:`.versions`).
    """

    route: Compiled
    encode: Callable[[Any], bytes]
    item_id: Callable[[Any], str | None]
    head: bytes
    tail: bytes
    pointer: str
    """The JSON pointer prefix of an item, e.g. ``/data/attributes/records/``."""
    new_head: bytes | None = None
    version: OneVersion | None = None
    resend_unsure: bool = True
    load: Callable[[bytes], object] = _wire_records.check_answer
    body_overhead: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.body_overhead = len(max(self.head, self.new_head or b"", key=len)) + len(self.tail)

    def body(self, joined: bytes | bytearray, new_version: bool = False) -> bytes:
        """The request body around ``joined``, the items encoded and comma-separated."""
        head = self.new_head if new_version and self.new_head is not None else self.head
        return b"%s%s%s" % (head, joined, self.tail)

    def pointed_index(self, error: APIStatusError, joined: bytes | bytearray = b"") -> int | None:
        """The item index in ``<pointer><i>/...``, if an error has one (``joined`` unused)."""
        for item in error.errors:
            pointer = item.source.pointer if item.source is not None else None
            if pointer and pointer.startswith(self.pointer):
                index = pointer[len(self.pointer) :].partition("/")[0]
                if index.isdigit():
                    return int(index)
        return None


def records_patch(route: Compiled) -> RecordsOperation:
    """``PATCH .../records``: one dataset version per request (kept for the benchmark)."""
    head, _, tail = _wire_records.records_body(b"\x00").partition(b"\x00")
    return RecordsOperation(
        route=route,
        # The wire module's function itself, not a method around it: it runs per record.
        encode=_wire_records.encode_record,
        item_id=_record_id,
        head=head,
        tail=tail,
        pointer="/data/attributes/records/",
    )


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "insert_records": _wire_records.encode_new_record,
    "update_records": _changes.encode_update,
    "delete_records": _wire_records.encode_record_id,
}


def batch_update(
    route: Compiled,
    dataset_id: str,
    field: str,
    options: bytes,
    *,
    version: OneVersion,
    resend_unsure: bool = True,
) -> RecordsOperation:
    """``POST .../batch_update`` carrying ``field``: ``{insert,update,delete}_records``.

    One request of the job asks for the new dataset version
    (``create_new_version: true``), as ddtrace does; the others add to it.
    """
    start = b'{"data":{"type":"datasets","id":%s,"attributes":{%s' % (
        encode_json(dataset_id),
        options,
    )
    head = b'%s"create_new_version":false,"%s":[' % (start, field.encode())
    return RecordsOperation(
        route=route,
        encode=_ENCODERS[field],
        item_id=given_id if field == "delete_records" else _record_id,
        head=head,
        new_head=head.replace(b'"create_new_version":false', b'"create_new_version":true'),
        tail=b"]}}}",
        pointer=f"/data/attributes/{field}/",
        version=version,
        resend_unsure=resend_unsure,
    )


def check_batch_options(batch_size: object, max_batch_bytes: object) -> None:
    """Refuse a batch size or byte cap that is not an integer in range."""
    for name, value, minimum in (
        ("batch_size", batch_size, 1),
        ("max_batch_bytes", max_batch_bytes, 1024),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(name, f"must be an integer; got {value!r}")
        if value < minimum:
            raise ValidationError(name, f"must be >= {minimum}; got {value!r}")


def check_source(records: object, name: str = "records") -> None:
    """Refuse an input that is not an iterable (or async iterable) of items."""
    if not isinstance(records, AsyncIterable) and (
        isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable)
    ):
        raise ValidationError(name, "must be an iterable or async iterable of items")
