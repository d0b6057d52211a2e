"""Every endpoint of the API, once; the only way to build a request path.

A :class:`Route` is a method and a path template. :meth:`Route.compile`
checks each id and percent-encodes it, so an id such as ``../projects/x``
can never reach another endpoint.
"""

from __future__ import annotations

import string
from typing import Final
from urllib.parse import quote

import attrs

from .errors import ValidationError

PREFIX: Final = "/api/v2/llm-obs"


@attrs.frozen(kw_only=True)
class Compiled:
    """A route with its ids filled in: what the transport sends."""

    method: str
    path: str
    """The encoded path, from ``/api/...`` on."""
    gate: str
    """The rate gate's name for the endpoint: method and template, the same for every id."""


@attrs.frozen
class Route:
    """One endpoint: ``Route("PATCH", "/v1/projects/{project_id}")``."""

    method: str
    template: str
    params: tuple[str, ...] = attrs.field(init=False)
    _compiled: dict[tuple[tuple[str, str], ...], Compiled] = attrs.field(
        init=False, factory=dict, eq=False
    )
    """The routes compiled lately, by ids: a service that updates the same few
    experiments or datasets all day checks and encodes their ids once."""

    @params.default
    def _params(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.template) if name)

    def compile(self, **ids: str) -> Compiled:
        """Fill in the ids; raise ``ValidationError`` naming a bad one."""
        key = tuple(ids.items())  # names too: the same ids in other places are another path
        try:
            found = self._compiled.get(key)
        except TypeError:  # an unhashable id: segment() refuses it below
            found = None
        if found is not None:
            return found
        path = self.template.format_map({name: segment(name, ids[name]) for name in self.params})
        compiled = Compiled(
            method=self.method, path=PREFIX + path, gate=f"{self.method} {self.template}"
        )
        if len(self._compiled) >= _CACHED:
            self._compiled.clear()
        self._compiled[key] = compiled
        return compiled


_CACHED: Final = 256


def segment(name: str, value: object) -> str:
    """Percent-encode one path parameter (a non-empty string that is not ``.`` or ``..``)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, f"must be a non-empty string; got {value!r}")
    if value in (".", ".."):
        raise ValidationError(name, f"{value!r} is not a valid id")
    return quote(encodable(name, value), safe="")


def encodable(name: str, value: str) -> str:
    """``value``, if it can be sent as UTF-8; else ``ValidationError`` naming ``name``.

    A lone surrogate (what Python makes of an undecodable byte in argv or a
    file name) would fail as a raw ``UnicodeEncodeError`` when the request is
    built; path segments, query values and cursors are all checked here first.
    """
    if value.isascii():
        return value
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValidationError(
            name, "contains a lone surrogate, which is not valid UTF-8 (a badly decoded string?)"
        ) from None
    return value


_DATASET: Final = "/v1/{project_id}/datasets/{dataset_id}"

LIST_PROJECTS: Final = Route("GET", "/v1/projects")
CREATE_PROJECT: Final = Route("POST", "/v1/projects")
UPDATE_PROJECT: Final = Route("PATCH", "/v1/projects/{project_id}")
DELETE_PROJECTS: Final = Route("POST", "/v1/projects/delete")

LIST_DATASETS: Final = Route("GET", "/v1/{project_id}/datasets")
CREATE_DATASET: Final = Route("POST", "/v1/{project_id}/datasets")
UPDATE_DATASET: Final = Route("PATCH", _DATASET)
DELETE_DATASETS: Final = Route("POST", "/v1/{project_id}/datasets/delete")
DATASET_VERSIONS: Final = Route("GET", _DATASET + "/versions")

LIST_RECORDS: Final = Route("GET", _DATASET + "/records")
CREATE_RECORDS: Final = Route("POST", _DATASET + "/records")
UPDATE_RECORDS: Final = Route("PATCH", _DATASET + "/records")
DELETE_RECORDS: Final = Route("POST", _DATASET + "/records/delete")
BATCH_UPDATE: Final = Route("POST", _DATASET + "/batch_update")
UPLOAD_RECORDS: Final = Route("POST", "/v2/{project_id}/datasets/{dataset_id}/records/upload")

LIST_EXPERIMENTS: Final = Route("GET", "/v1/experiments")
CREATE_EXPERIMENT: Final = Route("POST", "/v1/experiments")
UPDATE_EXPERIMENT: Final = Route("PATCH", "/v1/experiments/{experiment_id}")
DELETE_EXPERIMENTS: Final = Route("POST", "/v1/experiments/delete")
CREATE_EVENTS: Final = Route("POST", "/v1/experiments/{experiment_id}/events")
LIST_EVENTS: Final = Route("GET", "/v3/experiments/{experiment_id}/events")
