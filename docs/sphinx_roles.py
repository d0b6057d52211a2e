"""A griffe extension for the API reference: Sphinx roles in docstrings shown as code.

The library's docstrings say :class:`~llmobs_async.BulkResult` or :meth:`close`, which
mkdocstrings would print as raw text. This turns each into inline code, ``BulkResult`` and
``close`` (a leading ``~`` or ``.`` keeps the last name, as Sphinx shows it). mkdocs.yml
loads it by path; it runs at build time only.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|exc|data|obj):`([~.]?)([^`]+)`")


def _shown(match: re.Match[str]) -> str:
    prefix, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if prefix else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` to ```target``` in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of each object as it is loaded."""
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_shown, obj.docstring.value)
