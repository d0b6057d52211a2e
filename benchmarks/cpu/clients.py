"""The three clients under test, behind one small interface.

Each adapter is an async context manager that opens its client against the
loopback server and hands out *calls*: zero-argument coroutine functions that
send one request and return how many items the response confirmed. Library
imports happen in ``__aenter__``, so a worker process loads only the library
it measures (a bigger heap would make the garbage collector slower for all).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import warnings
from collections.abc import Awaitable, Callable, Iterable
from types import SimpleNamespace
from typing import Any

from cpu.scenarios import DATASET_ID, EXPERIMENT_ID, METADATA, PROJECT_ID, STATUS, Scenario

PREFIX = "/api/v2/llm-obs/v1"
Call = Callable[[], Awaitable[int]]
# The official client's request models, by module under datadog_api_client.v2.model
# (imported one by one, as its examples do, not through the index of all 8,000 v2 models).
OFFICIAL_MODELS = {
    "LLMObsExperimentUpdateRequest": "llm_obs_experiment_update_request",
    "LLMObsExperimentUpdateDataRequest": "llm_obs_experiment_update_data_request",
    "LLMObsExperimentUpdateDataAttributesRequest": (
        "llm_obs_experiment_update_data_attributes_request"
    ),
    "LLMObsExperimentType": "llm_obs_experiment_type",
    "LLMObsExperimentStatus": "llm_obs_experiment_status",
    "LLMObsDatasetRecordsUpdateRequest": "llm_obs_dataset_records_update_request",
    "LLMObsDatasetRecordsUpdateDataRequest": "llm_obs_dataset_records_update_data_request",
    "LLMObsDatasetRecordsUpdateDataAttributesRequest": (
        "llm_obs_dataset_records_update_data_attributes_request"
    ),
    "LLMObsDatasetRecordUpdateItem": "llm_obs_dataset_record_update_item",
    "LLMObsRecordType": "llm_obs_record_type",
}


class BenchClient:
    """Base adapter: ``async with Adapter(url, concurrency) as c: call = c.call(...)``."""

    name = ""

    def __init__(self, url: str, concurrency: int, *, limit: bool = False) -> None:
        self.url = url
        self.concurrency = concurrency
        self.version = ""
        # Calls launched all at once: a client without a concurrency limit of its
        # own gets the semaphore its user would add; llmobs_async uses its own.
        self.limit = (
            asyncio.Semaphore(concurrency) if limit and self.name != "llmobs_async" else None
        )

    async def __aenter__(self) -> BenchClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def call(self, scenario: Scenario, records: list[dict[str, Any]]) -> Call:
        """Return the per-request call of a request scenario."""
        call = (
            self.experiment_call() if scenario.kind == "experiment" else self.records_call(records)
        )
        limit = self.limit
        if limit is None:
            return call

        async def limited() -> int:
            async with limit:
                return await call()

        return limited

    def experiment_call(self) -> Call:
        """One experiment update: ``status="completed", metadata={"run": 3}``."""
        raise NotImplementedError

    def records_call(self, records: list[dict[str, Any]]) -> Call:
        """One dataset-records update carrying ``records``."""
        raise NotImplementedError


class Floor(BenchClient):
    """Plain aiohttp: one session, bodies encoded once, ``json.loads`` of the answer."""

    name = "floor"

    async def __aenter__(self) -> Floor:
        import aiohttp

        self.version = f"aiohttp {aiohttp.__version__}"
        headers = {
            "DD-API-KEY": "k",
            "DD-APPLICATION-KEY": "a",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._session = aiohttp.ClientSession(headers=headers)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._session.close()

    async def _patch(self, url: str, body: bytes) -> Any:
        async with self._session.patch(url, data=body) as response:
            data = await response.read()
            if response.status != 200:
                raise RuntimeError(f"PATCH {url} answered {response.status}: {data[:200]!r}")
        return json.loads(data)

    def experiment_call(self) -> Call:
        """Pre-encoded experiment update; checks the echoed id."""
        url = f"{self.url}{PREFIX}/experiments/{EXPERIMENT_ID}"
        attributes = {"status": STATUS, "metadata": METADATA}
        body = json.dumps({"data": {"type": "experiments", "attributes": attributes}}).encode()

        async def call() -> int:
            document = await self._patch(url, body)
            return int(document["data"]["id"] == EXPERIMENT_ID)

        return call

    def records_call(self, records: list[dict[str, Any]]) -> Call:
        """Pre-encoded records update; counts the echoed records."""
        url = f"{self.url}{PREFIX}/{PROJECT_ID}/datasets/{DATASET_ID}/records"
        attributes = {"records": records}
        body = json.dumps({"data": {"type": "records", "attributes": attributes}}).encode()

        async def call() -> int:
            document = await self._patch(url, body)
            return len(document["data"])  # record resources, as the live API answers

        return call


class LLMObs(BenchClient):
    """This project's client, used as its README shows."""

    name = "llmobs_async"

    async def __aenter__(self) -> LLMObs:
        import llmobs_async

        self.version = f"llmobs_async {llmobs_async.__version__}"
        self._client = llmobs_async.LLMObsClient(
            api_key="k",
            app_key="a",
            base_url=self.url,
            max_concurrency=self.concurrency,
            max_retries=0,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.close()

    def experiment_call(self) -> Call:
        """``client.experiments.update(id, status=..., metadata=...)``; checks the id."""
        experiments = self._client.experiments

        async def call() -> int:
            experiment = await experiments.update(EXPERIMENT_ID, status=STATUS, metadata=METADATA)
            return int(experiment.id == EXPERIMENT_ID)

        return call

    def records_call(self, records: list[dict[str, Any]]) -> Call:
        """``client.records.update(project, dataset, records)``; counts the records."""
        client_records = self._client.records

        async def call() -> int:
            return len(await client_records.update(PROJECT_ID, DATASET_ID, records))

        return call

    # --- EXTENSION POINT: the streamed bulk update --------------------------------
    def has_update_many(self) -> bool:
        """Whether this version of llmobs_async has ``client.records.update_many``."""
        return callable(getattr(self._client.records, "update_many", None))

    async def update_many(self, records: Iterable[dict[str, Any]]) -> Any:
        """``await client.records.update_many(project, dataset, iterable)``: its BulkResult.

        The result has ``.applied``, ``.submitted`` and ``.ok``.
        """
        return await self._client.records.update_many(PROJECT_ID, DATASET_ID, records)


class Official(BenchClient):
    """``datadog-api-client`` in async mode (aiosonic), with its generated models."""

    name = "official"

    async def __aenter__(self) -> Official:
        from datadog_api_client import AsyncApiClient, Configuration
        from datadog_api_client import version as dd_version
        from datadog_api_client.v2.api.agent_observability_api import AgentObservabilityApi

        self.version = f"datadog-api-client {dd_version.__version__}"
        self._model = SimpleNamespace(
            **{
                name: getattr(
                    importlib.import_module(f"datadog_api_client.v2.model.{module}"), name
                )
                for name, module in OFFICIAL_MODELS.items()
            }
        )
        configuration = Configuration(host=self.url, api_key={"apiKeyAuth": "k", "appKeyAuth": "a"})
        self.configure(configuration)
        # Keys without the "v2." prefix: in 2.62.0 setting "v2.<op>" stores the
        # flag and then raises KeyError (_UnstableOperations.__setitem__).
        for operation in ("update_llm_obs_experiment", "update_llm_obs_dataset_records"):
            configuration.unstable_operations[operation] = True
        warnings.filterwarnings("ignore", "Using unstable operation", UserWarning)
        self._api_client = AsyncApiClient(configuration)
        await self._api_client.__aenter__()
        self._api = AgentObservabilityApi(self._api_client)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._api_client.__aexit__(None, None, None)

    def configure(self, configuration: Any) -> None:
        """Adjust the ``Configuration`` before the client opens (defaults: as is)."""

    def experiment_call(self) -> Call:
        """Build the request models per call, as a user would; checks the id."""
        m, api = self._model, self._api

        async def call() -> int:
            body = m.LLMObsExperimentUpdateRequest(
                data=m.LLMObsExperimentUpdateDataRequest(
                    type=m.LLMObsExperimentType.EXPERIMENTS,
                    attributes=m.LLMObsExperimentUpdateDataAttributesRequest(
                        status=m.LLMObsExperimentStatus.COMPLETED, metadata=METADATA
                    ),
                )
            )
            response = await api.update_llm_obs_experiment(experiment_id=EXPERIMENT_ID, body=body)
            return int(response.data.id == EXPERIMENT_ID)

        return call

    def records_call(self, records: list[dict[str, Any]]) -> Call:
        """Build one update item per record per call; counts the echoed records."""
        m, api = self._model, self._api

        async def call() -> int:
            items = [
                m.LLMObsDatasetRecordUpdateItem(
                    id=record["id"],
                    input=record["input"],
                    expected_output=record["expected_output"],
                    metadata=record["metadata"],
                )
                for record in records
            ]
            body = m.LLMObsDatasetRecordsUpdateRequest(
                data=m.LLMObsDatasetRecordsUpdateDataRequest(
                    type=m.LLMObsRecordType.RECORDS,
                    attributes=m.LLMObsDatasetRecordsUpdateDataAttributesRequest(records=items),
                )
            )
            response = await api.update_llm_obs_dataset_records(
                project_id=PROJECT_ID, dataset_id=DATASET_ID, body=body
            )
            # The live API's record resources are not the spec's {"records": [...]}
            # items: the generated client keeps each as an UnparsedObject.
            return len(response.data)

        return call


ADAPTERS: dict[str, type[BenchClient]] = {cls.name: cls for cls in (Floor, LLMObs, Official)}
