"""Models of record changes sent through ``batch_update``: tag operations, deletes.

Re-exported by :mod:`llmobs_async.models`; kept apart so that the models
module stays readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._json import encode_json
from .errors import ValidationError

__all__ = ["RecordDelete", "TagOperations", "check_tags"]


def check_tags(value: object, name: str, *, key_value: bool) -> None:
    """Refuse ``value`` unless it is a list (or tuple) of tags; errors name ``name[i]``."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ValidationError(name, f"must be a list of strings; got {value!r}")
    for index, tag in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(tag, str) or not tag.strip():
            raise ValidationError(where, f"must be a non-empty string; got {tag!r}")
        if key_value and ":" not in tag:
            raise ValidationError(where, f"must be a 'key:value' tag; got {tag!r}")


def _tag_list(*, key_value: bool) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and attribute.name == "replace":
            return
        check_tags(value, attribute.name, key_value=key_value)

    return check


def _to_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


@attrs.frozen(kw_only=True)
class TagOperations:
    """Changes to one record's tags, applied by the API in the order remove, add, replace.

    ``add`` and ``replace`` take ``"key:value"`` tags (what ddtrace's
    ``Dataset.add_tags`` and ``replace_tags`` accept and what
    ``records.list(tags=...)`` filters on); ``remove`` takes any tag, so one
    stored without a colon can still be removed. ``replace`` (the wire's
    ``set``) overrides the others; ``replace=[]`` removes every tag.
    """

    add: Sequence[str] = attrs.field(
        default=(), converter=_to_tuple, validator=_tag_list(key_value=True)
    )
    remove: Sequence[str] = attrs.field(
        default=(), converter=_to_tuple, validator=_tag_list(key_value=False)
    )
    replace: Sequence[str] | None = attrs.field(
        default=None, converter=_to_tuple, validator=_tag_list(key_value=True)
    )

    def __attrs_post_init__(self) -> None:
        if not self.add and not self.remove and self.replace is None:
            raise ValidationError("", "is empty: give add, remove or replace")

    def wire(self) -> bytes:
        """The JSON of ``tag_operations``: ``{"add", "remove", "set"}``, only those given."""
        out: dict[str, list[str]] = {}
        if self.add:
            out["add"] = list(self.add)
        if self.remove:
            out["remove"] = list(self.remove)
        if self.replace is not None:
            out["set"] = list(self.replace)
        return encode_json(out)

    @classmethod
    def of(cls, value: object) -> TagOperations:
        """A ``TagOperations`` as given, or built from a mapping (``set`` is read as ``replace``).

        Raises ValidationError naming the field (relative to ``tag_operations``).
        """
        if isinstance(value, TagOperations):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError("", f"must be a TagOperations or a mapping; got {value!r}")
        fields: dict[str, Any] = {}
        for key, item in value.items():
            name = "replace" if key == "set" else key
            if name not in ("add", "remove", "replace") or name in fields:
                raise ValidationError(
                    str(key), "is not a tag operation (add, remove, replace or set, once each)"
                )
            fields[name] = item
        return cls(**fields)


@attrs.frozen
class RecordDelete:
    """A record to delete, in a mixed job (``records.apply_many``)."""

    id: str = attrs.field()

    @id.validator
    def _check(self, _: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("id", f"must be a non-empty string; got {value!r}")
