"""ddtrace worker of the experiments benchmark: the same experiment through ddtrace.

Runs with ddtrace's own venv's Python (``.venv-ddtrace``, see run.py: ddtrace is not a
dependency of this project), never imports llmobs_async. ``DD_LLMOBS_OVERRIDE_ORIGIN``
points ddtrace's experiments client (projects, datasets, experiments, metrics) and its
span writer (task spans, to ``/api/v2/llmobs``) at the benchmark's server. Prints one
JSON line as the other worker does.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import worker_main

from experiments.scenario import DATASET_NAME, PROJECT_NAME, answer, closeness, exact_match


def environment(url: str) -> dict[str, str]:
    """What ddtrace needs to run agentless against the loopback server, and nothing else."""
    return {
        "DD_LLMOBS_OVERRIDE_ORIGIN": url,
        "DD_API_KEY": "fake-api-key",
        "DD_APP_KEY": "fake-app-key",
        "DD_LLMOBS_AGENTLESS_ENABLED": "1",
        "DD_LLMOBS_ML_APP": "bench",
        # No agent runs here: no APM traces, telemetry, remote config or profiling to send.
        "DD_APM_TRACING_ENABLED": "false",
        "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
        "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        "DD_TRACE_STARTUP_LOGS": "false",
        "DD_LLMOBS_PROJECT_NAME": PROJECT_NAME,
    }


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Pull the dataset and run ``LLMObs.async_experiment``; time both (and the final flush)."""
    os.environ.update(environment(spec["url"]))
    os.environ.update(spec.get("env") or {})  # e.g. to try other ddtrace settings
    import ddtrace
    from ddtrace.llmobs import LLMObs

    LLMObs.enable(agentless_enabled=True, project_name=PROJECT_NAME)
    try:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu, wall = time.process_time(), time.monotonic()
        # pull_dataset and the experiment's own HTTP calls block: run them off the loop's
        # thread would change nothing here (nothing else runs), so they run as a user would.
        dataset = LLMObs.pull_dataset(dataset_name=DATASET_NAME, project_name=PROJECT_NAME)
        experiment = LLMObs.async_experiment(
            "ddtrace",
            answer,
            dataset,
            [exact_match, closeness],
            project_name=PROJECT_NAME,
        )
        result = await experiment.run(jobs=spec["concurrency"])
        LLMObs.flush()  # the span writer's buffer: the last spans go out now
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    finally:
        LLMObs.disable()
    rows = result["rows"]
    return {
        "experiment_id": experiment._id,
        "ddtrace": ddtrace.__version__,
        "rows_done": len(rows),
        "task_errors": sum(1 for r in rows if (r.get("error") or {}).get("message")),
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_growth_mib": rss_growth / 1024,
    }


if __name__ == "__main__":
    sys.exit(worker_main(run, sys.argv))
