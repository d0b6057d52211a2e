"""The rate gate against the real fake server: per org and named limit, at send time, capped.

Every test reads what the server saw (``fake.requests``: method, path, status and
the monotonic arrival time ``at``) and what the calls returned. Waits are
sub-second and every call that could hang is bounded by ``asyncio.wait_for``,
so a gate that parks a request fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.models import Project
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .conftest import client_for

T = TypeVar("T")

OTHER_API_KEY = "tenant-b-api-key"
OTHER_APP_KEY = "tenant-b-app-key"
ZONELESS_DATE = "Wed, 21 Oct 2015 07:28:00 -0000"
FAR_DATE = "Fri, 01 Jan 2100 00:00:00 GMT"
TOLERANCE = 0.02
"""Timers may fire this much early; the gate measures from the answer, later than ``at``."""


async def bounded(call: Awaitable[T], seconds: float = 2.0) -> T:
    """``call``, or a TimeoutError if a parked request would stall the test."""
    return await asyncio.wait_for(call, seconds)


async def settle(call: Awaitable[T], seconds: float = 2.0) -> T | errors.LLMObsError | TimeoutError:
    """What ``call`` returned, the library error it raised, or TimeoutError if it was parked."""
    try:
        return await bounded(call, seconds)
    except (errors.LLMObsError, TimeoutError) as exc:
        return exc


def on(path_part: str) -> Any:
    """A fault ``match`` for requests whose path holds ``path_part``."""
    return lambda request: path_part in request.path


def after(fake: FakeLLMObsServer, first: RecordedRequest) -> list[RecordedRequest]:
    """The requests that arrived after ``first``."""
    return fake.requests[fake.requests.index(first) + 1 :]


def sent_name(request: RecordedRequest) -> str:
    """The ``name`` a project update sent."""
    name: str = request.json()["data"]["attributes"]["name"]
    return name


def statuses(fake: FakeLLMObsServer) -> list[int]:
    return [r.status for r in fake.requests]


def limit_headers(**values: str) -> dict[str, str]:
    """Datadog's ``X-RateLimit-*`` headers, by suffix: ``limit_headers(Remaining="0")``."""
    return {f"X-RateLimit-{name}": value for name, value in values.items()}


def answer_project(
    fake: FakeLLMObsServer, project_id: str, headers: Mapping[str, str], *, times: int | None
) -> None:
    """Answer updates of ``project_id`` with a 200 project carrying ``headers``."""
    body = {"data": {"id": project_id, "type": "projects", "attributes": {"name": "n"}}}
    fake.inject(status=200, body=body, headers=headers, times=times, match=on(project_id))


# --- the fake's extra key pairs ------------------------------------------------------------------


async def test_fake_accepts_added_key_pairs_and_still_refuses_others() -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.add_keys(OTHER_API_KEY, OTHER_APP_KEY)
        async with client_for(fake) as client:
            tenant_b = client.with_options(api_key=OTHER_API_KEY, app_key=OTHER_APP_KEY)
            await client.projects.update(project_id, name="from a")
            await tenant_b.projects.update(project_id, name="from b")
            mixed = client.with_options(app_key=OTHER_APP_KEY)  # a pair never added
            with pytest.raises(errors.PermissionDeniedError):
                await mixed.projects.update(project_id, name="x")
        assert statuses(fake) == [200, 200, 403]
        assert fake.projects[project_id]["name"] == "from b"


# --- 1. per org: one tenant's 429 never delays another's -----------------------------------------


async def test_a_429_for_one_tenants_keys_does_not_delay_another_tenant() -> None:
    async with FakeLLMObsServer() as fake:
        fake.add_keys(OTHER_API_KEY, OTHER_APP_KEY)
        project_a, project_b = fake.add_project(), fake.add_project()
        fake.inject_rate_limit(reset=1.0, limit=60, period=60, match=on(project_a))
        async with client_for(fake) as tenant_a:
            tenant_b = tenant_a.with_options(api_key=OTHER_API_KEY, app_key=OTHER_APP_KEY)
            with pytest.raises(errors.RateLimitError):
                await tenant_a.with_options(max_retries=0).projects.update(project_a, name="a0")
            limited = fake.requests[-1]
            assert limited.status == 429
            # Tenant B writes both projects (tenant A's route too: the fake keeps one
            # store) while tenant A's org is paused for a second.
            await bounded(
                asyncio.gather(
                    tenant_a.projects.update(project_a, name="a1"),
                    *(tenant_b.projects.update(project_b, name=f"b{i}") for i in range(3)),
                    *(tenant_b.projects.update(project_a, name=f"ba{i}") for i in range(2)),
                )
            )
        later = after(fake, limited)
        assert [r.status for r in later] == [200] * 6
        delays = {sent_name(r): round(r.at - limited.at, 3) for r in later}
        # Tenant B's requests at once, both routes; tenant A's only after its Reset.
        assert max(d for name, d in delays.items() if name.startswith("b")) < 0.25, delays
        assert delays["a1"] >= 1.0 - TOLERANCE, delays


