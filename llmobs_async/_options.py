"""Per-call options: ``timeout``, ``extra_headers``, ``extra_query``, ``extra_body``.

A call given options runs on a :class:`CallTransport`: a copy of the view's
transport with its own timeout and headers, which adds the query parameters
and merges the body fields into every request the call makes (every page of
a list, every batch of a bulk job). A call without options never comes here:
its transport is the view's, untouched.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypedDict, TypeVar

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from . import _config, _json
from ._routes import Compiled, encodable
from ._transport import Query, Streamed, Transport
from .errors import LLMObsError, ValidationError

T = TypeVar("T")


class RequestOptions(TypedDict, total=False):
    """Options every call takes as keyword arguments; ``None`` means not given.

    Example: ``await client.projects.update(pid, name="x", extra_headers={"X-Trace": "1"})``.

    - ``timeout``: seconds per attempt (finite, > 0) or an ``aiohttp.ClientTimeout``,
      for this call instead of the client's.
    - ``extra_headers``: headers added to (or replacing) the client's, on every
      request of the call. The keys are not among them: use
      ``client.with_options(api_key=..., app_key=...)``.
    - ``extra_query``: query parameters added to every request of the call
      (a value that is a list repeats the parameter); one the call sets
      itself is replaced.
    - ``extra_body``: a JSON object deep-merged into the body the call builds
      (objects merge key by key, anything else replaces), to send a field the
      models do not know yet: ``extra_body={"data": {"attributes": {"new": 1}}}``.
      A call that sends no JSON body of its own refuses it.
    """

    timeout: float | aiohttp.ClientTimeout | None
    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, str | Sequence[str]] | None
    extra_body: Mapping[str, Any] | None


OPTION_NAMES: Final = tuple(RequestOptions.__annotations__)
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE: Final = re.compile(r"[\r\n\x00]")
_KEY_HEADERS: Final = frozenset({"dd-api-key", "dd-application-key"})
# Framing is aiohttp's to write: a caller's value would corrupt the request.
_FRAMING: Final = frozenset({"content-length", "transfer-encoding", "host"})


def without_body(options: RequestOptions) -> RequestOptions:
    """``options`` for a call's follow-up request that has no body (a read-back)."""
    if options.get("extra_body") is None:
        return options
    rest = dict(options)
    del rest["extra_body"]
    return rest  # type: ignore[return-value]  # a RequestOptions minus one key


def derive(transport: Transport, options: Mapping[str, Any], *, no_body: str | None) -> Transport:
    """The transport of one call given ``options``, all checked before anything is sent.

    ``no_body`` says why the call refuses ``extra_body`` (``None``: it accepts it).
    """
    for name in options:
        if name not in OPTION_NAMES:
            raise ValidationError(
                name, f"is not an argument of this call (the per-call options are {_names()})"
            )
    timeout = options.get("timeout")
    headers = options.get("extra_headers")
    query = options.get("extra_query")
    body = options.get("extra_body")
    if body is not None and no_body is not None:
        raise ValidationError("extra_body", f"not accepted here: {no_body}")
    call = CallTransport.copy(transport)
    if timeout is not None:
        call.timeout = _config.check_timeout(timeout)
    if headers is not None:
        call._headers = _merge_headers(call._headers, headers)
    if query is not None:
        call.extra_query = (*call.extra_query, *_query_pairs(query))
    if body is not None:
        extra = _body_object(body)
        call.extra_body = (
            extra if call.extra_body is None else _deep_merge(copy.deepcopy(call.extra_body), extra)
        )
    return call


class CallTransport(Transport):
    """A transport for one call: the view's, plus the call's options and its recorder."""

    __slots__ = ("extra_body", "extra_query", "recorder")

    extra_body: dict[str, Any] | None
    extra_query: tuple[tuple[str, str], ...]
    recorder: Recorder | None

    @classmethod
    def copy(cls, transport: Transport) -> CallTransport:
        """A copy of ``transport`` sharing its pool and rate limits (no session made)."""
        call = object.__new__(cls)
        call.pool = transport.pool
        call.origin = transport.origin
        call.timeout = transport.timeout
        call.retry = transport.retry
        call._headers = transport._headers
        call.limits = transport.limits
        call.observer = None
        if isinstance(transport, CallTransport):
            call.extra_body = transport.extra_body
            call.extra_query = transport.extra_query
            call.recorder = transport.recorder
        else:
            call.extra_body = None
            call.extra_query = ()
            call.recorder = None
        return call

    async def request(
        self,
        route: Compiled,
        load: Callable[[bytes], T],
        *,
        body: bytes | Streamed | None = None,
        query: Query | None = None,
        on_retry: Callable[[], None] | None = None,
        before_retry: Callable[[LLMObsError], Awaitable[bytes | None]] | None = None,
    ) -> T:
        """:meth:`Transport.request` with the call's query and body fields added."""
        if self.extra_query:
            replaced = {name for name, _ in self.extra_query}
            query = [*(p for p in query or () if p[0] not in replaced), *self.extra_query]
        extra = self.extra_body
        if extra is not None and isinstance(body, bytes | bytearray):
            body = merge_body(body, extra)
            if before_retry is not None:
                before_retry = _merging(before_retry, extra)
        recorder = self.recorder
        if recorder is None or recorder.done:
            return await super().request(
                route, load, body=body, query=query, on_retry=on_retry, before_retry=before_retry
            )
        # The call's first request is the one its raw response describes.
        self.observer = recorder.observe
        started = time.monotonic()

        def counted() -> None:
            recorder.retries += 1
            if on_retry is not None:
                on_retry()

        try:
            return await super().request(
                route, load, body=body, query=query, on_retry=counted, before_retry=before_retry
            )
        finally:
            recorder.elapsed = time.monotonic() - started
            recorder.done = True
            self.observer = None


