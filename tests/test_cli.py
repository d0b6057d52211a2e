"""The llmobs-async command line, run as a subprocess against the fake server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import attrs
import pytest

from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded


@attrs.frozen
class Run:
    code: int
    out: str
    err: str


async def _cli(
    fake: FakeLLMObsServer | None, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None
) -> Run:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    if fake is not None:
        environ.update(DD_API_KEY=fake.api_key, DD_APP_KEY=fake.app_key)
        args = (*args, "--base-url", fake.base_url)
    environ.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmobs_async",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=120)
    assert proc.returncode is not None
    run = Run(proc.returncode, out.decode(), err.decode())
    if fake is not None:
        assert fake.api_key not in run.out + run.err
        assert fake.app_key not in run.out + run.err
    return run


def _records_args(seeded: Seeded, *rest: str) -> tuple[str, ...]:
    return (
        "records",
        "update",
        "--project-id",
        seeded.project_id,
        "--dataset-id",
        seeded.dataset_id,
        *rest,
    )


async def test_help_reads_well() -> None:
    run = await _cli(None, "--help")
    assert run.code == 0
    for word in ("records", "experiments", "projects", "fake-server", "demo", "Exit status"):
        assert word in run.out
    run = await _cli(None, "records", "update", "--help")
    assert "--failed-out" in run.out
    assert "DD_API_KEY" in run.out


async def test_records_update_from_a_file(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps({"id": f"rec-{i}", "input": i}) + "\n" for i in range(10)))
    run = await _cli(fake, *_records_args(seeded, "--batch-size", "3", str(path)))
    assert run.code == 0, run.err
    assert "applied 10 of 10 records" in run.out
    assert [fake.records(seeded.dataset_id)[f"rec-{i}"]["input"] for i in range(10)] == list(
        range(10)
    )
    assert len(fake.requests) == 4  # batches of 3, 3, 3, 1
    assert "\r" not in run.err  # no progress bar when stderr is not a terminal


async def test_records_update_reports_bad_lines_and_writes_them_out(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    lines = [
        '{"id": "rec-1", "expected_output": "ok"}',
        "",
        "{not json",
        '{"input": 1}',
        '{"id": "rec-2", "input": NaN}',
        "[1, 2]",
        '{"id": "rec-3", "metadata": {"a": 1}}',
    ]
    failed_out = tmp_path / "failed.jsonl"
    run = await _cli(
        fake,
        *_records_args(seeded, "--failed-out", str(failed_out), "-"),
        stdin="\n".join(lines).encode(),
    )
    assert run.code == 1
    assert "line 3: not valid JSON" in run.err
    assert "line 4: id: is required" in run.err
    assert "line 5: input: nan is not valid JSON" in run.err
    assert "line 6: expected a JSON object" in run.err
    assert "applied 2 of 6 records" in run.out
    assert sorted(failed_out.read_text().splitlines()) == sorted(
        ["{not json", "[1, 2]", '{"input": 1}', '{"id": "rec-2", "input": NaN}']
    )
    stored = fake.records(seeded.dataset_id)
    assert stored["rec-1"]["expected_output"] == "ok"
    assert stored["rec-3"]["metadata"] == {"a": 1}


async def test_records_update_reports_api_failures(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    fake.reject_record("rec-4")
    failed_out = tmp_path / "failed.jsonl"
    run = await _cli(
        fake,
        *_records_args(seeded, "--batch-size", "5", "--failed-out", str(failed_out), "-"),
        stdin="".join(f'{{"id": "rec-{i}", "input": "x"}}\n' for i in range(10)).encode(),
    )
    assert run.code == 1
    assert "5 records failed: 400 BadRequestError" in run.err
    failed_ids = [json.loads(line)["id"] for line in failed_out.read_text().splitlines()]
    assert failed_ids == [f"rec-{i}" for i in range(5)]


async def test_experiments_and_projects_update_print_json(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    run = await _cli(
        fake,
        "experiments",
        "update",
        seeded.experiment_id,
        "--status",
        "completed",
        "--metadata",
        '{"run": 3}',
    )
    assert run.code == 0, run.err
    printed = json.loads(run.out)
    assert (printed["id"], printed["status"], printed["metadata"]) == (
        seeded.experiment_id,
        "completed",
        {"run": 3},
    )
    run = await _cli(fake, "projects", "update", seeded.project_id, "--description", "cli")
    assert run.code == 0, run.err
    assert json.loads(run.out)["description"] == "cli"
    assert fake.projects[seeded.project_id]["description"] == "cli"


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (("experiments", "update", "nope", "--status", "failed"), {}, 1, "404 NotFoundError"),
        (("experiments", "update", "x"), {}, 2, "empty update"),
        (("projects", "update", "x", "--name", "y"), {"DD_API_KEY": ""}, 2, "DD_API_KEY"),
        (("experiments", "update", "x", "--status", "paused"), {}, 2, "invalid choice"),
        (("experiments", "update", "x", "--metadata", "[1]"), {}, 2, "JSON object"),
        (("records", "update", "--project-id", "p", "--dataset-id", "d", "/nope"), {}, 2, "/nope"),
    ],
)
async def test_errors_and_exit_codes(
    fake: FakeLLMObsServer, args: tuple[str, ...], env: dict[str, str], code: int, message: str
) -> None:
    run = await _cli(fake, *args, env=env)
    assert run.code == code
    assert message in run.err


async def test_demo_applies_every_record() -> None:
    run = await _cli(None, "demo", "--records", "2000")
    assert run.code == 0, run.err
    assert "all 2,000 records hold their new values" in run.out