# --- 2. per named limit --------------------------------------------------------------------------


async def test_a_named_limit_pauses_its_endpoints_and_no_other() -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        dataset_id = fake.add_dataset(project_id=project_id, records=1)
        experiment_id = fake.add_experiment(project_id=project_id, dataset_id=dataset_id)
        resource = {"type": "x", "attributes": {"name": "n"}}
        endpoints = {  # path part: (limit name, answer body, one call)
            "/projects/": ("a", {"data": {"id": project_id, **resource}}),
            "/records": ("b", {"data": [{"id": "rec-0", **resource}]}),
            "/experiments/": ("a", {"data": {"id": experiment_id, **resource}}),
        }

        def name_endpoints() -> None:
            for part, (name, body) in endpoints.items():
                headers = {"X-RateLimit-Name": name}
                fake.inject(status=200, body=body, headers=headers, times=None, match=on(part))

        def call(client: LLMObsClient, part: str, value: str) -> Awaitable[Any]:
            if part == "/projects/":
                return client.projects.update(project_id, name=value)
            if part == "/records":
                return client.records.update(project_id, dataset_id, [{"id": "r", "input": value}])
            return client.experiments.update(experiment_id, name=value)

        name_endpoints()
        async with client_for(fake) as client:
            for part in endpoints:  # the answers teach the client each endpoint's limit
                await call(client, part, "learn")
            # A 429 under "a" on projects (faults apply in injection order).
            fake.clear_faults()
            fake.inject(
                status=429,
                headers=limit_headers(
                    Limit="60", Period="60", Remaining="0", Reset="0.5", Name="a"
                ),
                match=on("/projects/"),
            )
            name_endpoints()
            with pytest.raises(errors.RateLimitError):
                await call(client.with_options(max_retries=0), "/projects/", "x")
            limited = fake.requests[-1]
            assert limited.status == 429
            await bounded(
                asyncio.gather(
                    *(call(client, "/records", f"b{i}") for i in range(3)),
                    call(client, "/experiments/", "shared"),
                    call(client, "/projects/", "same"),
                )
            )
        later = after(fake, limited)
        assert [r.status for r in later] == [200] * 5
        waited = {p: [round(r.at - limited.at, 2) for r in later if p in r.path] for p in endpoints}
        assert max(waited["/records"]) < 0.25, waited  # name "b": not paused
        assert min(waited["/experiments/"]) >= 0.5 - TOLERANCE, waited  # "a": one shared pause
        assert min(waited["/projects/"]) >= 0.5 - TOLERANCE, waited


# --- 3. the gate is passed at send time ----------------------------------------------------------


@pytest.mark.parametrize(
    "rate_limited",
    [
        {"Retry-After": "0.5"},
        limit_headers(Limit="60", Period="60", Remaining="0", Reset="0.5", Name="n"),
    ],
    ids=["retry-after", "ratelimit-reset"],
)
async def test_requests_waiting_for_a_slot_obey_a_pause_that_began_meanwhile(
    rate_limited: dict[str, str],
) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        async with client_for(fake, max_concurrency=1) as client:
            await client.projects.update(project_id, name="warm")  # room known: no probing
            fake.inject(status=429, headers=rate_limited)
            started = len(fake.requests)
            results = await bounded(
                asyncio.gather(
                    *(client.projects.update(project_id, name=f"n{i}") for i in range(10))
                )
            )
        assert [p.name for p in results] == [f"n{i}" for i in range(10)]
        limited, *later = fake.requests[started:]
        assert limited.status == 429
        assert [r.status for r in later] == [200] * 10
        early = [round(r.at - limited.at, 3) for r in later if r.at - limited.at < 0.5 - TOLERANCE]
        assert not early, f"sent during the 0.5 s pause, at {early}"


