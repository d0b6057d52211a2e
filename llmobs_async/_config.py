"""Sites, credentials and base URLs: everything resolved once when a client is built."""

from __future__ import annotations

import ipaddress
import os
from typing import Final

import attrs
from yarl import URL

from .errors import ValidationError

SITES: Final = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
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


def resolve_keys(api_key: str | None, app_key: str | None) -> tuple[Secret | None, Secret | None]:
    """Explicit keys win; then DD_API_KEY and DD_APP_KEY (or DD_APPLICATION_KEY)."""
    api = api_key if api_key is not None else os.environ.get("DD_API_KEY")
    app = (
        app_key
        if app_key is not None
        else os.environ.get("DD_APP_KEY") or os.environ.get("DD_APPLICATION_KEY")
    )
    return (Secret(api) if api else None, Secret(app) if app else None)


def resolve_base_url(site: str | None, base_url: str | None) -> URL:
    """Return the API origin: ``base_url`` if given, else ``https://api.{site}``."""
    if base_url is not None:
        return check_base_url(base_url)
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
    """Validate a user-supplied base URL: https, or http on a loopback host only."""
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
    return url


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
