"""The pytest plugin: a user's three-line test against the fake, in strict and auto mode."""

from __future__ import annotations

import importlib
import sys

import pytest

from llmobs_async import LLMObsClient
from llmobs_async.testing import FakeLLMObsServer

pytest_plugins = ["pytester"]

USER_TEST = """
import pytest

{marker}
async def test_rename(llmobs_fake, llmobs_client):
    project_id = llmobs_fake.add_project(name="evals")
    await llmobs_client.projects.update(project_id, description="nightly")
    assert llmobs_fake.projects[project_id]["description"] == "nightly"


{marker}
async def test_a_fresh_fake_each_time(llmobs_fake, llmobs_client):
    assert llmobs_fake.projects == {{}}
    assert llmobs_client is not None and llmobs_fake.base_url.startswith("http://127.0.0.1:")
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_a_user_test_needs_only_the_fixtures(pytester: pytest.Pytester, mode: str) -> None:
    marker = "@pytest.mark.asyncio" if mode == "strict" else ""
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(test_user=USER_TEST.format(marker=marker))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


EXPERIMENT_TEST = """
import time
import uuid

from llmobs_async import models


async def test_an_experiment_end_to_end(llmobs_fake, llmobs_client):
    project_id, dataset_id = llmobs_fake.seed_dataset(
        [{"id": f"q{i}", "input": {"a": i, "b": i}, "expected_output": 2 * i} for i in range(5)]
    )
    experiment = await llmobs_client.experiments.create(project_id, dataset_id, "nightly")
    eid = experiment.id
    await llmobs_client.experiments.update(eid, status="running")
    spans, metrics, now_ms = [], [], int(time.time() * 1000)
    async for record in llmobs_client.records.list(project_id, dataset_id):
        output = record.input["a"] + record.input["b"] - (record.id == "q3")  # q3 is wrong
        span_id, trace_id = str(uuid.uuid4().int >> 64), uuid.uuid4().hex
        tags = [f"experiment_id:{eid}", f"dataset_record_id:{record.id}", "run_iteration:1"]
        spans.append(models.ExperimentSpan(
            span_id=span_id, trace_id=trace_id, name="add", project_id=project_id,
            dataset_id=dataset_id, start_ns=time.time_ns(), duration=1_000, status="ok",
            tags=tags, meta={"span.kind": "experiment", "input": record.input, "output": output,
                             "expected_output": record.expected_output},
        ))
        metrics.append(models.ExperimentMetric(
            span_id=span_id, trace_id=trace_id, label="exact", metric_type="boolean",
            boolean_value=output == record.expected_output, timestamp_ms=now_ms,
            metric_source="custom",
        ))
    metrics.append(models.ExperimentMetric(
        span_id="", trace_id="", label="accuracy", metric_type="score", score_value=0.8,
        timestamp_ms=now_ms, metric_source="summary", experiment_id=eid,
    ))
    await llmobs_client.experiments.events.create(eid, spans=spans, metrics=metrics)
    await llmobs_client.experiments.update(eid, status="completed")

    rows = {s.dataset_record_id: s async for s in llmobs_client.experiments.events.list(eid)}
    assert {rid: [m.boolean_value for m in r.eval_metrics] for rid, r in rows.items()} == {
        "q0": [True], "q1": [True], "q2": [True], "q3": [False], "q4": [True]
    }
    [page] = [p async for p in llmobs_client.experiments.events.list(eid).pages()]
    assert [(m.label, m.score_value) for m in page.summary_metrics] == [("accuracy", 0.8)]
    assert (await llmobs_client.experiments.get(eid)).status == "completed"
    events = llmobs_fake.events(eid)
    assert len(events.spans) == 5 and len(events.metrics) == 6
    assert events.duplicate_spans() == {} and events.duplicate_metrics() == {}
"""


def test_the_fixtures_run_a_whole_experiment(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(test_experiment=EXPERIMENT_TEST)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


async def test_seed_dataset_makes_its_project_once_and_the_records_read_back(
    llmobs_fake: FakeLLMObsServer, llmobs_client: LLMObsClient
) -> None:
    first = llmobs_fake.seed_dataset([{"id": "q1", "input": "2+2?", "expected_output": "4"}])
    second = llmobs_fake.seed_dataset(3, name="generated")
    assert first.project_id == second.project_id and list(llmobs_fake.projects) == [
        first.project_id
    ]
    [record] = [r async for r in llmobs_client.records.list(*first)]
    assert (record.id, record.input, record.expected_output) == ("q1", "2+2?", "4")
    assert len([r async for r in llmobs_client.records.list(*second)]) == 3
    assert llmobs_fake.seed_dataset(project_name="other").project_id != first.project_id


def test_the_plugin_is_loaded_by_its_entry_point(request: pytest.FixtureRequest) -> None:
    plugin = request.config.pluginmanager.get_plugin("llmobs_async")
    assert plugin is not None and plugin.__name__ == "llmobs_async.testing.pytest_plugin"
    assert {"llmobs_fake", "llmobs_client"} <= set(vars(plugin))


def test_without_pytest_asyncio_the_plugin_defines_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "llmobs_async.testing.pytest_plugin"
    monkeypatch.setitem(sys.modules, "pytest_asyncio", None)  # import now raises ImportError
    monkeypatch.delitem(sys.modules, name)
    bare = importlib.import_module(name)
    assert not hasattr(bare, "llmobs_fake") and not hasattr(bare, "llmobs_client")