async def test_requests_requeued_by_a_pause_keep_their_order() -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        async with client_for(fake, max_concurrency=1) as client:
            await client.projects.update(project_id, name="warm")
            fake.inject(status=429, headers={"Retry-After": "0.2"})
            started = len(fake.requests)
            await bounded(
                asyncio.gather(
                    *(client.projects.update(project_id, name=f"n{i}") for i in range(6))
                )
            )
        sent = [sent_name(r) for r in fake.requests[started:]]
        # n0 was answered 429; the others were granted and waiting for the one slot.
        assert sent[0] == "n0"
        after_pause = [name for name in sent[1:] if name != "n0"]
        assert after_pause == [f"n{i}" for i in range(1, 6)], sent


# --- 4. a cancelled waiter gives its turn back ---------------------------------------------------


async def test_cancelled_waiters_do_not_delay_a_later_call() -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.inject_rate_limit(reset=0.5, limit=10, period=1.0)
        async with client_for(fake) as client:
            with pytest.raises(errors.RateLimitError):
                await client.with_options(max_retries=0).projects.update(project_id, name="x")
            limited = fake.requests[-1]
            queued = [
                asyncio.create_task(client.projects.update(project_id, name=f"gone{i}"))
                for i in range(200)
            ]
            await asyncio.sleep(0)  # one turn of the loop: every task is now queued
            for task in queued:
                task.cancel()
            outcomes = await asyncio.gather(*queued, return_exceptions=True)
            assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
            project = await bounded(client.projects.update(project_id, name="kept"))
        assert project.name == "kept"
        assert statuses(fake) == [429, 200]  # no cancelled call was sent
        delay = fake.requests[-1].at - limited.at
        assert 0.5 - TOLERANCE <= delay <= 0.7, delay


# --- 5. plans revised on every answer; the first burst is not blind ------------------------------


async def test_a_burst_under_a_real_limit_draws_no_429() -> None:
    limit, period, calls = 10, 0.25, 40
    async with FakeLLMObsServer(rate_limit=(limit, period)) as fake:
        project_id = fake.add_project()
        async with client_for(fake, max_concurrency=16) as client:
            started = time.monotonic()
            results = await bounded(
                asyncio.gather(
                    *(client.projects.update(project_id, name=f"n{i}") for i in range(calls))
                ),
                3.0,
            )
            elapsed = time.monotonic() - started
        assert fake.rate_limit is not None
        assert fake.rate_limit.rejected == 0, statuses(fake)
        assert len(results) == calls and len(fake.requests) == calls
        assert elapsed <= (math.ceil(calls / limit) + 1) * period, elapsed


async def test_the_first_request_to_a_new_limit_goes_alone() -> None:
    async with FakeLLMObsServer(rate_limit=(100, 10.0)) as fake:
        project_id = fake.add_project()
        fake.inject(delay=0.2)  # a slow first answer: the others must wait for it
        async with client_for(fake, max_concurrency=16) as client:
            await bounded(
                asyncio.gather(
                    *(client.projects.update(project_id, name=f"n{i}") for i in range(10))
                )
            )
        probe, *others = fake.requests
        assert [r.status for r in fake.requests] == [200] * 10
        early = [round(r.at - probe.at, 3) for r in others if r.at - probe.at < 0.2 - TOLERANCE]
        assert not early, f"sent before the first answer, at {early}"


async def test_a_bulk_job_under_a_real_limit_finishes_near_the_floor_without_429() -> None:
    limit, period, batches, batch_size = 10, 0.5, 20, 5
    total = batches * batch_size
    async with FakeLLMObsServer(rate_limit=(limit, period)) as fake:
        project_id = fake.add_project()
        dataset_id = fake.add_dataset(project_id=project_id, records=total)
        async with client_for(fake) as client:
            started = time.monotonic()
            result = await bounded(
                client.records.update_many(
                    project_id,
                    dataset_id,
                    ({"id": f"rec-{i}", "expected_output": i} for i in range(total)),
                    batch_size=batch_size,
                ),
                3.0,
            )
            elapsed = time.monotonic() - started
        assert fake.rate_limit is not None
        assert fake.rate_limit.rejected == 0, statuses(fake)
        assert (result.ok, result.submitted, result.applied) == (True, total, total)
        assert len([r for r in fake.requests if r.method != "GET"]) == batches  # + a version read
        assert elapsed <= (math.ceil(batches / limit) + 1) * period, elapsed
        stored = fake.records(dataset_id)
        assert all(stored[f"rec-{i}"]["expected_output"] == i for i in range(total))


# --- 6. one 429 does not pace the next minute ----------------------------------------------------


