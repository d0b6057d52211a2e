"""FakeLLMObsServer: the LLM Observability API on 127.0.0.1, in memory."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, NamedTuple

from aiohttp import web

from ._events import ExperimentEvents
from ._faults import (
    HTML_PAGE,
    Chaos,
    Fault,
    FixedWindowLimit,
    RecordedRequest,
    error_body,
    rate_limit_fault,
)
from ._http import (
    BODILESS,
    RECORD_ROUTES,
    decode_body,
    raw_response,
    record_ids,
    recorded,
    status_title,
)
from ._records import FakeDataset
from ._routes import ROUTES, UPLOAD, Call
from ._store import FakeStore
from ._upload import Multipart
from ._wire import ApiFault, Reply


class SeededDataset(NamedTuple):
    """The ids :meth:`FakeLLMObsServer.seed_dataset` made: what ``experiments.run`` takes."""

    project_id: str
    dataset_id: str


class FakeLLMObsServer:
    """A fake of the Datadog LLM Observability API for tests, on a random loopback port.

    It checks the ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` headers (401 when
    missing, 403 when wrong; :meth:`add_keys` accepts more pairs, e.g. one per
    tenant), validates bodies as the API does (400 with a
    JSON pointer, 404 for unknown ids), implements every operation of the
    client (projects, datasets, versioned records, experiments, events) with
    newest-first cursor pages, answers in the live API's shapes (empty fields
    left out, records as ``datasets`` resources with ``tags``,
    ``canonical_id`` and ``version``, an experiment PATCH answered 200 with an
    empty body), records every request, and injects faults on demand::

        async with FakeLLMObsServer() as fake:
            project_id = fake.add_project()
            fake.inject(status=503, times=2)          # the next two requests fail
            async with LLMObsClient(base_url=fake.base_url,
                                    api_key=fake.api_key, app_key=fake.app_key) as client:
                await client.projects.update(project_id, name="renamed")
            assert fake.projects[project_id]["name"] == "renamed"
    """

    def __init__(
        self,
        *,
        api_key: str = "fake-api-key",
        app_key: str = "fake-app-key",
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: tuple[int, float] | None = None,
        max_body_bytes: int = 5 * 1024 * 1024 + 64 * 1024,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.app_key = app_key
        self._extra_keys: set[tuple[str, str]] = set()
        self.store = FakeStore()
        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order."""
        self.max_in_flight = 0
        """The most requests the server was handling at once."""
        self.max_body_bytes = max_body_bytes
        """JSON bodies larger than this are answered 413 (a file upload is limited only
        by the server's 64 MB)."""
        self.rate_limit: FixedWindowLimit | None = (
            FixedWindowLimit(*rate_limit) if rate_limit else None
        )
        self.rate_limited: Callable[[RecordedRequest], bool] | None = None
        """Which requests ``rate_limit`` counts (``None``: all). The live API limits
        endpoints apart, e.g. reading datasets apart from writing records."""
        self.chaos: Chaos | None = None
        self.latency = latency
        """Seconds every request takes to be served (a service time), before any fault."""
        self._faults: list[Fault] = []
        self._in_flight = 0
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        """``http://127.0.0.1:PORT``, set once the server has started."""

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> FakeLLMObsServer:
        """Start listening; ``base_url`` is set afterwards. On a started server, nothing."""
        if self._runner is not None:
            return self  # a second runner would listen too, and never be stopped
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for method, path, call in ROUTES:
            app.router.add_route(method, path, self._endpoint(call))
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            # A handler whose client went away (cancelled, timed out) stops,
            # and stop() does not wait for slow handlers: tests stay fast.
            handler_cancellation=True,
            shutdown_timeout=0.1,
        )
        runner = self._runner
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:  # a busy port: nothing may stay set up behind the error
            self._runner = None
            await runner.cleanup()
            raise
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        """Stop the server and drop its connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeLLMObsServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- state -------------------------------------------------------------------

    @property
    def projects(self) -> dict[str, dict[str, Any]]:
        """Projects by id, as attribute dicts."""
        return self.store.projects

    @property
    def experiments(self) -> dict[str, dict[str, Any]]:
        """Experiments by id, as attribute dicts (soft-deleted ones have ``deleted_at``)."""
        return self.store.experiments

    @property
    def datasets(self) -> dict[str, FakeDataset]:
        """Datasets by id: ``attributes``, ``version``, ``versions`` and ``records``."""
        return self.store.datasets

    @property
    def experiment_patch_echo(self) -> bool:
        """Answer an experiment PATCH with the resource, as older fakes did.

        ``False`` (the default) answers 200 with an empty body, as the live API does.
        """
        return self.store.experiment_patch_echo

    @experiment_patch_echo.setter
    def experiment_patch_echo(self, value: bool) -> None:
        self.store.experiment_patch_echo = value

    def lag_experiment_lists(self, reads: int) -> None:
        """Make the next ``reads`` experiment lists show the experiments as they are now.

        The live list is index-backed and lags writes: a PATCH made after this
        call (or an experiment added) shows in a list only from the
        ``reads + 1``-th read on; until then the list shows the old values
        (or leaves a new experiment out). ``0`` ends the lag.
        """
        snapshot = copy.deepcopy(self.store.experiments)
        self.store.experiment_list_lag = (snapshot, reads) if reads > 0 else None

    def lag_event_lists(self, reads: int) -> None:
        """Make the next ``reads`` events lists (pages) show the events as they are now.

        As :meth:`lag_experiment_lists`: spans and metrics pushed after this
        call show from the ``reads + 1``-th read on. ``0`` ends the lag.
        :meth:`events` always shows everything pushed.
        """
        snapshot = copy.deepcopy(self.store.events)
        self.store.event_list_lag = (snapshot, reads) if reads > 0 else None

    def events(self, experiment_id: str) -> ExperimentEvents:
        """The spans and metrics pushed to an experiment."""
        return self.store.events_of(experiment_id)

    def add_project(self, **kwargs: Any) -> str:
        """Seed a project (``id``, ``name``, ``description``); return its id."""
        return self.store.add_project(**kwargs)

    def add_experiment(self, **kwargs: Any) -> str:
        """Seed an experiment (``project_id`` required); return its id."""
        return self.store.add_experiment(**kwargs)

    def add_dataset(
        self,
        *,
        project_id: str,
        id: str | None = None,
        records: Iterable[Mapping[str, Any]] | int = (),
        **attributes: Any,
    ) -> str:
        """Seed a dataset with records (dicts, or a count to generate); return its id.

        ``attributes``: ``name``, ``description``, ``metadata``. 100,000
        generated records take about a second.
        """
        return self.store.add_dataset(project_id=project_id, id=id, records=records, **attributes)

    def seed_dataset(
        self,
        records: Iterable[Mapping[str, Any]] | int = 10,
        *,
        project_name: str = "My LLM Project",
        **attributes: Any,
    ) -> SeededDataset:
        """Seed a dataset and its project in one call, without HTTP; return both ids.

        The project is found by ``project_name`` or made (as the API's
        get-or-create); ``records`` and ``attributes`` are those of
        :meth:`add_dataset`: record dicts (``id``, ``input``,
        ``expected_output``, ``metadata``, ``tags``) or a count to generate::

            project_id, dataset_id = fake.seed_dataset(
                [{"id": "q1", "input": {"question": "2+2?"}, "expected_output": "4"}]
            )
        """
        project_id = next(
            (pid for pid, p in self.projects.items() if p.get("name") == project_name), None
        ) or self.add_project(name=project_name)
        dataset_id = self.add_dataset(project_id=project_id, records=records, **attributes)
        return SeededDataset(project_id, dataset_id)

    def add_records(self, dataset_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Seed records (``id`` optional) into a dataset, as one new version."""
        self.store.add_records(dataset_id, records)

    def records(self, dataset_id: str) -> dict[str, dict[str, Any]]:
        """The records of a dataset's current version, by id."""
        return self.store.datasets[dataset_id].records

    def add_keys(self, api_key: str, app_key: str) -> None:
        """Also accept this key pair, as another org or tenant of the same API would.

        ``api_key``/``app_key`` stay accepted; every added pair works alongside
        them (the fake keeps one store: tenants see the same data).
        """
        self._extra_keys.add((api_key, app_key))

    def requests_to(self, path_part: str) -> list[RecordedRequest]:
        """Recorded requests whose path contains ``path_part``."""
        return [r for r in self.requests if path_part in r.path]

    # --- faults --------------------------------------------------------------------

    def inject(
        self,
        *,
        status: int | None = None,
        body: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        drop: bool = False,
        times: int | None = 1,
        match: Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
        applied: bool = False,
    ) -> Fault:
        """Misbehave on the next ``times`` matching requests (``None``: forever).

        ``status`` without ``body`` sends a JSON:API error body for that status;
        ``body`` may be bytes, text or a JSON-able mapping. Faults apply in the
        order injected; a request takes at most one. ``after`` lets that many
        matching requests through first, e.g. to fail the third page of a pull::

            fake.inject(status=503, after=2, match=lambda r: r.url_path.endswith("/records"))

        ``applied=True`` carries the request out before the fault replaces its
        answer (or drops the connection): the write landed, its answer was lost.
        """
        if isinstance(body, Mapping):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        if status is not None and body is None:
            body = error_body(status, status_title(status))
        fault = Fault(
            status=status,
            body=body,
            headers=dict(headers or {}),
            delay=delay,
            drop=drop,
            times=times,
            match=match,
            after=after,
            applied=applied,
        )
        self._faults.append(fault)
        return fault

    def inject_rate_limit(
        self,
        *,
        times: int | None = 1,
        reset: float = 0.1,
        limit: int = 60,
        period: float = 60.0,
        match: Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
    ) -> Fault:
        """Answer 429 with ``X-RateLimit-*`` headers asking to wait ``reset`` seconds.

        ``limit`` and ``period`` are the advertised limit: a client that paces
        itself will keep to ``limit`` requests per ``period`` afterwards.
        ``times``, ``match`` and ``after`` work as in :meth:`inject`: the next
        ``times`` requests for which ``match`` is true (``None``: every
        request) get it, once ``after`` of them went through.
        """
        fault = rate_limit_fault(reset=reset, limit=limit, period=period)
        fault.times = times
        fault.match = match
        fault.after = after
        self._faults.append(fault)
        return fault

    def inject_html(
        self,
        *,
        status: int = 502,
        times: int | None = 1,
        match: Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
        applied: bool = False,
    ) -> Fault:
        """Answer an HTML error page, as a proxy or load balancer would (``status=200`` too)."""
        return self.inject(
            status=status,
            body=HTML_PAGE,
            headers={"Content-Type": "text/html"},
            times=times,
            match=match,
            after=after,
            applied=applied,
        )

    def reject_record(self, record_id: str, *, status: int = 400) -> Fault:
        """Refuse, forever, every records request that names ``record_id``.

        Records requests are the records PATCH, create and delete, and
        ``batch_update``; a record is named by its ``id`` or in an id list.
        """
        return self.inject(
            status=status,
            body=error_body(status, status_title(status), f"record {record_id} is invalid"),
            times=None,
            match=lambda r: r.url_path.endswith(RECORD_ROUTES) and record_id in record_ids(r.body),
        )

    def clear_faults(self) -> None:
        """Forget injected faults and chaos."""
        self._faults.clear()
        self.chaos = None

    # --- HTTP -------------------------------------------------------------------

    def _endpoint(self, call: Call) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._handle(
                request, lambda doc: call(self.store, request.match_info, request.query, doc)
            )

        return handler

    async def _handle(
        self, request: web.Request, apply: Callable[[Any], Reply]
    ) -> web.StreamResponse:
        body = await request.read()
        seen = recorded(request, body)
        self.requests.append(seen)
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            response = await self._answer(request, seen, apply)
        finally:
            self._in_flight -= 1
        if response is None:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never sent: the connection is gone
        seen.status = response.status
        return response

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        seen = recorded(request, await request.read())
        seen.status = 404
        self.requests.append(seen)
        return raw_response(404, error_body(404, "Not Found", "no such endpoint"), {})

    async def _answer(
        self, request: web.Request, seen: RecordedRequest, apply: Callable[[Any], Reply]
    ) -> web.Response | None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        fault = next((f for f in self._faults if f.take(seen)), None)
        if fault is None and self.chaos is not None:
            fault = self.chaos.draw(seen)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.applied:
                self._carry_out(request, seen, apply)
            if fault.drop:
                return None
            if fault.status is not None:
                return raw_response(fault.status, fault.body or b"", fault.headers)
        limit_headers: Mapping[str, str] = {}
        if self.rate_limit is not None and (self.rate_limited is None or self.rate_limited(seen)):
            allowed, limit_headers = self.rate_limit.admit()
            if not allowed:
                return raw_response(429, b'{"errors":["Too many requests"]}', limit_headers)
        try:
            self._authenticate(request)
            if len(seen.body) > self.max_body_bytes and not seen.url_path.endswith(UPLOAD):
                raise ApiFault(413, "Payload Too Large", "request body too large")
            if request.method in BODILESS:
                doc = None
            elif request.content_type == "multipart/form-data":
                doc = Multipart(seen.body, request.headers["Content-Type"])
            else:
                doc = decode_body(seen.body)
            answer = apply(doc)
        except ApiFault as fault_:
            return raw_response(fault_.status, json.dumps(fault_.body).encode(), limit_headers)
        if answer.content_type != "application/json":
            limit_headers = {**limit_headers, "Content-Type": answer.content_type}
        return raw_response(answer.status, answer.encode(), limit_headers)

    def _carry_out(
        self, request: web.Request, seen: RecordedRequest, apply: Callable[[Any], Reply]
    ) -> None:
        """Apply a request whose answer a fault replaces (what it would have answered is lost)."""
        try:
            self._authenticate(request)
            apply(None if request.method in BODILESS else decode_body(seen.body))
        except ApiFault:
            pass

    def _authenticate(self, request: web.Request) -> None:
        api_key = request.headers.get("DD-API-KEY")
        app_key = request.headers.get("DD-APPLICATION-KEY")
        if not api_key or not app_key:
            raise ApiFault(401, "Unauthorized", "missing API key or application key")
        pair = (api_key, app_key)
        if pair != (self.api_key, self.app_key) and pair not in self._extra_keys:
            raise ApiFault(403, "Forbidden", "invalid API key or application key")
        if request.method in BODILESS or request.content_type == "application/json":
            return
        if request.content_type == "multipart/form-data" and request.path.endswith(UPLOAD):
            return
        raise ApiFault(415, "Unsupported Media Type", "Content-Type must be application/json")
