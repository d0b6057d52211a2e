"""Test helpers: a fake LLM Observability API to run your code against.

``FakeLLMObsServer`` listens on 127.0.0.1 (random port), keeps projects,
datasets (with versioned records), experiments and their events in memory,
implements every operation of the client with newest-first cursor pages,
checks auth and bodies like the API, and injects faults (statuses, 429 with
rate-limit headers, latency, dropped connections, HTML bodies) on demand.
See its docstring for an example. ``seed_dataset(records)`` seeds a
project and a dataset without HTTP; ``events(experiment_id)`` shows every
span and metric pushed to an experiment, duplicates included (an
:class:`ExperimentEvents`). With pytest and pytest-asyncio installed,
the fixtures ``llmobs_fake`` and ``llmobs_client`` are ready to use
(:mod:`llmobs_async.testing.pytest_plugin`). Recorded requests carry the
``key_fingerprint`` of their API key (never the key), so a test can tell
tenants apart. ``FakeProvider`` is an LLM provider (OpenAI and Anthropic
shapes) that enforces a fixed-window rate limit, for a task's rate limiter
(:meth:`LLMObsClient.rate_limiter <llmobs_async.LLMObsClient.rate_limiter>`).
"""

from .._ratelimit.gate import key_fingerprint
from ._events import ExperimentEvents
from ._faults import Chaos, Fault, FixedWindowLimit, RecordedRequest
from ._records import FakeDataset
from ._server import FakeLLMObsServer, SeededDataset
from .provider import FakeProvider

__all__ = [
    "Chaos",
    "ExperimentEvents",
    "FakeDataset",
    "FakeLLMObsServer",
    "FakeProvider",
    "Fault",
    "FixedWindowLimit",
    "RecordedRequest",
    "SeededDataset",
    "key_fingerprint",
]