async def test_after_one_429_later_calls_are_not_paced_by_its_advertised_limit() -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.inject_rate_limit(reset=0.2, limit=60, period=60)
        async with client_for(fake) as client:
            await bounded(client.projects.update(project_id, name="after the 429"))
            started = time.monotonic()
            await bounded(
                asyncio.gather(
                    *(client.projects.update(project_id, name=f"n{i}") for i in range(20))
                )
            )
            elapsed = time.monotonic() - started
        assert statuses(fake) == [429] + [200] * 21
        assert elapsed < 0.5, f"20 calls with room took {elapsed:.2f}s"


# --- 7. server-given waits are capped ------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "at_least"),
    [
        ({"Retry-After": "1e9"}, 1e8),
        (limit_headers(Limit="60", Period="60", Remaining="0", Reset="1e9"), 1e8),
        ({"Retry-After": FAR_DATE}, 1e8),
    ],
    ids=["retry-after", "ratelimit-reset", "http-date"],
)
async def test_a_wait_above_the_cap_raises_instead_of_parking(
    headers: dict[str, str], at_least: float
) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.inject(status=429, headers=headers)
        async with client_for(fake, max_retries=5) as client:
            started = time.monotonic()
            with pytest.raises(errors.RateLimitError) as info:
                await bounded(client.projects.update(project_id, name="x"))
            assert time.monotonic() - started < 1.0
            assert info.value.retry_after is not None and info.value.retry_after >= at_least
            assert statuses(fake) == [429]  # not retried either
            # Later calls, on any view, are not frozen behind the wait.
            for view in (client, client.with_options(timeout=5)):
                outcome = await settle(view.projects.update(project_id, name="later"), 1.0)
                assert isinstance(outcome, Project) or (
                    isinstance(outcome, errors.RateLimitError)
                    and outcome.retry_after is not None
                    and outcome.retry_after > 60
                ), outcome


@pytest.mark.parametrize("header", ["Retry-After", "X-RateLimit-Reset"])
@pytest.mark.parametrize("value", ["1e999", "-5", "nan"])
async def test_an_infinite_negative_or_nan_wait_counts_as_absent(header: str, value: str) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        async with client_for(fake, max_retries=0) as client:
            fake.inject(status=429, headers={header: value})
            with pytest.raises(errors.RateLimitError) as info:
                await bounded(client.projects.update(project_id, name="x"))
            assert info.value.retry_after is None
        async with client_for(fake, max_retries=5) as client:
            fake.inject(status=429, headers={header: value})
            started = time.monotonic()
            project = await bounded(client.projects.update(project_id, name="retried"))
            assert time.monotonic() - started < 0.5  # normal (test-fast) backoff, no pause
        assert project.name == "retried"
        assert statuses(fake) == [429, 429, 200]


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "0.5"},
        limit_headers(Limit="60", Period="60", Remaining="0", Reset="0.5"),
    ],
    ids=["retry-after", "ratelimit-reset"],
)
async def test_max_rate_limit_wait_lowers_the_cap(headers: dict[str, str]) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.inject(status=429, headers=headers, times=None)
        async with client_for(fake, max_rate_limit_wait=0.2) as client:
            started = time.monotonic()
            with pytest.raises(errors.RateLimitError) as info:
                await bounded(client.projects.update(project_id, name="x"))
            assert time.monotonic() - started < 0.3
        assert info.value.retry_after == pytest.approx(0.5, abs=0.01)
        assert statuses(fake) == [429]


@pytest.mark.parametrize("period", [{}, {"Period": "60"}], ids=["no-period", "period-60"])
async def test_a_200_with_no_room_for_1e9_seconds_fails_later_calls_fast(
    period: dict[str, str],
) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        # Datadog sends Period beside Reset; a Reset past it must still be capped.
        no_room = limit_headers(Limit="60", Remaining="0", Reset="1e9", **period)
        answer_project(fake, project_id, no_room, times=1)
        async with client_for(fake) as client:
            await bounded(client.projects.update(project_id, name="x"))
            refused = await settle(client.projects.update(project_id, name="y"), 1.0)
            assert isinstance(refused, errors.RateLimitError), f"the next call: {refused!r}"
            assert refused.retry_after is not None and refused.retry_after >= 1e8
            assert statuses(fake) == [200]  # raised without sending
            # The server's word stands: every later call fails at once, none freezes.
            again = await settle(client.projects.update(project_id, name="z"), 1.0)
            assert isinstance(again, errors.RateLimitError), f"the call after: {again!r}"
            assert statuses(fake) == [200]


