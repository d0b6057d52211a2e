"""Calling the user's task and evaluators as ddtrace does, and turning results into metrics.

A ddtrace user's functions run unchanged: ``task(input_data, config)`` (with
a third parameter named ``metadata`` if it has one), ``evaluator(input_data,
output_data, expected_output)``, ``summary(inputs, outputs,
expected_outputs, evaluators_results)``, or objects with a ``name`` and an
``evaluate(context)`` method. ``async def`` functions are awaited; plain
ones run in the run's bounded thread pool, never on the event loop.
"""

from __future__ import annotations

import functools
import inspect
import math
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from ..models import JSONValue, MetricType
from ._threads import ThreadPool

__all__ = [
    "Evaluator",
    "EvaluatorContext",
    "EvaluatorResult",
    "SummaryEvaluatorContext",
    "call",
    "describe_error",
    "is_async",
    "is_result",
    "metric_value",
    "name_of",
]


@attrs.frozen(kw_only=False)
class EvaluatorResult:
    """What an evaluator may return instead of a bare value: the value and its context.

    ``value`` decides the metric's type (bool: boolean, int or float: score,
    str: categorical, dict or list: json). ``tags`` is a mapping (sent as
    ``key:value``) or a list of ``key:value`` strings.
    """

    value: JSONValue
    reasoning: str | None = attrs.field(default=None, kw_only=True)
    assessment: str | None = attrs.field(default=None, kw_only=True)
    """``"pass"`` or ``"fail"``."""
    metadata: Mapping[str, JSONValue] | None = attrs.field(default=None, kw_only=True)
    tags: Mapping[str, JSONValue] | list[str] | None = attrs.field(default=None, kw_only=True)


@attrs.frozen(kw_only=True)
class EvaluatorContext:
    """What an evaluator object's ``evaluate(context)`` is given (ddtrace's fields)."""

    input_data: Any
    output_data: Any
    expected_output: Any = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    """The record's metadata, with the experiment's config under ``experiment_config``."""
    span_id: str | None = None
    trace_id: str | None = None


@attrs.frozen(kw_only=True)
class SummaryEvaluatorContext:
    """What a summary evaluator object's ``evaluate(context)`` is given (ddtrace's fields)."""

    inputs: list[Any]
    outputs: list[Any]
    expected_outputs: list[Any]
    evaluation_results: dict[str, list[Any]]
    """Each evaluator's values, by label, in the order of ``inputs``."""
    metadata: list[Mapping[str, Any]] = attrs.field(factory=list)


def name_of(function: Any) -> str:
    """An evaluator's metric label, or a task's span name: its ``name`` or ``__name__``."""
    name = getattr(function, "name", None)
    if isinstance(name, str) and name:
        return name
    name = getattr(function, "__name__", None)
    return name if isinstance(name, str) and name else type(function).__name__


def _is_object(function: Any) -> bool:
    return callable(getattr(function, "evaluate", None)) and not inspect.isroutine(function)


def is_async(function: Any) -> bool:
    while isinstance(function, functools.partial):
        function = function.func
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - an async __call__ counts
    )


async def call(
    function: Callable[..., Any], threads: ThreadPool, *args: Any, awaited: bool | None = None
) -> Any:
    """Await ``function(*args)``, or run it in one of ``threads`` when it is a plain function.

    ``awaited`` says which it is when known (asking costs more than the call).
    """
    if is_async(function) if awaited is None else awaited:
        return await function(*args)
    result = await threads.run(function, *args)
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        return await result
    return result


@attrs.frozen
class Evaluator:
    """An evaluator, looked at once: its label, what to call, and how."""

    label: str
    function: Callable[..., Any]
    takes_context: bool
    """An object's ``evaluate(context)``, rather than ``fn(input, output, expected)``."""
    awaited: bool

    @classmethod
    def of(cls, evaluator: Any) -> Evaluator:
        """Look at ``evaluator`` once."""
        function = evaluator.evaluate if _is_object(evaluator) else evaluator
        return cls(name_of(evaluator), function, function is not evaluator, is_async(function))


