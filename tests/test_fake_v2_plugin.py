"""The pytest plugin: a user's three-line test against the fake, in strict and auto mode."""

from __future__ import annotations

import importlib
import sys

import pytest

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
