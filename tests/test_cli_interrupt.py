"""Ctrl-C on ``llmobs-async records update``: a real SIGINT sent to a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from llmobs_async.testing import FakeLLMObsServer

from .fakehttp import hold_after

TOTAL, BATCH, ANSWERED, CONCURRENCY = 20_000, 100, 10, 16


async def _start(fake: FakeLLMObsServer, *args: str) -> asyncio.subprocess.Process:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    environ.update(DD_API_KEY=fake.api_key, DD_APP_KEY=fake.app_key)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmobs_async",
        *args,
        "--base-url",
        fake.base_url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )


def _input(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"rec-{i}", "expected_output": f"new-{i}"}) + "\n"
            for i in range(TOTAL)
        )
    )
    return path


def _applied(fake: FakeLLMObsServer, dataset_id: str) -> set[int]:
    stored = fake.records(dataset_id)
    return {i for i in range(TOTAL) if stored[f"rec-{i}"]["expected_output"] == f"new-{i}"}


async def test_ctrl_c_gives_a_summary_failed_out_and_the_line_to_resume_from(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=TOTAL)
    path, failed_out = _input(tmp_path), tmp_path / "failed.jsonl"
    args = ["records", "update", "--project-id", project_id, "--dataset-id", dataset_id]
    args += ["--batch-size", str(BATCH), "--grace", "0.2", "--failed-out", str(failed_out)]
    held = hold_after(fake, ANSWERED, CONCURRENCY)
    proc = await _start(fake, *args, str(path))
    await asyncio.wait_for(held.wait(), 60)
    proc.send_signal(signal.SIGINT)
    out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert f"applied {ANSWERED * BATCH:,} of" in out
    assert "not sent" in out
    resume = int(err.split("resume with --start-line ")[1].split()[0])
    assert resume <= TOTAL

    # Every line before the resume point is applied or in --failed-out, once.
    applied = _applied(fake, dataset_id)
    assert len(applied) == ANSWERED * BATCH
    lines = [json.loads(line) for line in failed_out.read_text().splitlines()]
    marks = [line.pop("_failure") for line in lines]
    assert all(m["unsent"] is True for m in marks)
    assert [m["line"] for m in marks] == [int(line["id"][4:]) + 1 for line in lines]
    out_ids = {int(line["id"][4:]) for line in lines}
    assert not out_ids & applied
    assert out_ids | applied == set(range(resume - 1))
    assert len(applied) + len(lines) + (TOTAL - resume + 1) == TOTAL

    # Resuming: the rest of the file from the resume line, then --failed-out.
    fake.clear_faults()
    rest = await _start(fake, *args[:-2], "--start-line", str(resume), str(path))
    _, err_b = await asyncio.wait_for(rest.communicate(), 60)
    assert rest.returncode == 0, err_b.decode()
    again = await _start(fake, *args[:-2], str(failed_out))
    _, err_b = await asyncio.wait_for(again.communicate(), 60)
    assert again.returncode == 0, err_b.decode()
    assert _applied(fake, dataset_id) == set(range(TOTAL))


async def test_a_second_ctrl_c_quits_at_once(fake: FakeLLMObsServer, tmp_path: Path) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=TOTAL)
    held = hold_after(fake, 0, CONCURRENCY)
    proc = await _start(
        fake,
        "records",
        "update",
        "--project-id",
        project_id,
        "--dataset-id",
        dataset_id,
        "--batch-size",
        str(BATCH),
        "--grace",
        "60",
        str(_input(tmp_path)),
    )
    await asyncio.wait_for(held.wait(), 60)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    first = await asyncio.wait_for(proc.stderr.readline(), 30)
    while b"interrupted" not in first:
        first = await asyncio.wait_for(proc.stderr.readline(), 30)
    proc.send_signal(signal.SIGINT)  # within the 60 s grace: must not wait for it
    _, err_b = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130
    assert "quitting without a summary" in err_b.decode()


async def test_a_job_stopped_by_the_api_says_where_to_resume(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    path, failed_out = _input(tmp_path), tmp_path / "failed.jsonl"
    args = ["records", "update", "--project-id", project_id, "--dataset-id", "no-such-dataset"]
    args += ["--batch-size", str(BATCH), "--failed-out", str(failed_out), str(path)]
    proc = await _start(fake, *args)
    _, err_b = await asyncio.wait_for(proc.communicate(), 60)
    err = err_b.decode()
    assert proc.returncode == 1, err
    assert "stopped early: 404 NotFoundError" in err
    assert "404 Not Found [whole batch refused] (dataset no-such-dataset not found)" in err
    resume = int(err.split("resume with --start-line ")[1].split()[0])
    assert 1 < resume < TOTAL // 2
    marks = [json.loads(line)["_failure"] for line in failed_out.read_text().splitlines()]
    assert [m["line"] for m in marks] == list(range(1, resume))  # every line read, in order
    assert any(m.get("unsent") for m in marks) and not all(m.get("unsent") for m in marks)
    assert all("404" in m["error"] for m in marks)
