"""Server process of the experiments benchmark: the fake API, faults on the events push.

``python benchmarks/experiments/server.py --records N [--big-records M] --latency S
--seed S --rates 0.05,0.03,0.02 [--intake-faults]`` announces ``PORT <n>`` and serves:

- every route of ``llmobs_async.testing.FakeLLMObsServer`` (its store, its checks, its
  ``latency`` on every request), also under ``/api/unstable/llm-obs/v1/...``, the prefix
  ddtrace's experiments client uses for projects, experiments and events;
- ``POST /api/v2/llmobs``: a minimal span intake. ddtrace sends an experiment's task spans
  there (its LLMObs span writer), not to the events endpoint; this keeps them by experiment;
- ``GET /_stats``: the seeded project and datasets;
- ``GET /_check/{experiment_id}?dataset=ID&runs=R``: what arrived for that experiment, against
  what should have (see :func:`check`).

Faults (``Chaos``: 503s, 429s with rate-limit headers, dropped connections) apply only to
``POST .../experiments/{id}/events``, and with ``--intake-faults`` to the span intake too.
Accepted pushes are counted from the recorded requests, which are then forgotten, so a
100,000-record run does not keep every body (this process's memory is not measured anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

import orjson
from aiohttp import web
from common import serve

from experiments.scenario import BIG_DATASET_NAME, DATASET_NAME, PROJECT_NAME, make_records
from llmobs_async.testing import Chaos, FakeLLMObsServer, RecordedRequest
from llmobs_async.testing._routes import ROUTES, V1

UNSTABLE = "/api/unstable/llm-obs/v1"
INTAKE = "/api/v2/llmobs"
ANSWERED_AFTER = 2.0
"""Seconds after which a recorded request has surely been answered (or dropped)."""


class Arrivals:
    """Per experiment: pushes by status, and how often each span and metric was accepted."""

    def __init__(self) -> None:
        self.statuses: collections.Counter[str] = collections.Counter()
        self.spans: collections.Counter[str] = collections.Counter()
        self.metrics: collections.Counter[tuple[str, str]] = collections.Counter()
        self.intake_spans: dict[str, dict[str, Any]] = {}


class Bench:
    """The fake, its fault scope, the span intake and the arrival counts."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.fake = FakeLLMObsServer(latency=args.latency)
        self.project_id = self.fake.add_project(name=PROJECT_NAME)
        self.datasets = {
            self.fake.add_dataset(
                project_id=self.project_id, name=DATASET_NAME, records=make_records(args.records)
            ): args.records
        }
        if args.big_records:
            big = make_records(args.big_records)
            big_id = self.fake.add_dataset(
                project_id=self.project_id, name=BIG_DATASET_NAME, records=big
            )
            self.datasets[big_id] = args.big_records
        intake = args.intake_faults

        def faulted(request: RecordedRequest) -> bool:
            path = request.url_path
            return request.method == "POST" and (
                path.endswith("/events") or bool(intake and path == INTAKE)
            )

        error, limited, dropped = args.rates
        self.fake.chaos = Chaos(
            error_rate=error,
            rate_limit_rate=limited,
            drop_rate=dropped,
            seed=args.seed,
            match=faulted,
        )
        self.arrivals: collections.defaultdict[str, Arrivals] = collections.defaultdict(Arrivals)

    def app(self) -> web.Application:
        """The fake's routes (and their ddtrace aliases), the intake, the stats and the check."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for method, path, call in ROUTES:
            # The fake's own handler (latency, faults, auth, store), on both prefixes.
            handler = self.fake._endpoint(call)
            app.router.add_route(method, path, handler)
            if path.startswith(V1):
                app.router.add_route(method, UNSTABLE + path.removeprefix(V1), handler)
        app.router.add_post(INTAKE, self.intake)
        app.router.add_get("/_stats", self.stats)
        app.router.add_get("/_check/{experiment_id}", self.check)
        return app

    async def trim(self) -> None:
        """Count the answered requests every half second, then forget them."""
        while True:
            await asyncio.sleep(0.5)
            self.count(time.monotonic() - ANSWERED_AFTER)

    def count(self, before: float) -> None:
        """Count (and drop) the recorded requests that arrived before ``before``."""
        requests = self.fake.requests
        upto = 0
        while upto < len(requests) and requests[upto].at < before:
            upto += 1
        for request in requests[:upto]:
            path = request.url_path
            if request.method != "POST" or not path.endswith("/events"):
                continue
            arrivals = self.arrivals[path.rsplit("/", 2)[-2]]
            arrivals.statuses[f"events {request.status or 'dropped'}"] += 1
            if request.status not in (200, 202):
                continue
            attributes = orjson.loads(request.body)["data"]["attributes"]
            for span in attributes.get("spans") or ():
                arrivals.spans[span["span_id"]] += 1
            for metric in attributes.get("metrics") or ():
                arrivals.metrics[metric["span_id"], metric["label"]] += 1
        del requests[:upto]

    async def intake(self, request: web.Request) -> web.StreamResponse:
        """ddtrace's span intake: a list of ``{"spans": [span event]}``, answered 202."""
        body = await request.read()
        seen = RecordedRequest(method=request.method, path=request.path, headers={}, body=b"")
        if self.fake.latency:
            await asyncio.sleep(self.fake.latency)
        fault = self.fake.chaos.draw(seen) if self.fake.chaos else None
        events = orjson.loads(body)
        spans = [span for event in events for span in event.get("spans", ())]
        experiments = {_tag(span, "experiment_id") for span in spans}
        status = "dropped" if fault and fault.drop else str(fault.status if fault else 202)
        for experiment_id in experiments:
            self.arrivals[experiment_id or "?"].statuses[f"intake {status}"] += 1
        if fault is not None and fault.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never sent: the connection is gone
        if fault is not None and fault.status is not None:
            return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
        for span in spans:
            arrivals = self.arrivals[_tag(span, "experiment_id") or "?"]
            arrivals.spans[span["span_id"]] += 1
            arrivals.intake_spans[span["span_id"]] = span
        return web.json_response({}, status=202)

    async def stats(self, request: web.Request) -> web.StreamResponse:
        """The seeded project and datasets (id -> record count)."""
        return web.json_response({"project_id": self.project_id, "datasets": self.datasets})

    async def check(self, request: web.Request) -> web.StreamResponse:
        """What arrived for one experiment: see :func:`check`."""
        self.count(float("inf"))
        experiment_id = request.match_info["experiment_id"]
        dataset_id = request.query["dataset"]
        runs = int(request.query.get("runs", "1"))
        result = check(self, experiment_id, dataset_id, runs)
        return web.Response(body=orjson.dumps(result), content_type="application/json")


