"""Views made with with_options: closing one leaves the shared pool to its owner."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from llmobs_async import errors
from llmobs_async._pool import RECENT_ORGS
from llmobs_async._ratelimit.gate import Limits
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded, client_for


async def test_closing_a_view_leaves_the_client_and_other_views_working(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    client = client_for(fake)
    other = client.with_options(max_retries=1)
    async with client.with_options(max_retries=0) as tenant:
        await tenant.projects.update(seeded.project_id, name="from the view")
    await tenant.close()
    await client.projects.update(seeded.project_id, name="client still open")
    await other.projects.update(seeded.project_id, name="other view still open")
    await tenant.projects.update(seeded.project_id, name="the view itself too")
    assert not client._pool.closed
    await client.close()  # the owner closes the pool, for every view
    for closed in (client, other, tenant):
        with pytest.raises(errors.LLMObsError, match="closed"):
            await closed.projects.update(seeded.project_id, name="after close")
    assert fake.projects[seeded.project_id]["name"] == "the view itself too"


def test_the_docstrings_say_what_timeout_and_closing_a_view_do() -> None:
    from llmobs_async import LLMObsClient

    doc = " ".join((LLMObsClient.__doc__ or "").split())
    assert "rate gate" in doc and "each attempt" in doc
    options = " ".join((LLMObsClient.with_options.__doc__ or "").split())
    assert "closing a view (or leaving ``async with view``) does nothing" in options


def _alive(cls: type) -> int:
    gc.collect()
    return sum(isinstance(o, cls) for o in gc.get_objects())


async def test_views_with_rotating_keys_keep_nothing_per_key_once_dropped(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    """A multi-tenant service makes a view per tenant key; keys rotate, memory must not grow."""
    async with client_for(fake) as client:
        before = _alive(Limits)
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            for i in range(10_000):
                client.with_options(api_key=f"tenant-key-{i:05d}")
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
        # Only the orgs used last are remembered between views (a bounded number).
        assert _alive(Limits) - before <= RECENT_ORGS
        assert kept < 400_000, f"{kept:,} bytes kept by 10,000 dropped views"

        # Views alive at once share their org's gate; a view made again for a key
        # used a moment ago finds what the gate learned, and so do views in use.
        fake.add_keys("tenant-a", fake.app_key)
        tenant = client.with_options(api_key="tenant-a")
        await tenant.projects.update(seeded.project_id, name="x")
        gate = tenant._transport.limits
        assert client.with_options(api_key="tenant-a")._transport.limits is gate
        for i in range(2 * RECENT_ORGS):
            client.with_options(api_key=f"other-{i}")
        assert client.with_options(api_key="tenant-a")._transport.limits is gate
        del tenant, gate
        assert _alive(Limits) - before <= RECENT_ORGS
