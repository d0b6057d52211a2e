"""Test helpers: a fake LLM Observability API to run your code against.

``FakeLLMObsServer`` listens on 127.0.0.1 (random port), keeps projects,
experiments and datasets in memory, checks auth and bodies like the API,
and injects faults (statuses, 429 with rate-limit headers, latency, dropped
connections, HTML bodies) on demand. See its docstring for an example.
"""

from ._faults import Chaos, Fault, FixedWindowLimit, RecordedRequest
from ._server import FakeLLMObsServer

__all__ = ["Chaos", "FakeLLMObsServer", "Fault", "FixedWindowLimit", "RecordedRequest"]
