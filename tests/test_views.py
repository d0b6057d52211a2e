"""Views made with with_options: closing one leaves the shared pool to its owner."""

from __future__ import annotations

import pytest

from llmobs_async import errors
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
