"""llmobs_async: an async-first client for the Datadog LLM Observability API.

>>> async with LLMObsClient() as client:  # doctest: +SKIP
...     project = await client.projects.create("evals")
...     async for record in client.records.list(project.id, dataset_id):
...         ...
...     exp = await client.experiments.update(exp_id, status="completed")
"""

from . import errors, experiments, models, pagination
from ._bulk.csvsource import CsvSource
from ._bulk.results import (
    FLUSH,
    BulkFailure,
    BulkInterruptedError,
    BulkOutcomeUnknownError,
    BulkProgress,
    BulkResult,
)
from ._bulk.upload import CsvUploadResult
from ._client import LLMObsClient
from ._config import SITES
from ._options import RequestOptions
from ._ratelimit.limiter import RateLimiter, RateLimiterStats
from ._ratelimit.redis_store import RedisRateLimitStore
from ._response import APIResponse
from ._version import __version__
from .errors import IncompleteExperimentError
from .experiments import (
    Comparison,
    EvaluatorResult,
    ExperimentRow,
    ExperimentRun,
    RunProgress,
)
from .models import UNSET
from .pagination import AsyncPaginator, EventsPage, Page

__all__ = [
    "FLUSH",
    "SITES",
    "UNSET",
    "APIResponse",
    "AsyncPaginator",
    "BulkFailure",
    "BulkInterruptedError",
    "BulkOutcomeUnknownError",
    "BulkProgress",
    "BulkResult",
    "Comparison",
    "CsvSource",
    "CsvUploadResult",
    "EvaluatorResult",
    "EventsPage",
    "ExperimentRow",
    "ExperimentRun",
    "IncompleteExperimentError",
    "LLMObsClient",
    "Page",
    "RateLimiter",
    "RateLimiterStats",
    "RedisRateLimitStore",
    "RequestOptions",
    "RunProgress",
    "__version__",
    "errors",
    "experiments",
    "models",
    "pagination",
]
