"""Where the workers leave each row's span and metrics for the push: a bounded buffer.

``events.create_many`` reads it as its input. A queue would wake the push's
reader once per row; this buffer wakes it once ``wake_at`` items are waiting,
when :meth:`Outbox.flush` asks (every few seconds, so results of slow tasks
show up as they come), and when it is closed. Workers wait only when
``capacity`` items are waiting: a slow push holds them back instead of
growing memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .._bulk.results import FLUSH

__all__ = ["Outbox"]


class Outbox:
    """Items from many workers to one reader, handed over in bunches."""

    def __init__(self, *, capacity: int, wake_at: int) -> None:
        self._items: list[Any] = []
        self._capacity = capacity
        self._wake_at = wake_at
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._flush = False
        self._closed = False

    async def put(self, items: Sequence[Any]) -> None:
        """Leave ``items``; wait first while the buffer is full."""
        while len(self._items) >= self._capacity and not self._closed:
            self._room.clear()
            await self._room.wait()
        self._items.extend(items)
        if len(self._items) >= self._wake_at:
            self._ready.set()

    def flush(self) -> None:
        """Have the reader send what is waiting now (``FLUSH``), not when a batch is full."""
        self._flush = True
        self._ready.set()

    def close(self) -> None:
        """No more items: the reader ends once it has taken what is waiting."""
        self._closed = True
        self._ready.set()
        self._room.set()

    async def read(self) -> AsyncIterator[Any]:
        """Every item put, then ``FLUSH`` where asked, until closed and empty."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            items, self._items = self._items, []
            self._room.set()
            for item in items:
                yield item
            if self._flush:
                self._flush = False
                yield FLUSH
            if self._closed and not self._items:
                return