async def test_max_rate_limit_wait_is_set_per_view() -> None:
    async with FakeLLMObsServer() as fake:
        strict_p, patient_p, impatient_p = (fake.add_project() for _ in range(3))
        fake.inject(status=429, headers={"Retry-After": "0.3"}, times=None)
        async with client_for(fake, max_rate_limit_wait=0.2) as strict:
            patient = strict.with_options(max_rate_limit_wait=5)
            impatient = patient.with_options(max_rate_limit_wait=0.1)
            started = time.monotonic()
            with pytest.raises(errors.RateLimitError):
                await bounded(strict.projects.update(strict_p, name="refused"))
            assert time.monotonic() - started < 0.2
            fake.clear_faults()
            fake.inject(status=429, headers={"Retry-After": "0.3"}, times=1)
            project = await bounded(patient.projects.update(patient_p, name="waited"))
            fake.inject(status=429, headers={"Retry-After": "0.3"}, times=1)
            started = time.monotonic()
            with pytest.raises(errors.RateLimitError):
                await bounded(impatient.projects.update(impatient_p, name="refused"))
            assert time.monotonic() - started < 0.2
        assert project.name == "waited"
        assert statuses(fake) == [429, 429, 200, 429]
        waited = fake.requests_to(patient_p)
        assert waited[1].at - waited[0].at >= 0.3 - TOLERANCE


async def test_a_call_refused_for_its_own_cap_does_not_lift_the_pause_for_others() -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.inject(status=429, headers={"Retry-After": "0.3"})
        async with client_for(fake) as client:
            with pytest.raises(errors.RateLimitError):
                await client.with_options(max_retries=0).projects.update(project_id, name="a")
            limited = fake.requests[-1]
            # A caller that cannot wait 0.3 s is refused without sending...
            impatient = client.with_options(max_rate_limit_wait=0.1)
            with pytest.raises(errors.RateLimitError):
                await bounded(impatient.projects.update(project_id, name="refused"))
            assert statuses(fake) == [429]
            # ...and the org's pause still holds for the next caller.
            project = await bounded(client.projects.update(project_id, name="waited"))
        assert project.name == "waited"
        assert statuses(fake) == [429, 200]
        delay = fake.requests[-1].at - limited.at
        assert delay >= 0.3 - TOLERANCE, f"sent {delay:.3f}s into a 0.3 s pause"


@pytest.mark.parametrize("value", [-1, -0.5, math.nan, math.inf, "5", True, None])
@pytest.mark.parametrize("where", ["constructor", "with_options"])
async def test_an_invalid_max_rate_limit_wait_is_refused(where: str, value: Any) -> None:
    async with FakeLLMObsServer() as fake:
        if where == "constructor":
            with pytest.raises(errors.ValidationError) as info:
                LLMObsClient(
                    base_url=fake.base_url,
                    api_key=fake.api_key,
                    app_key=fake.app_key,
                    max_rate_limit_wait=value,
                )
        else:
            if value is None:
                value = -1  # None means "keep the parent's" for with_options
            async with client_for(fake) as client:
                with pytest.raises(errors.ValidationError) as info:
                    client.with_options(max_rate_limit_wait=value)
        assert info.value.field == "max_rate_limit_wait"
        assert fake.requests == []


# --- 8. an HTTP date without a zone is UTC -------------------------------------------------------


async def test_a_zoneless_http_date_is_read_as_utc() -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        async with client_for(fake, max_retries=0) as client:
            fake.inject(status=429, headers={"Retry-After": ZONELESS_DATE})
            with pytest.raises(errors.RateLimitError) as info:
                await bounded(client.projects.update(project_id, name="x"))
            assert info.value.retry_after == 0.0  # in the past: no wait
        async with client_for(fake) as client:
            fake.inject(status=429, headers={"Retry-After": ZONELESS_DATE})
            project = await bounded(client.projects.update(project_id, name="retried"))
        assert project.name == "retried"
        assert statuses(fake) == [429, 429, 200]


async def test_a_zoneless_http_date_inside_a_bulk_job_loses_no_record() -> None:
    total, batch_size = 50, 10
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        dataset_id = fake.add_dataset(project_id=project_id, records=total)
        fake.inject(status=429, headers={"Retry-After": ZONELESS_DATE}, times=3)
        async with client_for(fake) as client:
            result = await bounded(
                client.records.update_many(
                    project_id,
                    dataset_id,
                    ({"id": f"rec-{i}", "expected_output": i} for i in range(total)),
                    batch_size=batch_size,
                )
            )
        assert (result.ok, result.submitted, result.applied) == (True, total, total)
        # 5 batches and the job's read of the dataset's version.
        assert statuses(fake).count(429) == 3 and statuses(fake).count(200) == 6
        stored = fake.records(dataset_id)
        assert all(stored[f"rec-{i}"]["expected_output"] == i for i in range(total))
