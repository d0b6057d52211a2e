"""Each evaluator's aggregate, counted as the run calls it: no read-back, constant memory.

``experiments run`` hands the runner its evaluators wrapped (:func:`observe`):
each wrapper returns exactly what the evaluator returns (or raises what it
raises) and counts the value on the way, so the summary needs no second pass
over the experiment's events (reading back 100,000 rows would hold them all
in memory). The counts follow ``experiments compare``'s aggregates: a value
no metric can hold, ``None``, or a raise is an error.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
from collections.abc import Mapping
from typing import Any

import attrs

from ..experiments import EvaluatorResult
from ..experiments._evaluators import is_async, name_of

__all__ = ["Tally", "observe"]


@attrs.define
class Tally:
    """One evaluator's values so far (the fields of a ``MetricAggregate``, and its type)."""

    count: int = 0
    errors: int = 0
    mean: float | None = None
    true_rate: float | None = None
    categories: dict[str, int] = attrs.field(factory=dict)
    metric_type: str | None = None
    _sum: float = 0.0
    _scores: int = 0
    _true: int = 0
    _booleans: int = 0
    # Plain evaluators run in the runner's threads, several rows at once.
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def add(self, result: Any) -> None:
        """Count what an evaluator returned."""
        value = result.value if isinstance(result, EvaluatorResult) else result
        with self._lock:
            if isinstance(value, bool):
                self._booleans += 1
                self._true += value
                self.true_rate = self._true / self._booleans
                kind = "boolean"
            elif isinstance(value, int | float) and math.isfinite(value):
                self._scores += 1
                self._sum += value
                self.mean = self._sum / self._scores
                kind = "score"
            elif isinstance(value, str):
                self.categories[value] = self.categories.get(value, 0) + 1
                kind = "categorical"
            elif isinstance(value, Mapping | list | tuple):
                kind = "json"
            else:  # None, NaN, an object: the runner stores no value
                self.errors += 1
                return
            self.count += 1
            self.metric_type = kind  # the latest, as compare reports the candidate's

    def add_error(self, rows: int = 1) -> None:
        """Count rows with no value: the evaluator raised, or the task failed."""
        with self._lock:
            self.errors += rows


def observe(evaluators: list[Any]) -> tuple[list[Any], dict[str, Tally]]:
    """The evaluators wrapped to count their values, and the tallies by label."""
    tallies: dict[str, Tally] = {}
    wrapped = []
    for evaluator in evaluators:
        tally = tallies.setdefault(name_of(evaluator), Tally())
        evaluate = getattr(evaluator, "evaluate", None)
        if callable(evaluate) and not inspect.isroutine(evaluator):
            wrapped.append(_Evaluator(name_of(evaluator), _counted(evaluate, tally)))
        else:
            wrapped.append(_counted(evaluator, tally))
    return wrapped, tallies


@attrs.frozen
class _Evaluator:
    """An evaluator object (``name`` and ``evaluate(context)``) whose calls are counted."""

    name: str
    evaluate: Any


def _counted(function: Any, tally: Tally) -> Any:
    # functools.wraps keeps the name (the metric's label) and the signature the runner
    # reads; an async function stays async, a plain one plain (it runs in a thread).
    if is_async(function):

        @functools.wraps(function)
        async def counted_async(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await function(*args, **kwargs)
            except Exception:
                tally.add_error()
                raise
            tally.add(result)
            return result

        return counted_async

    @functools.wraps(function)
    def counted(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
        except Exception:
            tally.add_error()
            raise
        if not inspect.isawaitable(result):  # a plain function returning a coroutine: rare
            tally.add(result)
        return result

    return counted