def wants_metadata(task: Callable[..., Any]) -> bool:
    """ddtrace passes the record's metadata to a task with a parameter named ``metadata``."""
    try:
        return "metadata" in inspect.signature(task).parameters
    except (TypeError, ValueError):
        return False


def one_argument(function: Callable[..., Any]) -> bool:
    """A summary function of one parameter takes a :class:`SummaryEvaluatorContext`."""
    try:
        return len(inspect.signature(function).parameters) == 1
    except (TypeError, ValueError):
        return False


def summary_call(evaluator: Any, context: SummaryEvaluatorContext) -> tuple[Any, tuple[Any, ...]]:
    """The callable and arguments that run a summary evaluator over every row."""
    if _is_object(evaluator):
        return evaluator.evaluate, (context,)
    if one_argument(evaluator):
        return evaluator, (context,)
    args = (context.inputs, context.outputs, context.expected_outputs, context.evaluation_results)
    return evaluator, args


def describe_error(exc: BaseException) -> dict[str, str]:
    """An exception as the API's error object: ``message``, ``type`` and ``stack``."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"message": str(exc) or type(exc).__name__, "type": type(exc).__name__, "stack": stack}


_VALUE_FIELD: Final = {
    MetricType.SCORE: "score_value",
    MetricType.BOOLEAN: "boolean_value",
    MetricType.CATEGORICAL: "categorical_value",
    MetricType.JSON: "json_value",
}


def is_result(result: Any) -> bool:
    """Is ``result`` an :class:`EvaluatorResult`, or ddtrace's own?

    Any object with ``value``, ``reasoning`` and ``assessment`` counts, so a
    ddtrace evaluator that returns ddtrace's class runs unchanged.
    """
    if isinstance(result, EvaluatorResult):
        return True
    return not isinstance(result, _PLAIN_VALUES) and all(
        hasattr(result, name) for name in ("value", "reasoning", "assessment")
    )


_PLAIN_VALUES: Final = (str, int, float, bool, type(None), Mapping, list, tuple)


def metric_value(result: Any) -> dict[str, Any]:
    """The metric fields of an evaluator's result: its type, its value and context.

    Raises ``TypeError`` or ``ValueError`` for a value no metric can hold
    (NaN, an object); the runner reports that as the evaluator's error.
    """
    fields: dict[str, Any] = {}
    value = result
    if is_result(result):
        value = result.value
        for name in ("reasoning", "assessment", "metadata"):
            extra = getattr(result, name, None)
            if extra is not None:
                fields[name] = extra
        tags = getattr(result, "tags", None)
        if tags is not None:
            fields["tags"] = (
                [f"{k}:{v}" for k, v in tags.items()] if isinstance(tags, Mapping) else list(tags)
            )
    if value is None:
        kind = MetricType.CATEGORICAL  # ddtrace's choice: a metric with no value
    elif isinstance(value, bool):
        kind = MetricType.BOOLEAN
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"a score must be a finite number; got {value!r}")
        kind, value = MetricType.SCORE, float(value)
    elif isinstance(value, str):
        kind = MetricType.CATEGORICAL
    elif isinstance(value, Mapping | list | tuple):
        kind = MetricType.JSON
        value = dict(value) if isinstance(value, Mapping) else list(value)
    else:
        raise TypeError(
            f"an evaluator must return a bool, number, str, dict, list or EvaluatorResult; "
            f"got {type(value).__name__}"
        )
    fields["metric_type"] = kind
    fields[_VALUE_FIELD[kind]] = value  # None too: ddtrace sends "categorical_value": null
    return fields


def value_of(metric: Any) -> Any:
    """The value a stored metric holds, by its ``metric_type`` (``None`` if it has none)."""
    kind = getattr(metric, "metric_type", None)
    field = _VALUE_FIELD.get(kind) if isinstance(kind, str) else None  # type: ignore[call-overload]
    return getattr(metric, field, None) if field is not None else None
