"""The experiment runner: run a task over a dataset, score it, resume a broken run, compare two.

``client.experiments.run(...)`` (whole, or one shard of an experiment made
beforehand), ``resume(...)``, ``summarize(...)``, ``compare(...)`` and
``rows(...)`` live on :class:`Experiments` (``client.experiments``), a layer
above the resources: it uses the client's public calls (the records
paginator, ``events.create_many``, ``update``), so everything it sends goes
through the one request loop, the rate gate and the bulk accounting.
Modules: ``_namespace`` (the methods), ``_checks`` (their arguments),
``_runner`` (the run loop), ``_rowwork`` (one row: task, evaluators, span and
metrics), ``_evaluators`` (calling ddtrace-style functions, values to
metrics), ``_threads`` (the run's threads), ``_outbox`` (rows to the push),
``_rows`` (rows read back), ``_summarize`` (the summary evaluators, and
``summarize``), ``_results`` (``ExperimentRun``,
``RunProgress``), ``_compare``.
"""

from ._compare import Comparison, MetricAggregate, MetricComparison
from ._evaluators import EvaluatorContext, EvaluatorResult, SummaryEvaluatorContext
from ._namespace import Experiments
from ._results import ExperimentRun, RunProgress
from ._rows import ExperimentRow, RowKey
from ._rowwork import shard_of

__all__ = [
    "Comparison",
    "EvaluatorContext",
    "EvaluatorResult",
    "ExperimentRow",
    "ExperimentRun",
    "Experiments",
    "MetricAggregate",
    "MetricComparison",
    "RowKey",
    "RunProgress",
    "SummaryEvaluatorContext",
    "shard_of",
]