class Recorder:
    """What a call's first request got: the final attempt's status and headers, and its retries."""

    __slots__ = ("done", "elapsed", "headers", "retries", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
        self.retries = 0
        self.elapsed = 0.0
        self.done = False

    def observe(self, status: int, headers: CIMultiDictProxy[str]) -> None:
        """Keep one attempt's answer (the last one told is the final attempt's)."""
        self.status = status
        self.headers = headers


def merge_body(body: bytes | bytearray, extra: Mapping[str, Any]) -> bytes:
    """``body`` (a JSON object) with ``extra`` deep-merged into it, encoded again."""
    doc = _json.loads(body)
    if not isinstance(doc, dict):  # every JSON body this client builds is an object
        raise ValidationError("extra_body", "this request's body is not a JSON object")
    return _json.encode_json(_deep_merge(doc, extra))


def _deep_merge(into: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        have = into.get(key)
        if isinstance(value, Mapping) and isinstance(have, dict):
            into[key] = _deep_merge(have, value)
        else:
            into[key] = value
    return into


def _merging(
    hook: Callable[[LLMObsError], Awaitable[bytes | None]], extra: Mapping[str, Any]
) -> Callable[[LLMObsError], Awaitable[bytes | None]]:
    async def merged(error: LLMObsError) -> bytes | None:
        body = await hook(error)
        return None if body is None else merge_body(body, extra)

    return merged


def _names() -> str:
    return ", ".join(OPTION_NAMES)


def _merge_headers(base: CIMultiDictProxy[str], extra: object) -> CIMultiDictProxy[str]:
    if not isinstance(extra, Mapping):
        raise ValidationError("extra_headers", f"must be a mapping of str to str; got {extra!r}")
    headers = CIMultiDict(base)
    for name, value in extra.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValidationError("extra_headers", f"{name!r} is not a valid header name")
        where = f"extra_headers[{name!r}]"
        lowered = name.lower()
        if lowered in _KEY_HEADERS:
            raise ValidationError(
                where,
                "the keys cannot be set per call; use client.with_options(api_key=..., "
                "app_key=...) for a view with other keys",
            )
        if lowered in _FRAMING:
            raise ValidationError(where, "is set by the HTTP library from the request itself")
        if not isinstance(value, str):
            raise ValidationError(where, f"must be a str; got {type(value).__name__}")
        if _BAD_VALUE.search(value):
            raise ValidationError(where, "must not contain CR, LF or NUL (header injection)")
        headers[name] = encodable(where, value)
    return CIMultiDictProxy(headers)


def _query_pairs(extra: object) -> list[tuple[str, str]]:
    if not isinstance(extra, Mapping):
        raise ValidationError(
            "extra_query", f"must be a mapping of str to str or list of str; got {extra!r}"
        )
    pairs: list[tuple[str, str]] = []
    for name, value in extra.items():
        if not isinstance(name, str) or not name:
            raise ValidationError("extra_query", f"{name!r} is not a parameter name")
        encodable("extra_query", name)
        where = f"extra_query[{name!r}]"
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, Sequence) or isinstance(values, bytes):
            raise ValidationError(where, f"must be a str or a list of str; got {value!r}")
        for item in values:
            if not isinstance(item, str):
                raise ValidationError(where, f"must be a str or a list of str; got {item!r}")
            pairs.append((name, encodable(where, item)))
    return pairs


def _body_object(extra: object) -> dict[str, Any]:
    if not isinstance(extra, Mapping):
        raise ValidationError("extra_body", f"must be a JSON object (a mapping); got {extra!r}")
    try:
        encoded = _json.encode_json(dict(extra))
    except ValidationError as exc:
        raise exc.prefixed("extra_body") from None
    # A copy in JSON form: a caller's later change to its mapping does not leak in.
    copied: dict[str, Any] = _json.loads(encoded)
    return copied
