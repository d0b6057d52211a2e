"""Lone surrogates (what Python makes of an undecodable byte in argv, a file or a name).

Each is refused with a ValidationError naming the argument, before anything is
sent, where it would otherwise fail as a raw UnicodeEncodeError while the
request is built, or be silently cut (yarl drops one from a URL).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded
from .test_cli import _cli

SURROGATE = "exp-\ud800"


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9/\udcff", "https://proxy\udcff.internal"])
def test_a_base_url_with_a_lone_surrogate_is_refused_not_cut(
    monkeypatch: pytest.MonkeyPatch, base_url: str
) -> None:
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(base_url=base_url, api_key="k", app_key="a")
    assert info.value.field == "base_url" and "surrogate" in str(info.value)
    monkeypatch.setenv("DD_LLMOBS_OVERRIDE_ORIGIN", base_url)
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(api_key="k", app_key="a")
    assert info.value.field == "DD_LLMOBS_OVERRIDE_ORIGIN"


LIST_CALLS: dict[str, tuple[str, Callable[[LLMObsClient], object]]] = {
    "records cursor": ("cursor", lambda c: c.records.list("p", "d", cursor=SURROGATE)),
    "records tags": ("tags", lambda c: c.records.list("p", "d", tags=["ok", SURROGATE])),
    "records tag": ("tags", lambda c: c.records.list("p", "d", tags=SURROGATE)),
    "projects ids": ("ids", lambda c: c.projects.list(ids=[SURROGATE])),
    "projects name": ("name", lambda c: c.projects.list(name=SURROGATE)),
    "projects cursor": ("cursor", lambda c: c.projects.list(cursor=SURROGATE)),
    "datasets ids": ("ids", lambda c: c.datasets.list("p", ids=[SURROGATE])),
    "datasets name": ("name", lambda c: c.datasets.list("p", name=SURROGATE)),
    "experiments ids": ("ids", lambda c: c.experiments.list(ids=[SURROGATE])),
    "experiments project": ("project_id", lambda c: c.experiments.list(project_id=SURROGATE)),
    "experiments dataset": ("dataset_id", lambda c: c.experiments.list(dataset_id=SURROGATE)),
    "experiments name": ("name", lambda c: c.experiments.list(project_id="p", name=SURROGATE)),
    "experiments experiment": (
        "experiment",
        lambda c: c.experiments.list(project_id="p", experiment=SURROGATE),
    ),
    "experiments metadata": (
        "metadata.k",
        lambda c: c.experiments.list(project_id="p", metadata={"k": SURROGATE}),
    ),
    "events cursor": ("cursor", lambda c: c.experiments.events.list("e", cursor=SURROGATE)),
    "experiments metadata key": (
        "metadata",
        lambda c: c.experiments.list(project_id="p", metadata={SURROGATE: 1}),
    ),
}


@pytest.mark.parametrize(("field", "call"), list(LIST_CALLS.values()), ids=list(LIST_CALLS))
async def test_a_list_argument_with_a_lone_surrogate_is_a_validation_error(
    fake: FakeLLMObsServer, client: LLMObsClient, field: str, call: Callable[[LLMObsClient], object]
) -> None:
    with pytest.raises(errors.ValidationError) as info:
        call(client)  # refused when the list is made, as every other bad list argument
    assert info.value.field == field
    assert "surrogate" in str(info.value)
    assert fake.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ("records", "list", "--project-id", "p", "--dataset-id", "d", "--cursor", "\udcff"),
        ("datasets", "list", "--project-id", "p", "--name", "\udcff"),
        ("experiments", "list", "--project-id", "p", "--name", "\udcff"),
        ("experiments", "list", "--dataset-id", "\udcff"),
    ],
    ids=["records cursor", "datasets name", "experiments name", "experiments dataset"],
)
async def test_the_cli_refuses_an_undecodable_argument_as_a_usage_error(
    fake: FakeLLMObsServer, args: tuple[str, ...]
) -> None:
    # "\udcff" is how Python reads the byte 0xff of argv ($'\xff' in a shell).
    run = await _cli(fake, *args)
    assert run.code == 2, run.err
    assert "Traceback" not in run.err and "surrogate" in run.err
    assert args[-2] in run.err  # the option, in command-line terms
    assert fake.requests == []


async def test_an_object_key_with_a_lone_surrogate_is_refused_where_it_is(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    p, d = seeded.project_id, seeded.dataset_id
    refused = {
        "records[0].input.a": client.records.update(
            p, d, [{"id": "rec-1", "input": {"a": {SURROGATE: 1}}}]
        ),
        "metadata": client.experiments.update(seeded.experiment_id, metadata={SURROGATE: 1}),
    }
    for field, call in refused.items():
        with pytest.raises(errors.ValidationError) as info:
            await call
        assert info.value.field == field and "surrogate" in str(info.value)
    assert fake.requests == []
