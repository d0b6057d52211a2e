"""One request's worth of a bulk job (items, their JSON, where they came from), and its helpers."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Hashable, Iterable, Mapping
from typing import Any, Final, TypeVar

from ..errors import APIStatusError, LLMObsError

T = TypeVar("T")


class Batch:
    """Items of one request and their JSON, back to back, with input positions.

    The JSON goes into one growing buffer (with the end offset of each item)
    rather than a bytes object per item: orjson's small outputs each hold a
    few KiB, which made a million-record job's memory triple. Positions in
    the input are kept as a start and the positions skipped (invalid items),
    and only spelled out when a batch fails or splits.
    """

    __slots__ = ("_positions", "ends", "holes", "items", "joined", "start")

    def __init__(self, start: int = 0) -> None:
        self.items: list[Any] = []
        self.joined = bytearray()
        self.ends: list[int] = []
        self.start = start
        self.holes: list[int] = []
        self._positions: list[int] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: Any, encoded: bytes) -> None:
        """Append one item and its encoded JSON."""
        if self.joined:
            self.joined += b","
        self.joined += encoded
        self.items.append(item)
        self.ends.append(len(self.joined))

    def positions(self) -> list[int]:
        """Where each item was in the input."""
        if self._positions is None:
            holes, out, at = set(self.holes), [], self.start
            for _ in self.items:
                while at in holes:
                    at += 1
                out.append(at)
                at += 1
            self._positions = out
        return self._positions

    def slice(self, lo: int, hi: int) -> Batch:
        """Items ``lo`` to ``hi`` (exclusive) as a batch of their own."""
        part = Batch()
        base = self.ends[lo - 1] + 1 if lo else 0
        part.items = self.items[lo:hi]
        part.joined = self.joined[base : self.ends[hi - 1]] if hi > lo else bytearray()
        part.ends = [end - base for end in self.ends[lo:hi]]
        part._positions = self.positions()[lo:hi]
        return part

    def halves(self) -> tuple[Batch, Batch]:
        """The first half of the items and the second, as batches."""
        mid = len(self) // 2
        return self.slice(0, mid), self.slice(mid, len(self))

    def pick(self, index: int) -> tuple[Batch, Batch]:
        """The item at ``index`` alone, and the others together."""
        rest, right = self.slice(0, index), self.slice(index + 1, len(self))
        if right.items:
            shift = len(rest.joined) + 1 if rest.items else 0
            if rest.items:
                rest.joined += b","
            rest.joined += right.joined
            rest.ends += [end + shift for end in right.ends]
            rest.items += right.items
            assert rest._positions is not None and right._positions is not None
            rest._positions += right._positions
        return self.slice(index, index + 1), rest


MARK: Final = 11
"""Bytes of an item's mark: its kind byte and its JSON length in ten digits."""


def marked(kind: bytes, encoded: bytes) -> bytes:
    """``encoded`` behind its mark, for a body whose items go into several arrays.

    The engine joins encoded items with commas and knows nothing of kinds;
    the operation's ``body`` walks the marks (:func:`walk_marked`) to sort the
    items into their arrays. The mark's bytes are counted against
    ``max_batch_bytes`` but never sent, so a body is never larger than reckoned.
    """
    return b"%s%010d%s" % (kind, len(encoded), encoded)


def walk_marked(joined: bytes | bytearray) -> list[tuple[int, int, int]]:
    """Each marked item of ``joined``: (kind byte, start, end) of its JSON."""
    out, at, size = [], 0, len(joined)
    while at < size:
        start = at + MARK
        end = start + int(joined[at + 1 : start])
        out.append((joined[at], start, end))
        at = end + 1  # the comma between items
    return out


def pointed_marked(
    error: APIStatusError, joined: bytes | bytearray, arrays: Mapping[str, int]
) -> int | None:
    """The request index of the marked item an error points at (``.../<array>/2``).

    ``arrays`` maps each array of the body's attributes to its items' kind byte.
    """
    walked = walk_marked(joined)
    for item in error.errors:
        pointer = item.source.pointer if item.source is not None else None
        for field, kind in arrays.items():
            prefix = f"/data/attributes/{field}/"
            if pointer and pointer.startswith(prefix):
                index = pointer[len(prefix) :].partition("/")[0]
                of_kind = [i for i, (k, _, _) in enumerate(walked) if k == kind]
                if index.isdigit() and int(index) < len(of_kind):
                    return of_kind[int(index)]
    return None


def detached(error: LLMObsError) -> LLMObsError:
    """``error`` without its tracebacks (and its causes'), to be kept in a result.

    A traceback holds the frames it passed through, and with them the batch
    and the request body: a million-record job with a hundred bad records
    kept ~100 MB alive that way.
    """
    seen: BaseException | None = error
    for _ in range(8):  # the exception and a short chain of causes
        if seen is None:
            break
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    return error


def error_key(error: LLMObsError) -> Hashable:
    """What makes two answers "alike": the status and every error item."""
    if isinstance(error, APIStatusError):
        return (
            error.status,
            tuple(
                (e.title, e.detail, e.source.pointer if e.source is not None else None)
                for e in error.errors
            ),
        )
    return (type(error).__name__, str(error))


def each(records: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """The items of a plain or an async iterable, as an async iterator.

    An async iterable is iterated as it is: a generator around it would cost
    a resumption per item (a bulk job's source may yield millions).
    """
    if isinstance(records, AsyncIterable):
        return aiter(records)
    return _each(records)


async def _each(records: Iterable[T]) -> AsyncIterator[T]:
    for item in records:
        yield item
