"""What every resource shares: its transport, request models from arguments, lists, gets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from .._routes import Compiled, encodable
from .._transport import Query, Transport
from ..errors import ErrorItem, NotFoundError, ValidationError
from ..models import UNSET
from ..pagination import AsyncPaginator, Page

T = TypeVar("T")
MAX_PAGE_SIZE: Final = 5000


class Resource:
    """A namespace of operations over one transport (never the client)."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport


def request_model(body: Any, fields: dict[str, Any], model: type[T], read: Callable[[Any], T]) -> T:
    """The request model from keyword fields, or from a ready model or mapping, not both."""
    given = {k: v for k, v in fields.items() if v is not UNSET}
    if body is None:
        return model(**given)  # keyword names are known good: no key checks needed
    if given:
        raise ValidationError(
            "body", f"pass a request model or keyword fields, not both (got {', '.join(given)})"
        )
    return read(body)


def named_model(name: Any, fields: dict[str, Any], model: type[T], read: Callable[[Any], T]) -> T:
    """A create's model from its name and fields, or from a ready model or mapping as ``name``."""
    if isinstance(name, str):
        return model(name=name, **fields)  # type: ignore[call-arg]  # every create model has a name
    if name is None:
        raise ValidationError("name", "is required")
    return request_model(name, fields, model, read)


def filters(**values: str | Sequence[str] | None) -> list[tuple[str, str]]:
    """``filter[name]`` query parameters; a sequence repeats the parameter, None leaves it out.

    Keyed by the caller's argument names, which errors name (``ids`` sends ``filter[id]``).
    """
    query: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        parameter = f"filter[{_FILTERS.get(name, name)}]"
        for item in [value] if isinstance(value, str) else value:
            if not isinstance(item, str) or not item:
                raise ValidationError(name, f"must be a non-empty string; got {item!r}")
            query.append((parameter, encodable(name, item)))
    return query


_FILTERS: Final = {"ids": "id"}


def paginate(
    transport: Transport,
    route: Compiled,
    load: Callable[[bytes], Page[T]],
    query: Query,
    *,
    cursor: str | None,
    page_size: int | None,
) -> AsyncPaginator[T]:
    """A paginator over ``route``: ``query`` on every page, plus the cursor and page size."""
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        raise ValidationError("cursor", f"must be a non-empty string; got {cursor!r}")
    if cursor is not None:
        encodable("cursor", cursor)
    base = list(query)
    if page_size is not None:
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise ValidationError("page_size", f"must be an integer; got {page_size!r}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValidationError("page_size", f"must be 1 to {MAX_PAGE_SIZE}; got {page_size}")
        base.append(("page[limit]", str(page_size)))

    async def fetch(after: str | None) -> Page[T]:
        return await transport.request(
            route, load, query=base if after is None else [*base, ("page[cursor]", after)]
        )

    return AsyncPaginator(fetch, cursor=cursor, what=f"{route.method} {route.path}")


async def get_one(paginator: AsyncPaginator[T], what: str, wanted: str, url: str) -> T:
    """The first item of a list filtered by id, or ``NotFoundError`` (the API has no single GET)."""
    async for page in paginator.pages():
        for item in page.items:
            if getattr(item, "id", None) == wanted:
                return item
        break  # filter[id] fits on the first page
    raise NotFoundError(
        status=404,
        errors=[ErrorItem(status="404", title="Not Found", detail=f"no {what} with id {wanted!r}")],
        method="GET",
        url=url,
        headers={},
        body=b"",
    )
