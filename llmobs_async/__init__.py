"""llmobs_async: an async-first client for the Datadog LLM Observability API.

>>> async with LLMObsClient() as client:  # doctest: +SKIP
...     exp = await client.experiments.update(exp_id, status="completed")
"""

from . import errors, models
from ._bulk import BulkFailure, BulkInterruptedError, BulkProgress, BulkResult
from ._client import LLMObsClient
from ._config import SITES
from ._redis_store import RedisRateLimitStore
from ._version import __version__
from .models import UNSET

__all__ = [
    "SITES",
    "UNSET",
    "BulkFailure",
    "BulkInterruptedError",
    "BulkProgress",
    "BulkResult",
    "LLMObsClient",
    "RedisRateLimitStore",
    "__version__",
    "errors",
    "models",
]
