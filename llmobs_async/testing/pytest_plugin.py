"""Pytest fixtures to test code against the fake API: ``llmobs_fake`` and ``llmobs_client``.

Installed with the package as the ``llmobs_async`` plugin (a ``pytest11``
entry point), so a test needs no conftest::

    async def test_rename(llmobs_fake, llmobs_client):
        project_id = llmobs_fake.add_project(name="evals")
        await llmobs_client.projects.update(project_id, description="nightly")
        assert llmobs_fake.projects[project_id]["description"] == "nightly"

A whole experiment needs no more: seed a dataset without HTTP with
``llmobs_fake.seed_dataset(records)`` (it returns the project and dataset
ids), run the experiment through ``llmobs_client``, and check what reached
the API with ``llmobs_fake.events(experiment_id)`` (every span and metric
pushed, ``duplicate_spans()``, ``duplicate_metrics()``).

The fixtures are async, made with pytest-asyncio, so they work in its
``auto`` and ``strict`` modes (in ``strict`` mode, mark the test
``@pytest.mark.asyncio``). Without pytest-asyncio installed the plugin
defines nothing. Disable it with ``-p no:llmobs_async``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from .. import LLMObsClient
from ._server import FakeLLMObsServer

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised by a test that hides pytest_asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def llmobs_fake() -> AsyncIterator[FakeLLMObsServer]:
        """A started :class:`~llmobs_async.testing.FakeLLMObsServer` with no data, stopped after."""
        async with FakeLLMObsServer() as fake:
            yield fake

    @pytest_asyncio.fixture
    async def llmobs_client(llmobs_fake: FakeLLMObsServer) -> AsyncIterator[LLMObsClient]:
        """An ``LLMObsClient`` bound to ``llmobs_fake`` (its URL and keys), closed after."""
        async with LLMObsClient(
            base_url=llmobs_fake.base_url, api_key=llmobs_fake.api_key, app_key=llmobs_fake.app_key
        ) as client:
            yield client
