"""Lazy, resumable iteration over the API's cursor-paged lists.

Every ``list`` method returns an :class:`AsyncPaginator` without sending
anything. Iterating it fetches one page at a time, each only when the items
of the previous one are used up::

    async for record in client.records.list(project_id, dataset_id):
        ...

    async for page in client.records.list(project_id, dataset_id, page_size=500).pages():
        save(page.items, page.next_cursor)          # resume later with cursor=

    records = await client.records.list(project_id, dataset_id).to_list(limit=100)
    page = await client.records.list(project_id, dataset_id, page_size=50).page()

The next cursor is the answer's ``meta.after``; the list ends when it is
missing, ``null`` or ``""``. A server that sends a cursor twice (the cursor
a pull was resumed from included) raises
:class:`~llmobs_async.errors.PaginationError` instead of looping forever, and
no page is delivered twice.
Every page goes through the client's request loop, so a 429, a 5xx or a
dropped connection in the middle of a pull is waited out and retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs

from .errors import PaginationError, ValidationError
from .models import EvalMetric, SpanResult

__all__ = ["AsyncPaginator", "EventsPage", "Page"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a list: its items and the cursor of the next page (``None`` at the end)."""

    items: Sequence[T]
    next_cursor: str | None = None


@attrs.frozen(kw_only=True)
class EventsPage(Page[SpanResult]):
    """A page of an experiment's results: its spans, and the experiment-level metrics."""

    summary_metrics: Sequence[EvalMetric] = ()
    """Metrics of the whole experiment (``metric_source`` ``"summary"``), not of one span."""


class AsyncPaginator(Generic[T]):
    """Every item of a list, page after page, fetched only as they are used.

    Iterate it with ``async for`` for the items, or :meth:`pages` for whole
    pages. Each iteration starts again from the ``cursor`` it was made with
    (the first page by default). Nothing is sent until it is iterated.
    """

    __slots__ = ("_cursor", "_fetch", "_what")

    def __init__(
        self, fetch: Callable[[str | None], Awaitable[Page[T]]], *, cursor: str | None, what: str
    ) -> None:
        self._fetch = fetch
        self._cursor = cursor
        self._what = what

    async def pages(self) -> AsyncIterator[Page[T]]:
        """Yield the pages; the last one has ``next_cursor`` ``None``."""
        cursor = self._cursor
        # The cursor a resumed pull starts from has been fetched too: a server
        # that answers it with itself is stuck, and its page must come once.
        seen: set[str] = set() if cursor is None else {cursor}
        while True:
            page = await self._fetch(cursor)
            cursor = page.next_cursor
            yield page
            # Not held while the next page is fetched and decoded: the garbage
            # collector would scan it again, and the pull would hold two pages.
            del page
            if cursor is None:
                return
            if cursor in seen:
                raise PaginationError(
                    f"{self._what}: the server sent the page cursor {cursor[:40]!r} a second "
                    "time; stopped instead of looping",
                    cursor=cursor,
                    url=self._what,
                )
            seen.add(cursor)

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            items = page.items
            del page
            for item in items:
                yield item
            del items  # the page's records go before the next page comes (see pages)

    async def page(self) -> Page[T]:
        """Fetch only the page at this paginator's cursor (the first page by default).

        For the page after it, make the list again with ``cursor=page.next_cursor``;
        ``next_cursor`` is ``None`` on the last page.
        """
        return await self._fetch(self._cursor)

    async def to_list(self, limit: int | None = None) -> list[T]:
        """Collect the items into a list: all of them, or the first ``limit``.

        Pages are fetched only until ``limit`` items are in hand. A whole dataset can
        be large: ``async for`` keeps one page in memory at a time.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValidationError("limit", f"must be an integer or None; got {limit!r}")
        if limit is not None and limit < 0:
            raise ValidationError("limit", f"must be 0 or more; got {limit}")
        items: list[T] = []
        if limit == 0:
            return items
        async for item in self:
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return items

    if not TYPE_CHECKING:
        # Defined for the run-time message only: hidden from type checkers, which then
        # flag `for` and `await` on a paginator as the errors they are.

        def __iter__(self):
            raise TypeError(
                f"{type(self).__name__} is asynchronous: use `async for item in ...`, or "
                "`await ....to_list()` for a list"
            )

        def __await__(self):
            raise TypeError(
                f"{type(self).__name__} is not awaitable: use `async for item in ...`, "
                "`await ....to_list()` for a list, or `await ....page()` for one page"
            )

    def __repr__(self) -> str:
        return f"AsyncPaginator({self._what}, cursor={self._cursor!r})"