def _tag(span: dict[str, Any], key: str) -> str:
    prefix = key + ":"
    for tag in span.get("tags") or ():
        if tag.startswith(prefix):
            return str(tag[len(prefix) :])
    return ""


def check(bench: Bench, experiment_id: str, dataset_id: str, runs: int) -> dict[str, Any]:
    """Rows and metrics stored for an experiment, against one span per (record, run).

    A span counts once per ``span_id`` (from the events endpoint or the intake); a row
    is a ``(dataset_record_id, run_iteration)`` from its tags. Every row must have
    exactly one span and every span exactly one metric per evaluator label; every span
    and metric must have been accepted exactly once.
    """
    from experiments.scenario import EVALUATORS

    events = bench.fake.events(experiment_id)
    arrivals = bench.arrivals[experiment_id]
    spans = {sid: s for sid, s in events.spans.items() if "tags" in s or "name" in s}
    spans.update(arrivals.intake_spans)
    rows: collections.Counter[tuple[str, str]] = collections.Counter()
    for span in spans.values():
        rows[_tag(span, "dataset_record_id"), _tag(span, "run_iteration")] += 1
    iterations = {key[1] for key in rows}
    expected = bench.datasets[dataset_id] * runs
    labels: collections.Counter[tuple[str, str]] = collections.Counter()
    orphans = 0
    for metric in events.metrics:
        if metric.get("metric_source") == "summary" or not metric["span_id"]:
            continue
        if metric["span_id"] not in spans:
            orphans += 1
        labels[metric["span_id"], metric["label"]] += 1
    wanted = [(sid, label) for sid in spans for label in EVALUATORS]
    rows_missing = max(expected - len(rows), 0)
    # A lost row's metrics are lost too, unless they arrived without their span (orphans).
    unaccounted = max(rows_missing * len(EVALUATORS) - orphans, 0)
    return {
        "rows_expected": expected,
        "rows": len(rows),
        "spans": len(spans),
        "run_iterations": sorted(iterations),
        "rows_missing": rows_missing,
        "rows_with_several_spans": sum(1 for n in rows.values() if n > 1),
        "metrics": len(events.metrics),
        "metrics_missing": sum(1 for key in wanted if labels[key] == 0) + unaccounted,
        "metrics_duplicated": sum(n - 1 for n in labels.values() if n > 1),
        "metrics_without_span": orphans,
        "spans_accepted_twice": sum(1 for n in arrivals.spans.values() if n > 1),
        "metrics_accepted_twice": sum(1 for n in arrivals.metrics.values() if n > 1),
        "pushes": dict(sorted(arrivals.statuses.items())),
        "status": bench.fake.experiments.get(experiment_id, {}).get("status"),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--big-records", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rates", type=lambda t: tuple(float(r) for r in t.split(",")), default=(0.05, 0.03, 0.02)
    )
    parser.add_argument("--intake-faults", action="store_true")
    bench = Bench(parser.parse_args())
    trimmer = asyncio.create_task(bench.trim())
    try:
        await serve(bench.app())
    finally:
        trimmer.cancel()


if __name__ == "__main__":
    asyncio.run(main())
