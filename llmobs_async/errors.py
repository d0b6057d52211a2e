"""Exceptions raised by llmobs_async.

Every exception derives from :class:`LLMObsError`. HTTP failures are
:class:`APIStatusError` subclasses chosen by status code and carry the parsed
``errors`` array of the response; transport failures are
:class:`APIConnectionError` with the original exception as ``__cause__``
(a stand-in with the credentials redacted where the original would show
them). Every exception pickles, so a job in a worker process can send its
failures back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._text import printable

_T = TypeVar("_T")

__all__ = [
    "BODY_SNIPPET_BYTES",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BulkUpdateError",
    "ConflictError",
    "ErrorItem",
    "ErrorSource",
    "IncompleteExperimentError",
    "LLMObsError",
    "NotFoundError",
    "PaginationError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitInfo",
    "ReadBackError",
    "ResponseTooLargeError",
    "ServerError",
    "UnprocessableEntityError",
    "UploadError",
    "ValidationError",
]


@attrs.frozen(kw_only=True)
class ErrorSource:
    """Where in the request an API error points."""

    pointer: str | None = None
    """JSON pointer into the request body, e.g. ``/data/attributes/name``."""
    parameter: str | None = None
    """Query parameter that caused the error."""
    header: str | None = None
    """Request header that caused the error."""


@attrs.frozen(kw_only=True)
class ErrorItem:
    """One entry of the API's ``errors`` array."""

    title: str | None = None
    detail: str | None = None
    status: str | None = None
    source: ErrorSource | None = None
    meta: Mapping[str, Any] | None = None

    def __str__(self) -> str:
        text = ": ".join(p for p in (self.title, self.detail) if p)
        if self.source is not None and self.source.pointer:
            text += f" (at {self.source.pointer})"
        return text or "(no detail)"


@attrs.frozen(kw_only=True)
class RateLimitInfo:
    """The ``X-RateLimit-*`` headers of a response, parsed.

    ``reset`` is in seconds from when the response arrived (Datadog sends it
    relative, not as an epoch timestamp).
    """

    limit: int | None = None
    period: float | None = None
    remaining: int | None = None
    reset: float | None = None
    name: str | None = None


BODY_SNIPPET_BYTES: Final = 8192
"""The most of a response body an exception keeps in ``.body``.

The ``errors`` array is parsed from the whole body first; the snippet only
keeps an exception (and whatever logs or stores it) small.
"""


class LLMObsError(Exception):
    """Base class of every exception this library raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses take keyword-only arguments, which the default
        # reduction (``cls(*args)``) cannot replay: restore args and
        # attributes without calling __init__ instead.
        state = {
            k: CIMultiDict(v) if isinstance(v, CIMultiDictProxy) else v
            for k, v in vars(self).items()
        }
        return (_restore, (type(self), self.args), state)


def _carried_on(exc: BaseException, attribute: str, kind: type[_T]) -> _T | None:
    """The ``kind`` left on ``exc`` as ``attribute``, or on the short chain of its causes.

    How a job's account rides on the exception that ended it (``BulkResult``,
    ``ExperimentRun``): the exception may be the one left on, or one it caused
    (a ``TimeoutError`` raised from the cancellation).
    """
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: the exception, its cause, their context
        if seen is None:
            return None
        found = getattr(seen, attribute, None)
        if isinstance(found, kind):
            return found
        seen = seen.__cause__ or seen.__context__
    return None


def _restore(cls: type[LLMObsError], args: tuple[Any, ...]) -> LLMObsError:
    return cls.__new__(cls, *args)


class ValidationError(LLMObsError, ValueError):
    """Input was rejected before any request was sent.

    ``field`` names the offending field (``records[3].input``, ``status``,
    ``site``); the message says what was wrong with it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{printable(field)}: {message}")  # a field may hold a dict key
        self.field = field
        self.reason = message

    def prefixed(self, prefix: str) -> ValidationError:
        """Return a copy whose field is nested under ``prefix``."""
        sep = "" if not self.field or self.field.startswith("[") else "."
        return ValidationError(f"{prefix}{sep}{self.field}", self.reason)


class BulkUpdateError(LLMObsError):
    """Raised by ``BulkResult.raise_for_failures()``: carries every failure.

    Attributes:
        failures: the ``BulkFailure`` list (records, their ids, the typed error).
        result: the whole ``BulkResult``.
    """

    def __init__(self, message: str, *, failures: list[Any], result: Any) -> None:
        super().__init__(message)
        self.failures = failures
        self.result = result


class UploadError(LLMObsError):
    """A file upload was received (2xx) but the API reported that processing it failed.

    The message is the API's (its ``error`` event); which records, if any, were
    stored is not said: the upload endpoint has no per-record account.
    """


class APIConnectionError(LLMObsError):
    """The request could not be completed: refused, reset, DNS or TLS failure.

    Raised after retries are exhausted; the transport exception is ``__cause__``.
    """

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class APITimeoutError(APIConnectionError):
    """An attempt exceeded its timeout (after retries were exhausted)."""


