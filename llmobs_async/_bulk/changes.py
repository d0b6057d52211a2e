"""Record changes for ``batch_update``: updates with tag operations, and mixed jobs.

A mixed job (``records.apply_many``) sends inserts, updates and deletes
together, as ddtrace's ``Dataset.push()`` sends an edited dataset: each body
has the three arrays ``insert_records``, ``update_records`` and
``delete_records``. The bulk engine joins encoded items with commas and knows
nothing of kinds, so an item is encoded here as a kind byte (``I``, ``U``,
``D``) marks each item (:func:`.batches.marked`), and :meth:`MixedOperation.body`
sorts the joined items into their arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._changemodels import RecordDelete, TagOperations
from .._json import encode_json
from .._wire import records as _wire_records
from ..errors import APIStatusError, ValidationError
from ..models import RecordCreate, RecordUpdate
from .batches import marked, pointed_marked, walk_marked

if TYPE_CHECKING:
    from .._routes import Compiled
    from .versions import OneVersion

__all__ = ["MixedOperation", "encode_update", "tag_update_encoder"]


def _tag_operations(value: object) -> bytes:
    try:
        return TagOperations.of(value).wire()
    except ValidationError as exc:
        raise exc.prefixed("tag_operations") from None


def encode_update(item: RecordUpdate | Mapping[str, Any]) -> bytes:
    """Validate and encode one ``update_records`` item; a mapping may hold ``tag_operations``.

    ``tag_operations`` is a :class:`~llmobs_async.models.TagOperations` or a
    mapping of ``add``, ``remove`` and ``replace`` (or the wire's ``set``).
    """
    # A plain dict without tag operations (the common item) costs one lookup more.
    if type(item) is dict:
        if "tag_operations" not in item:
            return _wire_records.encode_update_record(item)
    elif not isinstance(item, Mapping) or "tag_operations" not in item:
        return _wire_records.encode_update_record(item)
    operations = _tag_operations(item["tag_operations"])
    rest = {key: value for key, value in item.items() if key != "tag_operations"}
    encoded = _wire_records.encode_update_record(rest)
    return b'%s,"tag_operations":%s}' % (encoded[:-1], operations)


def tag_update_encoder(operations: TagOperations) -> Callable[[Any], bytes]:
    """Encode a record id as an ``update_records`` item applying ``operations``."""
    tail = b',"tag_operations":%s}' % operations.wire()

    def encode(record_id: Any) -> bytes:
        return b'{"id":%s%s' % (_wire_records.encode_record_id(record_id), tail)

    return encode


# --- mixed jobs ---------------------------------------------------------------------------

_ARRAYS: Final = {
    "insert_records": ord("I"),
    "update_records": ord("U"),
    "delete_records": ord("D"),
}
_KIND_OF_BYTE: Final = {ord("I"): 0, ord("U"): 1, ord("D"): 2}
_OPS: Final = {"insert": 0, "update": 1, "delete": 2}


def _kind_and_fields(item: Any) -> tuple[int, Any]:
    """Which array ``item`` goes to (0 insert, 1 update, 2 delete), and what to encode."""
    if isinstance(item, RecordCreate):
        return 0, item
    if isinstance(item, RecordUpdate):
        return 1, item
    if isinstance(item, RecordDelete):
        return 2, item.id
    if not isinstance(item, Mapping):
        raise ValidationError(
            "", "must be a RecordCreate, RecordUpdate, RecordDelete or a mapping with 'op'"
        )
    op = item.get("op")
    kind = _OPS.get(op) if isinstance(op, str) else None
    if kind is None:
        raise ValidationError("op", f"must be 'insert', 'update' or 'delete'; got {op!r}")
    if kind == 2:
        extra = set(item) - {"op", "id"}
        if extra:
            raise ValidationError(sorted(extra)[0], "is not a field of a delete (only 'id')")
        return 2, item.get("id")
    return kind, {key: value for key, value in item.items() if key != "op"}


def _encode_change(item: Any) -> bytes:
    kind, fields = _kind_and_fields(item)
    if kind == 0:
        encoded = _wire_records.encode_new_record(fields)
    elif kind == 1:
        encoded = encode_update(fields)
    else:
        try:
            encoded = _wire_records.encode_record_id(fields)
        except ValidationError as exc:
            raise ValidationError("id", exc.reason) from None
    return marked(b"IUD"[kind : kind + 1], encoded)


def _change_id(item: Any) -> str | None:
    if isinstance(item, RecordCreate | RecordUpdate | RecordDelete):
        rid: object = item.id
    else:
        rid = item.get("id") if isinstance(item, Mapping) else None
    return rid if isinstance(rid, str) else None


def _walk(joined: bytes | bytearray) -> list[tuple[int, int, int]]:
    """Each marked item of ``joined``: (kind, start, end) of its JSON."""
    return [(_KIND_OF_BYTE[kind], start, end) for kind, start, end in walk_marked(joined)]


@attrs.define(kw_only=True)
class MixedOperation:
    """``POST .../batch_update`` with inserts, updates and deletes in one body.

    The body is ddtrace's ``dataset_batch_update`` shape: the three arrays,
    then ``deduplicate`` and ``create_new_version``.
    """

    route: Compiled
    dataset_id: str
    deduplicate: bool
    version: OneVersion
    body_overhead: int = attrs.field(init=False)
    resend_unsure: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.body_overhead = len(self.body(b"", False))
        # Inserts without deduplication are the one change a re-send can apply twice.
        self.resend_unsure = self.deduplicate

    encode = staticmethod(_encode_change)
    item_id = staticmethod(_change_id)
    load = staticmethod(_wire_records.check_answer)

    def body(self, joined: bytes | bytearray, new_version: bool = False) -> bytes:
        """The request body: the marked items of ``joined`` sorted into their three arrays."""
        arrays: tuple[list[bytes | bytearray], ...] = ([], [], [])
        for kind, start, end in _walk(joined):
            arrays[kind].append(joined[start:end])
        inserts, updates, deletes = (b",".join(array) for array in arrays)
        return (
            b'{"data":{"type":"datasets","id":%s,"attributes":{"insert_records":[%s],'
            b'"update_records":[%s],"delete_records":[%s],"deduplicate":%s,'
            b'"create_new_version":%s}}}'
            % (
                encode_json(self.dataset_id),
                inserts,
                updates,
                deletes,
                b"true" if self.deduplicate else b"false",
                b"true" if new_version else b"false",
            )
        )

    def pointed_index(self, error: APIStatusError, joined: bytes | bytearray = b"") -> int | None:
        """The request index of the item an error points at (``.../update_records/2``)."""
        return pointed_marked(error, joined, _ARRAYS)
