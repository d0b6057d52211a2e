"""What a run returns and reports: :class:`ExperimentRun` and :class:`RunProgress`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

import attrs

from .._bulk.results import BulkResult
from ..errors import _carried_on
from ..models import Experiment, ExperimentStatus
from ._rows import ExperimentRow

__all__ = ["ExperimentRun", "RunProgress"]

_RUN_ATTRIBUTE: Final = "_llmobs_experiment_run"


@attrs.frozen(kw_only=True)
class RunProgress:
    """Where a run stands; passed to ``on_progress`` as rows finish and pushes are answered."""

    experiment_id: str
    done: int
    """Rows finished (task run, or failed after its retries, and scored)."""
    total: int | None
    """Rows the run will do at most, when known: ``sample_size`` times ``runs`` (else ``None``)."""
    task_errors: int
    """Rows whose task failed after its retries."""
    pushed: int
    """Spans and metrics the API acknowledged."""
    push_failed: int
    """Spans and metrics not recorded (see ``ExperimentRun.pushed``)."""
    retries: int
    """Task retries plus push requests retried."""


@attrs.frozen(kw_only=True)
class ExperimentRun:
    """The outcome of ``experiments.run`` or ``resume``.

    ``experiment`` carries the final status: ``completed`` when every row ran
    (a task that failed after its retries is a row with an error) and every
    span and metric was acknowledged; ``failed`` when the run could not finish
    or an item was not recorded; ``interrupted`` when it was cancelled.
    """

    experiment: Experiment
    summary: Mapping[str, Any]
    """Each summary evaluator's value by name (``None`` where it raised)."""
    summary_errors: Mapping[str, Mapping[str, Any]]
    """The error of each summary evaluator that raised."""
    pushed: BulkResult
    """Every span and metric sent: acknowledged, or in ``pushed.failed`` with its error."""
    rows_done: int
    """Rows run (or scored) by this call; on resume, only the ones it had to do."""
    task_errors: int
    """Of those, rows whose task failed after its retries."""
    error: BaseException | None = None
    """Why the run ended ``failed`` or ``interrupted``, else ``None``."""
    _read_rows: Callable[[str], AsyncIterator[ExperimentRow]] = attrs.field(
        alias="read_rows", repr=False
    )

    @property
    def ok(self) -> bool:
        """True when the experiment ended ``completed``."""
        return self.experiment.status == ExperimentStatus.COMPLETED

    def rows(self) -> AsyncIterator[ExperimentRow]:
        """Every row of the experiment, read back from the API (one per record and run)."""
        return self._read_rows(self.experiment.id)

    @staticmethod
    def from_exception(exc: BaseException) -> ExperimentRun | None:
        """The account of a run that ended in ``exc`` (cancelled, Ctrl-C), or ``None``.

        The experiment is then ``interrupted`` (or ``failed``); its id is in
        ``run.experiment.id``, for :meth:`Experiments.resume`.
        """
        return _carried_on(exc, _RUN_ATTRIBUTE, ExperimentRun)

    def attach_to(self, exc: BaseException) -> None:
        """Leave this account on ``exc`` for :meth:`from_exception`."""
        setattr(exc, _RUN_ATTRIBUTE, self)
