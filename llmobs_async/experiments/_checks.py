"""The checks of a run's arguments, all made before anything is sent.

A task or evaluator that cannot be called as the runner calls it (a lambda
of one parameter as a task) would otherwise fail on every row, after its
retries, in a run that ends ``completed``: its signature is checked here.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import _json
from ..errors import ValidationError
from . import _evaluators as ev
from ._results import RunProgress
from ._rowwork import Settings

__all__ = ["count", "evaluator_list", "settings", "shard", "wait"]


def count(field: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValidationError(field, f"must be an integer >= {least}; got {value!r}")
    return value


def _callable(field: str, value: object, *arities: int) -> None:
    """Check ``value`` is callable as the runner calls it.

    A function takes one of ``arities`` positional arguments; an object's
    ``evaluate`` takes one (a context).
    """
    if not callable(value) and not callable(getattr(value, "evaluate", None)):
        raise ValidationError(
            field, f"must be a function or have an evaluate() method; got {value!r}"
        )
    if inspect.isclass(value) and callable(getattr(value, "evaluate", None)):
        raise ValidationError(
            field, f"is the class {value.__name__}: pass an instance, {value.__name__}(...)"
        )
    function: Any = value
    if ev.Evaluator.of(value).takes_context:
        function, arities = value.evaluate, (1,)  # type: ignore[attr-defined]
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: it will tell by running
        return
    for arity in arities:
        try:
            signature.bind(*range(arity))
        except TypeError:
            continue
        return
    wanted = " or ".join(str(a) for a in arities)
    raise ValidationError(
        field, f"must take {wanted} positional argument(s); {ev.name_of(value)}{signature} does not"
    )


def evaluator_list(field: str, group: object) -> None:
    """Check a list of evaluators (``evaluators``) or of summary evaluators."""
    if isinstance(group, str | bytes | Mapping) or not isinstance(group, Sequence):
        raise ValidationError(field, "must be a list")
    seen: set[str] = set()
    for index, evaluator in enumerate(group):
        _callable(f"{field}[{index}]", evaluator, *((3,) if field == "evaluators" else (4, 1)))
        label = ev.name_of(evaluator)
        if label in seen:
            raise ValidationError(
                f"{field}[{index}]", f"two evaluators are named {label!r}: labels must differ"
            )
        seen.add(label)


def shard(value: object) -> tuple[int, int] | None:
    """``shard=(i, n)``: two integers, ``n >= 1`` and ``0 <= i < n``; or ``None``."""
    if value is None:
        return None
    if isinstance(value, tuple | list) and len(value) == 2:
        i, n = value
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (i, n)) and 0 <= i < n:
            return i, n
    raise ValidationError(
        "shard", f"must be (i, n): two integers with n >= 1 and 0 <= i < n; got {value!r}"
    )


def wait(value: object) -> float:
    """``wait``: a finite number of seconds, ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValidationError("wait", f"must be a finite number of seconds >= 0; got {value!r}")
    return float(value)


def settings(
    task: Any,
    evaluators: Sequence[Any],
    summary_evaluators: Sequence[Any],
    config: Mapping[str, Any],
    concurrency: int,
    max_task_retries: int,
    task_timeout: float | None,
    on_progress: Callable[[RunProgress], None] | None,
    tags: Sequence[str] | Mapping[str, Any],
) -> Settings:
    """The run's settings, checked before anything is sent."""
    if not callable(task):
        raise ValidationError("task", f"must be a function; got {task!r}")
    _callable("task", task, 3 if ev.wants_metadata(task) else 2)
    evaluator_list("evaluators", evaluators)
    evaluator_list("summary_evaluators", summary_evaluators)
    if not isinstance(config, Mapping):
        raise ValidationError("config", "must be a mapping")
    try:
        _json.encode_json(config)
    except ValidationError as exc:
        raise exc.prefixed("config") from None
    count("concurrency", concurrency, 1)
    count("max_task_retries", max_task_retries, 0)
    if task_timeout is not None and (
        isinstance(task_timeout, bool)
        or not isinstance(task_timeout, int | float)
        or not 0 < task_timeout < math.inf
    ):
        raise ValidationError(
            "task_timeout", f"must be a positive number of seconds; got {task_timeout!r}"
        )
    if on_progress is not None and not callable(on_progress):
        raise ValidationError("on_progress", "must be callable")
    if isinstance(tags, Mapping):  # ddtrace's form: {"team": "ml"} is the tag team:ml
        tags = [f"{key}:{value}" for key, value in tags.items()]
    if isinstance(tags, str | bytes) or not all(isinstance(t, str) for t in tags):
        raise ValidationError("tags", "must be a list of key:value strings, or a mapping")
    return Settings(
        task=task,
        evaluators=tuple(evaluators),
        summary_evaluators=tuple(summary_evaluators),
        config=config,
        concurrency=concurrency,
        max_task_retries=max_task_retries,
        task_timeout=task_timeout,
        on_progress=on_progress,
        tags=tuple(tags),
    )
