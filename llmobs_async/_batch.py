"""One request's worth of a bulk job: items, their JSON, and where they came from."""

from __future__ import annotations

from typing import Any


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
