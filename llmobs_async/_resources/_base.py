"""What every resource shares: its transport, request models from arguments, lists, gets."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from .._json import encode_json
from .._options import RequestOptions, derive
from .._routes import Compiled, encodable
from .._transport import Query, Transport
from .._wire import jsonapi
from ..errors import ErrorItem, NotFoundError, ValidationError
from ..models import UNSET
from ..pagination import AsyncPaginator, Page

T = TypeVar("T")
MAX_PAGE_SIZE: Final = 5000
NO_BODY: Final = "this call sends no JSON body to merge it into"
BULK_BODY: Final = (
    "a bulk job builds its bodies batch by batch (timeout, extra_headers and "
    "extra_query apply to each request); send one request with the single-call method"
)


class Resource:
    """A namespace of operations over one transport (never the client)."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def _via(self, options: RequestOptions, no_body: str | None = None) -> Transport:
        """The transport of a call given per-call ``options`` (checked here, before sending).

        Callers test ``if options`` first: a call without options keeps the view's transport.
        """
        return derive(self._transport, options, no_body=no_body)


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


def update_payload(
    body: Any,
    fields: dict[str, Any],
    kinds: Mapping[str, type],
    model: type[Any],
    read: Callable[[Any], Any],
    resource_type: str,
) -> bytes:
    """The encoded body of a partial update, from keyword fields or a ready model or mapping.

    Keyword fields that are plain values the model would take as they are (an
    exact ``str``, a ``dict`` with ``str`` keys, a member or value of the
    field's enum) are encoded without building the model: the same bytes for
    a third of the CPU on every call. Anything else goes through the model,
    which checks it and names what is wrong.
    """
    if body is None:
        attributes = _plain_fields(fields, kinds)
        if attributes:
            return jsonapi.envelope(resource_type, encode_json(attributes))
    update = request_model(body, fields, model, read)
    return jsonapi.encode_model(update, resource_type, nonempty=True)


def _plain_fields(fields: dict[str, Any], kinds: Mapping[str, type]) -> dict[str, Any] | None:
    """The given fields in wire form, or None if one is not plainly valid (or none is given)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is UNSET:
            continue
        kind = kinds[name]
        if kind is str:
            if type(value) is not str:
                return None
        elif kind is dict:
            if type(value) is not dict or any(type(key) is not str for key in value):
                return None
        elif type(value) is kind:  # a member of the field's StrEnum: its value goes out
            value = str(value)
        elif type(value) is not str or value not in kind._value2member_map_:  # type: ignore[attr-defined]
            return None
        out[name] = value
    return out or None


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