class APIResponseValidationError(LLMObsError):
    """A 2xx response whose body could not be read as the documented shape.

    ``body`` keeps the first :data:`BODY_SNIPPET_BYTES` bytes of the response.
    """

    def __init__(self, message: str, *, status: int, method: str, url: str, body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.body = body[:BODY_SNIPPET_BYTES]


class ResponseTooLargeError(LLMObsError):
    """A response body went past the size cap; the rest was not read. Not retried.

    The cap is 32 MiB, counted after decompression: far above any answer of
    the API, so only a broken or hostile server meets it.

    Attributes:
        status: HTTP status of the response.
        method: HTTP method of the request.
        url: URL of the request.
        limit: the cap, in bytes.
    """

    def __init__(self, message: str, *, status: int, method: str, url: str, limit: int) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.limit = limit


class PaginationError(LLMObsError):
    """A list answered with a page cursor it had already sent; following it would never end.

    Attributes:
        cursor: the repeated cursor.
        url: URL of the list.
    """

    def __init__(self, message: str, *, cursor: str, url: str) -> None:
        super().__init__(message)
        self.cursor = cursor
        self.url = url


class ReadBackError(LLMObsError):
    """The update **was applied**; reading the result back failed or did not show it yet.

    The API answers an experiment PATCH with an empty 200, so ``update``
    reads the experiment back to return it. This is raised when that read
    fails (its error is ``__cause__``), or when after a few brief retries the
    list still leaves the experiment out or shows other values than those
    written (a lagging index, or another writer in between). It is not an
    :class:`APIStatusError`: the write itself succeeded, and sending it again
    is not needed.

    Attributes:
        experiment_id: the id of the updated experiment.
        written: the request model that was stored (an ``ExperimentUpdate``).
        read: the experiment as last read (``None`` if no read showed it).
    """

    def __init__(self, message: str, *, experiment_id: str, written: Any, read: Any = None) -> None:
        super().__init__(message)
        self.experiment_id = experiment_id
        self.written = written
        self.read = read


class IncompleteExperimentError(LLMObsError):
    """``experiments.summarize`` found rows of the experiment missing (shards not done yet).

    Nothing was pushed and the experiment's status was left as it was: run
    the shards that lack rows (a restarted shard skips the rows it did), or
    summarize again with a longer ``wait``.

    Attributes:
        experiment_id: the experiment summarized.
        missing: every ``(record_id, run_iteration)`` row not found, as
            ``RowKey`` tuples (the message names only the first few).
        expected: how many rows the experiment should have.
    """

    def __init__(
        self, message: str, *, experiment_id: str, missing: list[Any], expected: int
    ) -> None:
        super().__init__(message)
        self.experiment_id = experiment_id
        self.missing = missing
        self.expected = expected


class APIStatusError(LLMObsError):
    """The API answered with a non-2xx status.

    Attributes:
        status: HTTP status code.
        errors: the parsed ``errors`` array (possibly empty).
        method: HTTP method of the request.
        url: URL of the request (no credentials are ever in it).
        headers: response headers.
        body: the raw response body, cut at :data:`BODY_SNIPPET_BYTES` bytes.
    """

    def __init__(
        self,
        *,
        status: int,
        errors: list[ErrorItem],
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        message: str | None = None,
    ) -> None:
        self.status = status
        self.errors = errors
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body[:BODY_SNIPPET_BYTES]
        super().__init__(message or self._describe())

    def _describe(self) -> str:
        path = urlsplit(self.url).path or self.url
        text = f"{self.status} {type(self).__name__}: {self.method} {path}"
        if self.errors:
            text += f": {printable(str(self.errors[0]))}"
            if len(self.errors) > 1:
                text += f" (and {len(self.errors) - 1} more)"
        return text


class BadRequestError(APIStatusError):
    """400: the API rejected the request body or parameters."""


class AuthenticationError(APIStatusError):
    """401: missing or invalid API or application key."""


class PermissionDeniedError(APIStatusError):
    """403: the keys are valid but lack permission for this operation."""


class NotFoundError(APIStatusError):
    """404: the experiment, project, dataset or record does not exist."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the current state of the resource."""


class PayloadTooLargeError(APIStatusError):
    """413: the request body is too large."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well-formed but semantically invalid."""


class RateLimitError(APIStatusError):
    """429: rate limited (after retries were exhausted).

    Attributes:
        retry_after: seconds the API asked to wait, or ``None``.
        rate_limit: the parsed ``X-RateLimit-*`` headers, or ``None``.
    """

    def __init__(
        self,
        *,
        rate_limit: RateLimitInfo | None = None,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rate_limit = rate_limit
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the API failed; retried before this is raised."""


STATUS_CLASSES: Final[Mapping[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
"""The exception class of each status with its own; other 5xx are :class:`ServerError`."""
