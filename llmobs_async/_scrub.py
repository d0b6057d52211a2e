"""Exceptions without credentials: stand-ins for transport errors whose repr shows a key."""

from __future__ import annotations

from typing import Final

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

REDACTED: Final = "**********"


def scrub(exc: BaseException, secrets: tuple[str, ...]) -> BaseException:
    """Return ``exc``, or a stand-in without ``secrets`` if its chain would show one.

    aiohttp's ``ClientResponseError`` (a bad status line, an oversized header,
    a duplicate Content-Length) carries the request headers, keys included,
    in its repr. The stand-in keeps the type where it can (with the request
    headers redacted), the message and the chain, so ``__cause__`` still says
    what went wrong.
    """
    scrubber = _Scrubber(secrets)
    if not any(scrubber.leaks(e) for e in _chain(exc)):
        return exc
    return scrubber.scrubbed(exc, {})


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += (e.__cause__, e.__context__)
    return seen


_FINDABLE = 8
"""Secrets shorter than this (test keys such as ``"k"``) are redacted where they
are a header's value but not searched for in text, where they would match
ordinary words. Datadog's keys are 32 and 40 characters."""


class _Scrubber:
    __slots__ = ("findable", "secrets")

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self.findable = tuple(s for s in secrets if len(s) >= _FINDABLE)

    def leaks(self, exc: BaseException) -> bool:
        if self._request_headers(exc) is not None:
            return True
        if not self.findable:
            return False
        try:
            text = f"{exc!r} {exc} {exc.args!r} {getattr(exc, '__dict__', None)!r}"
        except Exception:  # a repr that fails shows nothing, but trust nothing either
            return True
        return any(secret in text for secret in self.findable)

    def _request_headers(self, exc: BaseException) -> CIMultiDictProxy[str] | None:
        """The request headers ``exc`` carries, if they hold a secret."""
        info = getattr(exc, "request_info", None)
        headers = getattr(info, "headers", None)
        if isinstance(headers, CIMultiDictProxy | CIMultiDict) and any(
            v in self.secrets for v in headers.values()
        ):
            return CIMultiDictProxy(headers) if isinstance(headers, CIMultiDict) else headers
        return None

    def redact(self, text: str) -> str:
        for secret in self.findable:
            text = text.replace(secret, REDACTED)
        return text

    def scrubbed(self, exc: BaseException, done: dict[int, BaseException]) -> BaseException:
        if id(exc) in done:
            return done[id(exc)]
        clean = self.stand_in(exc) if self.leaks(exc) else exc
        done[id(exc)] = clean
        cause, context = exc.__cause__, exc.__context__
        clean.__cause__ = None if cause is None else self.scrubbed(cause, done)
        clean.__context__ = None if context is None else self.scrubbed(context, done)
        clean.__suppress_context__ = exc.__suppress_context__
        return clean

    def stand_in(self, exc: BaseException) -> BaseException:
        headers = self._request_headers(exc)
        if isinstance(exc, aiohttp.ClientResponseError) and headers is not None:
            info = exc.request_info
            safe = CIMultiDict(
                (k, REDACTED if v in self.secrets else v) for k, v in headers.items()
            )
            try:
                copy = type(exc)(
                    aiohttp.RequestInfo(
                        info.url, info.method, CIMultiDictProxy(safe), info.real_url
                    ),
                    (),
                    status=exc.status,
                    message=self.redact(exc.message),
                    headers=exc.headers,
                )
            except Exception:  # a subclass with another signature: use the fallback
                pass
            else:
                if not self.leaks(copy):
                    return copy.with_traceback(exc.__traceback__)
        text = self.redact(f"{type(exc).__name__}: {exc}")
        return aiohttp.ClientError(text).with_traceback(exc.__traceback__)
