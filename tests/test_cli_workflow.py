"""The workflow commands (datasets, records list/create, experiments list/get), as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from llmobs_async import LLMObsClient
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded
from .test_cli import _cli


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _ds(seeded: Seeded) -> tuple[str, ...]:
    return ("--project-id", seeded.project_id, "--dataset-id", seeded.dataset_id)


async def test_help_names_the_workflow() -> None:
    run = await _cli(None, "--help")
    for word in ("datasets", "records", "experiments", "fake-server", "demo", "130"):
        assert word in run.out
    run = await _cli(None, "records", "list", "--help")
    for word in ("--cursor", "--append", "--page-size", "--version", "DD_LLMOBS_OVERRIDE_ORIGIN"):
        assert word in run.out
    run = await _cli(None, "records", "create", "--help")
    assert "--failed-out" in run.out and "one new dataset version" in run.out


async def test_datasets_create_then_list(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    args = ("datasets", "create", "qa", "--project-id", seeded.project_id)
    run = await _cli(fake, *args, "--description", "d", "--metadata", '{"team": "ml"}')
    assert run.code == 0, run.err
    made = json.loads(run.out)
    assert (made["name"], made["description"], made["metadata"]) == ("qa", "d", {"team": "ml"})
    assert fake.datasets[made["id"]].attributes["name"] == "qa"

    run = await _cli(fake, "datasets", "list", "--project-id", seeded.project_id)
    assert run.code == 0, run.err
    listed = _lines(run.out)  # one JSON object a line, newest first
    assert [d["id"] for d in listed] == [made["id"], seeded.dataset_id]
    assert "extra" not in listed[0]
    run = await _cli(fake, "datasets", "list", "--project-id", seeded.project_id, "--name", "qa")
    assert [d["id"] for d in _lines(run.out)] == [made["id"]]


async def test_records_list_writes_every_record_as_json_lines(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    fake.add_records(seeded.dataset_id, [{"id": "new", "input": "x", "tags": ["k:v"]}])
    run = await _cli(fake, "records", "list", *_ds(seeded), "--page-size", "3")
    assert run.code == 0, run.err
    records = _lines(run.out)
    assert sorted(r["id"] for r in records) == sorted([*(f"rec-{i}" for i in range(10)), "new"])
    new = next(r for r in records if r["id"] == "new")
    assert list(new)[:5] == ["id", "input", "expected_output", "metadata", "tags"]
    assert (new["input"], new["tags"], new["dataset_id"]) == ("x", ["k:v"], seeded.dataset_id)
    assert "wrote 11 records (4 pages)" in run.err
    assert "\r" not in run.err  # no progress bar off a terminal

    run = await _cli(fake, "records", "list", *_ds(seeded), "--version", "1")
    assert run.code == 0, run.err
    assert len(_lines(run.out)) == 10  # the version before "new" was added


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("records", "list", "--project-id", "p", "--dataset-id", "d", "--page-size", "0"),
         "--page-size: must be 1 to 5000"),
        (("records", "list", "--project-id", "p", "--dataset-id", "d", "--page-size", "x"),
         "argument --page-size: invalid int value"),
        (("records", "list", "--project-id", "p", "--dataset-id", "d", "--version", "-1"),
         "--version: must be an integer >= 0"),
        (("records", "list", "--project-id", "p", "--dataset-id", "d", "--append"),
         "--append: goes with -o FILE"),
        (("records", "list", "--project-id", "p"), "the following arguments are required: "
         "--dataset-id"),
        (("records", "create", "--project-id", "p", "--dataset-id", "d", "/nope"), "/nope"),
        (("records", "create", "--project-id", "p", "--dataset-id", "d", "--batch-size", "0",
          "-"), "--batch-size: must be >= 1"),
        (("datasets", "create", "--project-id", "p", ""), "NAME: must be a non-empty string"),
        (("datasets", "create", "--project-id", "p", "n", "--metadata", "[1]"), "JSON object"),
        (("datasets", "list"), "the following arguments are required: --project-id"),
        (("experiments", "list"), "--project-id: give --project-id, --dataset-id or both"),
        (("experiments", "list", "--project-id", "p", "--page-size", "9999"),
         "--page-size: must be 1 to 5000"),
        (("experiments", "get"), "the following arguments are required: EXPERIMENT_ID"),
    ],
)  # fmt: skip
async def test_bad_arguments_exit_2_naming_the_option(
    fake: FakeLLMObsServer, args: tuple[str, ...], message: str
) -> None:
    run = await _cli(fake, *args)
    assert run.code == 2, run.err
    assert message in run.err
    assert "Traceback" not in run.err
    assert not fake.requests  # nothing was sent


async def test_records_create_adds_one_version_and_copies_a_listed_dataset(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    path = tmp_path / "new.jsonl"
    rows = [{"input": {"q": i}, "expected_output": i * 2, "metadata": {"i": i}} for i in range(7)]
    rows[3] |= {"id": "mine", "tags": ["a:b"]}
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    before = fake.datasets[seeded.dataset_id].version
    run = await _cli(fake, "records", "create", *_ds(seeded), "--batch-size", "3", str(path))
    assert run.code == 0, run.err
    assert "created 7 of 7 records" in run.out
    dataset = fake.datasets[seeded.dataset_id]
    assert dataset.version == before + 1  # one version for the whole run (3 requests)
    assert dataset.records["mine"]["tags"] == ["a:b"]
    assert len(dataset.records) == 17
    assert sorted(r["input"]["q"] for r in dataset.records.values() if "q" in r["input"]) == [
        *range(7)
    ]

    # What `records list` writes, `records create` takes: a dataset copied through a file.
    listed = tmp_path / "listed.jsonl"
    run = await _cli(fake, "records", "list", *_ds(seeded), "-o", str(listed))
    assert run.code == 0, run.err
    copy = fake.add_dataset(project_id=seeded.project_id)
    args = ("--project-id", seeded.project_id, "--dataset-id", copy)
    run = await _cli(fake, "records", "create", *args, str(listed))
    assert run.code == 0, run.err
    assert "created 17 of 17 records" in run.out

    def content(dataset_id: str) -> list[Any]:
        stored = fake.records(dataset_id).values()
        return sorted(
            json.dumps([r["id"], r["input"], r["expected_output"], r["metadata"], r["tags"]])
            for r in stored
        )

    assert content(copy) == content(seeded.dataset_id)


async def test_records_create_reports_bad_lines_and_creates_the_good_ones(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    fake.reject_record("refused")
    lines = [
        '{"input": "good-1"}',
        "{not json",
        '{"expected_output": "no input"}',
        '{"input": "good-2", "tags": "not-a-list"}',
        '{"input": "good-3", "id": "refused"}',
        '{"input": "good-4", "colour": "blue"}',
        '{"input": "good-5", "id": "five"}',
    ]
    path, failed_out = tmp_path / "in.jsonl", tmp_path / "failed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    args = ("records", "create", *_ds(seeded), "--failed-out", str(failed_out), str(path))
    run = await _cli(fake, *args)
    assert run.code == 1
    assert "Traceback" not in run.err
    assert "line 2: not valid JSON" in run.err
    assert "line 3: input: is required" in run.err
    assert "line 4: tags:" in run.err
    assert "line 5: refused: 400 Bad Request: record refused is invalid" in run.err
    assert "line 6:" in run.err and "colour" in run.err
    assert "created 2 of 7 records" in run.out
    stored = fake.records(seeded.dataset_id).values()
    inputs = {r["input"] for r in stored if isinstance(r["input"], str)}
    assert {"good-1", "good-5"} <= inputs
    assert not {"good-2", "good-3", "good-4"} & inputs
    marks = [json.loads(line)["_failure"] for line in failed_out.read_text().splitlines()]
    assert [m["line"] for m in marks] == [2, 3, 4, 5, 6]  # every line marked
    assert marks[0]["raw"] == "{not json"


async def test_experiments_list_and_get(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    other = fake.add_experiment(project_id=seeded.project_id, dataset_id=seeded.dataset_id)
    run = await _cli(fake, "experiments", "list", "--project-id", seeded.project_id)
    assert run.code == 0, run.err
    assert sorted(e["id"] for e in _lines(run.out)) == sorted([seeded.experiment_id, other])

    run = await _cli(fake, "experiments", "get", seeded.experiment_id)
    assert run.code == 0, run.err
    got = json.loads(run.out)
    assert (got["id"], got["project_id"]) == (seeded.experiment_id, seeded.project_id)

    run = await _cli(fake, "experiments", "get", "no-such-experiment")
    assert run.code == 1
    assert "404" in run.err and "no-such-experiment" in run.err


async def test_fake_server_says_how_to_point_an_app_at_it() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmobs_async",
        "fake-server",
        "--port",
        "0",
        "--records",
        "25",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    assert server.stdout is not None
    try:
        said: list[str] = []
        while not said or not said[-1].startswith("  export "):
            said.append((await asyncio.wait_for(server.stdout.readline(), 30)).decode())
        # Only what it printed: the variables of its export line, and the ids.
        for pair in shlex.split(said[-1])[1:]:
            name, _, value = pair.partition("=")
            environ[name] = value
        assert environ["DD_LLMOBS_OVERRIDE_ORIGIN"].startswith("http://127.0.0.1:")
        ids = {line.split()[0]: line.split()[1] for line in said if line.startswith("  ")}
        list_records = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "llmobs_async",
            "records",
            "list",
            "--project-id",
            ids["project"],
            "--dataset-id",
            ids["dataset"],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environ,  # no --base-url: DD_LLMOBS_OVERRIDE_ORIGIN points the client
        )
        out, err = await asyncio.wait_for(list_records.communicate(), 60)
        assert list_records.returncode == 0, err.decode()
        assert sorted(r["id"] for r in _lines(out.decode())) == sorted(
            f"rec-{i}" for i in range(25)
        )
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.wait_for(server.communicate(), 30)
    assert server.returncode == 130


async def test_the_demo_notices_a_record_missing_or_wrong(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    from llmobs_async._cli.demo import _Demo, _new_record

    project = await client.projects.create("p")
    dataset = await client.datasets.create(project.id, "d")
    rows = [_new_record(n) for n in range(10)]
    rows[4] = {**rows[4], "expected_output": "nine"}
    del rows[7]
    await client.records.create(project.id, dataset.id, rows)
    demo = _Demo(fake, client, 10)
    await demo.pull_and_verify(project, dataset)
    assert demo.problems == ["1 records missing", "1 records wrong or repeated"]


@pytest.mark.parametrize("kind", ["datasets", "experiments"])
async def test_a_list_piped_into_head_ends_quietly(kind: str) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        dataset_id = fake.add_dataset(project_id=project_id)
        for i in range(400):  # more than a pipe holds, so the writer meets the closed end
            fake.add_dataset(project_id=project_id, name=f"d{i}", description="x" * 200)
            fake.add_experiment(project_id=project_id, dataset_id=dataset_id, name=f"e{i}")
        environ = dict(os.environ, DD_API_KEY=fake.api_key, DD_APP_KEY=fake.app_key)
        command = (
            f"{shlex.quote(sys.executable)} -m llmobs_async {kind} list --project-id {project_id} "
            f"--base-url {fake.base_url} | head -n 1"
        )
        proc = await asyncio.create_subprocess_shell(
            command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert len(out.splitlines()) == 1
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
