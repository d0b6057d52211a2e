"""Ctrl-C on ``llmobs-async records update``: a real SIGINT sent to a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

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
    resume = _resume_line(err)

    # Every line before the resume point is applied; what was read after it is in
    # --failed-out, marked unsent.
    applied = _applied(fake, dataset_id)
    assert len(applied) == ANSWERED * BATCH
    assert set(range(resume - 1)) <= applied
    lines = [json.loads(line) for line in failed_out.read_text().splitlines()]
    marks = [line.pop("_failure") for line in lines]
    assert all(m["unsent"] is True for m in marks)
    assert [m["line"] for m in marks] == [int(line["id"][4:]) + 1 for line in lines]
    out_ids = {int(line["id"][4:]) for line in lines}
    assert not out_ids & applied
    assert out_ids | applied == set(range(max(out_ids) + 1))
    assert min(out_ids) + 1 == resume  # the first record read but not sent

    # Following the printed line alone sends everything that was not applied.
    fake.clear_faults()
    rest = await _start(fake, *args[:-2], "--start-line", str(resume), str(path))
    _, err_b = await asyncio.wait_for(rest.communicate(), 60)
    assert rest.returncode == 0, err_b.decode()
    assert _applied(fake, dataset_id) == set(range(TOTAL))


def _resume_line(err: str) -> int:
    return int(err.split("resume with --start-line ")[1].split()[0])


async def test_ctrl_c_on_records_create_prints_a_resume_line_that_loses_nothing(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    # Issue 15: the printed line skipped the records read but not sent.
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id)
    path = _create_input(tmp_path)
    args = ["records", "create", "--project-id", project_id, "--dataset-id", dataset_id]
    args += ["--batch-size", str(BATCH), "--grace", "0.2"]
    err = await _interrupt_create(fake, path, args)
    resume = _resume_line(err)
    fake.clear_faults()
    rest = await _start(fake, *args, "--start-line", str(resume), str(path))
    _, err_b = await asyncio.wait_for(rest.communicate(), 60)
    assert rest.returncode == 0, err_b.decode()
    assert sorted(_inputs(fake, dataset_id)) == list(range(CREATE_TOTAL))  # every record, once
    assert "already are sent again, deduplication skips them" in err


async def test_ctrl_c_on_records_create_without_deduplication_says_both_steps(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id)
    path, failed_out = _create_input(tmp_path), tmp_path / "failed.jsonl"
    args = ["records", "create", "--project-id", project_id, "--dataset-id", dataset_id]
    args += ["--batch-size", str(BATCH), "--grace", "0.2", "--no-deduplicate"]
    err = await _interrupt_create(fake, path, [*args, "--failed-out", str(failed_out)])
    # Starting at the first unsent line would add the batches applied after it twice:
    # the rest of the file from after the last line read, and the unsent lines on their own.
    resume = _resume_line(err)
    assert f"send the {CREATE_TOTAL - ANSWERED * BATCH - (CREATE_TOTAL - resume + 1):,}" in err
    assert f"records read but not created on their own (they are in {failed_out}" in err
    fake.clear_faults()
    for step in (["--start-line", str(resume), str(path)], [str(failed_out)]):
        run = await _start(fake, *args, *step)
        _, err_b = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode == 0, err_b.decode()
    assert sorted(_inputs(fake, dataset_id)) == list(range(CREATE_TOTAL))  # every record, once


CREATE_TOTAL = 5000


def _create_input(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"input": {"i": i}}) + "\n" for i in range(CREATE_TOTAL)))
    return path


def _inputs(fake: FakeLLMObsServer, dataset_id: str) -> list[int]:
    return [r["input"]["i"] for r in fake.records(dataset_id).values()]


async def _interrupt_create(fake: FakeLLMObsServer, path: Path, args: list[str]) -> str:
    """Run ``records create``, Ctrl-C it with batches in flight; its stderr."""
    held = asyncio.Event()
    batches = 0

    def hold(request: RecordedRequest) -> bool:
        nonlocal batches
        if not request.url_path.endswith("/batch_update"):
            return False
        batches += 1
        if batches - ANSWERED >= CONCURRENCY:
            held.set()
        return batches > ANSWERED

    fake.inject(delay=60, times=None, match=hold)
    proc = await _start(fake, *args, str(path))
    await asyncio.wait_for(held.wait(), 60)
    proc.send_signal(signal.SIGINT)
    _, err_b = await asyncio.wait_for(proc.communicate(), 60)
    err = err_b.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    dataset_id = args[args.index("--dataset-id") + 1]
    assert sorted(_inputs(fake, dataset_id)) == list(range(ANSWERED * BATCH))
    return err


async def test_a_second_ctrl_c_quits_at_once(fake: FakeLLMObsServer, tmp_path: Path) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=TOTAL)
    held = hold_after(fake, 1, CONCURRENCY)  # the first batch goes alone
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
    resume = _resume_line(err)
    marks = [json.loads(line)["_failure"] for line in failed_out.read_text().splitlines()]
    assert [m["line"] for m in marks] == list(range(1, len(marks) + 1))  # every line read
    assert all("404" in m["error"] for m in marks)
    # Refused for good before the resume line (sending them again would not help);
    # from it on, what the job read but never sent.
    assert 1 < resume < TOTAL // 2
    assert not any(m.get("unsent") for m in marks[: resume - 1])
    assert all(m.get("unsent") for m in marks[resume - 1 :])


async def test_ctrl_c_after_the_last_line_was_read_still_says_where_to_resume(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=TOTAL)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": f"rec-{i}", "input": i}) + "\n" for i in range(250)))
    args = ["records", "update", "--project-id", project_id, "--dataset-id", dataset_id]
    args += ["--batch-size", str(BATCH), "--grace", "0.2", str(path)]
    # The first batch (sent alone) lands; the other two are in flight: the whole file was read.
    held = hold_after(fake, 1, 2)
    proc = await _start(fake, *args)
    await asyncio.wait_for(held.wait(), 60)
    proc.send_signal(signal.SIGINT)
    _, err_b = await asyncio.wait_for(proc.communicate(), 60)
    err = err_b.decode()
    assert proc.returncode == 130, err
    assert "read every line; resume with --start-line 101 " in err
