"""Cursor pages, newest first, that stay exact while items come and go.

Every listed item gets a sequence number when it is created, larger than
any before it. A page walks the items from the newest down, and its cursor
(``meta.after``) is the sequence number of the last item it returned: the
next page starts below it. Items created during a pull are newer than the
cursor, items deleted vanish, so a pull returns every item present from its
start to its end exactly once, whatever happens meanwhile. A page costs
O(page) (a bisect, then a slice or a short walk), never O(list).
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from multidict import MultiMapping

from ._wire import MAX_LIST as MAX_FILTER_VALUES
from ._wire import bad_parameter

T = TypeVar("T")

MAX_PAGE = 5000
"""The largest ``page[limit]`` any list accepts."""
DEFAULT_PAGE = {
    "projects": 100,
    "datasets": 100,
    "records": 1000,
    "experiments": 5000,
    "events": 5000,
}
"""Page size of each list when the request sends no ``page[limit]``."""


class SeqIndex(Generic[T]):
    """Items in creation order with their sequence numbers."""

    __slots__ = ("_items", "_seqs")

    def __init__(self) -> None:
        self._seqs: list[int] = []
        self._items: list[T] = []

    def __len__(self) -> int:
        return len(self._seqs)

    def add(self, seq: int, item: T) -> None:
        """Append ``item``; ``seq`` must be larger than every one present."""
        if self._seqs and seq <= self._seqs[-1]:
            raise ValueError(f"sequence {seq} is not after {self._seqs[-1]}")
        self._seqs.append(seq)
        self._items.append(item)

    def remove(self, seq: int) -> None:
        """Forget the item of ``seq`` (cursors past it stay valid)."""
        index = bisect_left(self._seqs, seq)
        if index < len(self._seqs) and self._seqs[index] == seq:
            del self._seqs[index], self._items[index]

    def page(
        self, before: int | None, limit: int, keep: Callable[[T], bool] | None = None
    ) -> tuple[list[T], int | None]:
        """Up to ``limit`` items older than ``before``, newest first, and the next cursor.

        The cursor is ``None`` when no item ``keep`` accepts is left after the page.
        """
        seqs, items = self._seqs, self._items
        end = len(seqs) if before is None else bisect_left(seqs, before)
        if keep is None:
            start = max(end - limit, 0)
            found = items[start:end][::-1]
            return found, (seqs[start] if start > 0 and found else None)
        out: list[T] = []
        index, last = end, 0
        while index > 0 and len(out) < limit:
            index -= 1
            if keep(items[index]):
                out.append(items[index])
                last = seqs[index]
        # One more kept item below the page means another page: the live API
        # answers "" on the last page, never a cursor to an empty page.
        while index > 0:
            index -= 1
            if keep(items[index]):
                return out, last
        return out, None


def encode_cursor(scope: str, seq: int) -> str:
    """An opaque cursor for the list ``scope``, resuming below ``seq``."""
    return base64.urlsafe_b64encode(f"{scope}|{seq}".encode()).decode().rstrip("=")


def decode_cursor(scope: str, text: str) -> int:
    """The sequence number in a cursor of ``scope``, or the API's 400 naming ``page[cursor]``."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        got_scope, _, seq = raw.decode().rpartition("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        got_scope, seq = "", ""
    if got_scope != scope or not (seq.isascii() and seq.isdigit()) or int(seq) < 1:
        raise bad_parameter("page[cursor]", "invalid cursor: use meta.after of the previous page")
    return int(seq)


def page_request(
    query: MultiMapping[str], scope: str, kind: str, *, clamp: bool = False
) -> tuple[int | None, int]:
    """``page[cursor]`` (decoded; ``None`` for the first page) and ``page[limit]``.

    ``page[limit]`` must be an integer from 1 to :data:`MAX_PAGE`; ``clamp``
    lowers a larger one to it instead, as the experiments list does.
    """
    limit = DEFAULT_PAGE[kind]
    text = query.get("page[limit]")
    if text is not None:
        try:
            limit = int(text)
        except ValueError:
            limit = 0
        if clamp:
            limit = min(limit, MAX_PAGE)
        if not 1 <= limit <= MAX_PAGE:
            detail = f"page[limit] must be an integer from 1 to {MAX_PAGE}"
            raise bad_parameter("page[limit]", detail)
    cursor = query.get("page[cursor]") or None
    return (None if cursor is None else decode_cursor(scope, cursor)), limit


def page_doc(data: Sequence[Any], scope: str, next_seq: int | None) -> dict[str, Any]:
    """A list answer: ``data`` and ``meta.after`` (``""`` on the last page, as live)."""
    after = "" if next_seq is None else encode_cursor(scope, next_seq)
    return {"data": list(data), "meta": {"after": after}}


# --- filters ---------------------------------------------------------------------------------


def filter_values(query: MultiMapping[str], name: str) -> list[str]:
    """Every value of a repeatable filter (``filter[id]=a&filter[id]=b``); empty ones refused."""
    values = list(query.getall(name, []))
    if any(not value for value in values):
        raise bad_parameter(name, f"{name} must not be empty")
    if len(values) > MAX_FILTER_VALUES:
        raise bad_parameter(name, f"{name} is repeated more than {MAX_FILTER_VALUES} times")
    return values


def filter_bool(query: MultiMapping[str], name: str) -> bool | None:
    """A boolean filter (``true``/``false``), ``None`` when absent."""
    text = query.get(name)
    if text is None:
        return None
    if text.lower() not in ("true", "false"):
        raise bad_parameter(name, f"{name} must be true or false")
    return text.lower() == "true"
