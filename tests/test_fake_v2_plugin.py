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
async def add(input_data, config):
    return input_data["a"] + input_data["b"] - (input_data["a"] == 3)  # record q3 is wrong


def exact(input_data, output_data, expected_output):
    return output_data == expected_output


def judge(input_data, output_data, expected_output):
    if input_data["a"] == 4:
        raise TimeoutError("the judge timed out")
    return 0.5


def accuracy(inputs, outputs, expected_outputs, evaluators_results):
    return sum(evaluators_results["exact"]) / len(inputs)


async def test_an_experiment_end_to_end(llmobs_fake, llmobs_client):
    project_id, dataset_id = llmobs_fake.seed_dataset(
        [{"id": f"q{i}", "input": {"a": i, "b": i}, "expected_output": 2 * i} for i in range(5)]
    )
    run = await llmobs_client.experiments.run(
        project_id, dataset_id, "nightly", task=add, evaluators=[exact, judge],
        summary_evaluators=[accuracy], runs=2,
    )
    assert run.ok and run.summary == {"accuracy": 0.8} and run.rows_done == 10
    assert (run.pushed.applied, run.pushed.failed) == (10 + 20 + 1, [])

    rows = {(r.record_id, r.run_iteration): r async for r in run.rows()}
    assert len(rows) == 10
    assert [rows["q3", 2].evaluations["exact"], rows["q1", 1].evaluations["judge"]] == [False, 0.5]
    assert rows["q4", 1].evaluations["judge"] is None
    assert rows["q4", 1].evaluation_errors["judge"]["message"] == "the judge timed out"

    events = llmobs_fake.events(run.experiment.id)
    assert len(events.spans) == 10 and len(events.metrics) == 21
    assert (events.duplicate_spans(), events.duplicate_rows(), events.duplicate_metrics()) == (
        {}, {}, {}
    )
    [summary] = events.summary_metrics()
    assert (summary["label"], summary["score_value"], summary["metric_source"]) == (
        "accuracy", 0.8, "summary"
    )
    assert llmobs_fake.experiments[run.experiment.id]["status"] == "completed"
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
