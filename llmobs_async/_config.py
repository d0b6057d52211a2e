"""Sites, credentials and base URLs: everything resolved once when a client is built."""

from __future__ import annotations

import ipaddress
import math
import os
from typing import Final

import aiohttp
import attrs
from yarl import URL

from ._routes import encodable
from .errors import ValidationError

SITES: Final = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
)
DEFAULT_SITE: Final = "datadoghq.com"


@attrs.frozen(repr=False)
class Secret:
    """A credential whose value never shows in a repr, str, log or traceback."""

    _value: str

    def reveal(self) -> str:
        """Return the real value, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def check_key(field: str, value: object) -> Secret:
    """Validate one credential and wrap it; the message never shows the value.

    Refused: a non-string, a value empty after stripping whitespace, and one
    holding CR, LF or NUL (a key read from a file or ``$(cat ...)`` with its
    trailing newline would otherwise fail later inside the HTTP layer).
    """
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string; got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(field, "is empty")
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValidationError(field, "contains a line break or NUL character (a trailing newline?)")
    return Secret(value)


def _env_key(*names: str) -> Secret | None:
    for name in names:
        value = os.environ.get(name)
        if value:  # set but empty counts as unset, as shells often leave it
            return check_key(name, value)
    return None


def resolve_keys(api_key: str | None, app_key: str | None) -> tuple[Secret | None, Secret | None]:
    """Explicit keys win; then DD_API_KEY and DD_APP_KEY (or DD_APPLICATION_KEY).

    A bad key raises ValidationError naming where it came from (``api_key`` or
    ``DD_API_KEY``); a missing one is ``None``.
    """
    api = check_key("api_key", api_key) if api_key is not None else _env_key("DD_API_KEY")
    app = (
        check_key("app_key", app_key)
        if app_key is not None
        else _env_key("DD_APP_KEY", "DD_APPLICATION_KEY")
    )
    return (api, app)


def check_count(field: str, value: object, minimum: int) -> int:
    """Validate an integer option such as ``max_concurrency``: never a float or a bool."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValidationError(field, f"must be >= {minimum}; got {value!r}")
    return int(value)


_TIMEOUT_FIELDS: Final = ("total", "connect", "sock_read", "sock_connect")


def check_timeout(value: object) -> aiohttp.ClientTimeout:
    """Validate ``timeout``: a finite positive number of seconds, or a ClientTimeout.

    NaN would disable the timeout and infinity overflows inside asyncio on
    every request, so both are refused, as are such values in a ClientTimeout.
    """
    if isinstance(value, aiohttp.ClientTimeout):
        for name in _TIMEOUT_FIELDS:
            seconds = getattr(value, name)
            if seconds is not None and not _positive_seconds(seconds):
                raise ValidationError(
                    f"timeout.{name}",
                    f"must be None or a finite positive number of seconds; got {seconds!r}",
                )
        return value
    if not _positive_seconds(value):
        raise ValidationError(
            "timeout", f"must be a finite positive number of seconds; got {value!r}"
        )
    return aiohttp.ClientTimeout(total=float(value))  # type: ignore[arg-type]


def _positive_seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


OVERRIDE_ORIGIN_ENV: Final = "DD_LLMOBS_OVERRIDE_ORIGIN"


def resolve_base_url(site: str | None, base_url: str | None) -> URL:
    """Return the API origin: ``base_url`` if given, else ``https://api.{site}``.

    With neither, ``DD_LLMOBS_OVERRIDE_ORIGIN`` (ddtrace's variable) is the
    base URL if set, so an app can be pointed at ``llmobs-async fake-server``
    without a code change; then ``DD_SITE``.
    """
    if base_url is not None:
        return check_base_url(base_url)
    override = os.environ.get(OVERRIDE_ORIGIN_ENV)
    if site is None and override:
        try:
            return check_base_url(override)
        except ValidationError as exc:
            raise ValidationError(OVERRIDE_ORIGIN_ENV, exc.reason) from None
    chosen = (site or os.environ.get("DD_SITE") or DEFAULT_SITE).strip().lower()
    # "app.datadoghq.eu" is how the site is written in the Datadog UI; accept it.
    chosen = chosen.removeprefix("https://").removeprefix("app.").removeprefix("api.").rstrip("/")
    if chosen not in SITES:
        raise ValidationError(
            "site",
            f"unknown Datadog site {site or chosen!r}; valid sites are {', '.join(SITES)} "
            "(use base_url= for anything else)",
        )
    return URL(f"https://api.{chosen}")


def check_base_url(base_url: str) -> URL:
    """Validate a user-supplied base URL: https, or http on a loopback host only.

    The URL is the API origin. A path prefix (a proxy mounted under
    ``/datadog``) is kept, but a path holding ``/api/`` is refused.
    """
    if not isinstance(base_url, str):
        raise ValidationError("base_url", f"must be a string; got {type(base_url).__name__}")
    if not base_url.isascii():
        # yarl would drop a lone surrogate, and the path prefix with it.
        encodable("base_url", base_url)
    try:
        url = URL(base_url.rstrip("/"))
    except (TypeError, ValueError) as exc:
        raise ValidationError("base_url", f"is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValidationError("base_url", f"must be an http(s) URL with a host; got {base_url!r}")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ValidationError(
            "base_url", "plain http is only allowed for loopback hosts; use https"
        )
    if url.query_string or url.fragment or url.user or url.password:
        raise ValidationError("base_url", "must not carry credentials, a query or a fragment")
    if "/api/" in url.path.lower() + "/":
        # "https://api.datadoghq.com/api/v2" copied from the API docs would
        # otherwise fail on every call with a doubled /api/v2/api/v2 path.
        raise ValidationError(
            "base_url",
            f"must not include the API path {url.raw_path!r}: the client adds /api/v2/...; "
            f"pass the origin, e.g. {str(url.origin())!r}",
        )
    return url


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
