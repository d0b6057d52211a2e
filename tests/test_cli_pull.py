"""``records list`` at scale and when stopped: 100,000 records, errors, Ctrl-C, resuming.

Real subprocesses against the real fake server; a stopped pull must have
written only whole pages and say the cursor that resumes it, so that the
two runs together hold every record exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import sys
import time
from pathlib import Path

from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .test_cli import _cli
from .test_cli_interrupt import _start

PAGE = 500


def _is_page(request: RecordedRequest) -> bool:
    return request.method == "GET" and request.url_path.endswith("/records")


def _ids(path: Path) -> collections.Counter[str]:
    return collections.Counter(json.loads(line)["id"] for line in path.read_bytes().splitlines())


def _cursor(err: str) -> str:
    """The cursor a stopped run says to resume from."""
    return err.split("resume with --cursor ")[1].split()[0].strip("'")


def _list_args(project_id: str, dataset_id: str, out: Path, *rest: str) -> tuple[str, ...]:
    return (
        "records",
        "list",
        "--project-id",
        project_id,
        "--dataset-id",
        dataset_id,
        "--page-size",
        str(PAGE),
        "-o",
        str(out),
        *rest,
    )


async def test_a_100000_record_dataset_into_a_file(fake: FakeLLMObsServer, tmp_path: Path) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=100_000)
    out = tmp_path / "all.jsonl"
    args = ("records", "list", "--project-id", project_id, "--dataset-id", dataset_id)
    started = time.monotonic()
    run = await _cli(fake, *args, "--page-size", "5000", "-o", str(out))
    elapsed = time.monotonic() - started
    assert run.code == 0, run.err
    ids = _ids(out)
    assert len(ids) == 100_000 and set(ids.values()) == {1}
    assert set(ids) == {f"rec-{i}" for i in range(100_000)}
    assert "wrote 100,000 records (20 pages)" in run.err
    assert run.out == ""  # the records went to the file
    assert elapsed < 60, f"100,000 records took {elapsed:.1f}s"


async def test_a_pull_failing_midway_resumes_from_the_cursor_it_prints(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=5000)
    out = tmp_path / "records.jsonl"
    out.write_bytes(b'{"id": "from-a-previous-pull"}\n')
    partial = tmp_path / "records.jsonl.partial"
    # Pages 1-3 arrive; the 4th fails for good (no retries), whatever is asked again.
    fake.inject(status=503, times=None, after=3, match=_is_page)
    run = await _cli(fake, *_list_args(project_id, dataset_id, out, "--max-retries", "0"))
    assert run.code == 1
    assert "503" in run.err and "Traceback" not in run.err
    assert f"wrote {3 * PAGE:,} records (3 pages) to {partial}" in run.err
    assert len(_ids(partial)) == 3 * PAGE  # whole pages only
    assert _ids(out) == {"from-a-previous-pull": 1}  # untouched until the pull is complete
    cursor = _cursor(run.err)
    assert "--append" in run.err

    fake.clear_faults()
    run = await _cli(fake, *_list_args(project_id, dataset_id, out, "--cursor", cursor, "--append"))
    assert run.code == 0, run.err
    assert not partial.exists()
    ids = _ids(out)
    assert set(ids) == {f"rec-{i}" for i in range(5000)}
    assert set(ids.values()) == {1}  # nothing lost, nothing twice


async def test_ctrl_c_mid_pull_says_where_to_resume(fake: FakeLLMObsServer, tmp_path: Path) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=5000)
    out = tmp_path / "records.jsonl"
    held = asyncio.Event()
    answered, pages = 4, 0

    def hold(request: RecordedRequest) -> bool:
        nonlocal pages
        pages += _is_page(request)
        if pages <= answered:
            return False
        held.set()  # the 5th page request (and any after it): held for a minute
        return True

    fake.inject(delay=60, times=None, match=hold)
    proc = await _start(fake, *_list_args(project_id, dataset_id, out))
    await asyncio.wait_for(held.wait(), 60)
    proc.send_signal(signal.SIGINT)
    _, err_b = await asyncio.wait_for(proc.communicate(), 30)
    err = err_b.decode()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert f"wrote {answered * PAGE:,} records ({answered} pages)" in err
    assert len(_ids(tmp_path / "records.jsonl.partial")) == answered * PAGE
    assert not out.exists()

    fake.clear_faults()
    run = await _cli(
        fake, *_list_args(project_id, dataset_id, out, "--cursor", _cursor(err), "--append")
    )
    assert run.code == 0, run.err
    ids = _ids(out)
    assert set(ids) == {f"rec-{i}" for i in range(5000)}
    assert set(ids.values()) == {1}


async def test_a_pull_that_fails_before_its_first_page_leaves_the_previous_file_alone(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=1000)
    out = tmp_path / "records.jsonl"
    run = await _cli(fake, *_list_args(project_id, dataset_id, out))
    assert run.code == 0, run.err
    pulled = out.read_bytes()
    run = await _cli(
        fake, *_list_args(project_id, dataset_id, out), env={"DD_API_KEY": "a-wrong-key"}
    )
    assert run.code == 1 and "403" in run.err, run.err
    assert out.read_bytes() == pulled  # a wrong key no longer empties the complete pull
    assert os.listdir(tmp_path) == ["records.jsonl"]
    assert f"wrote 0 records (0 pages) ({out} is unchanged)" in run.err


async def test_a_refused_cursor_is_not_suggested_again(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=10)
    out = tmp_path / "records.jsonl"
    run = await _cli(fake, *_list_args(project_id, dataset_id, out, "--cursor", "not-a-cursor"))
    assert run.code == 1 and "400" in run.err, run.err
    assert "resume with" not in run.err
    assert "the API refused the request from --cursor not-a-cursor" in run.err
    # A cursor that was not refused (the first page failed for another reason) still is.
    fake.inject(status=503, times=None, match=_is_page)
    cursor = "cmVjb3Jkcw"
    run = await _cli(
        fake, *_list_args(project_id, dataset_id, out, "--cursor", cursor, "--max-retries", "0")
    )
    assert run.code == 1 and f"resume with --cursor {cursor} --append" in run.err, run.err


async def test_a_pull_rides_out_faults(fake: FakeLLMObsServer, tmp_path: Path) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=3000)
    fake.inject(status=503, after=1, match=_is_page)
    fake.inject_rate_limit(reset=0.05, limit=1000, period=1.0, after=2, match=_is_page)
    fake.inject(drop=True, after=3, match=_is_page)
    out = tmp_path / "records.jsonl"
    run = await _cli(fake, *_list_args(project_id, dataset_id, out))
    assert run.code == 0, run.err
    assert set(_ids(out).values()) == {1} and len(_ids(out)) == 3000
    statuses = collections.Counter(r.status for r in fake.requests if _is_page(r))
    assert (statuses[0], statuses[429], statuses[503]) == (1, 1, 1)


async def test_records_list_stops_quietly_when_the_reader_does(fake: FakeLLMObsServer) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=20_000)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    environ.update(DD_API_KEY=fake.api_key, DD_APP_KEY=fake.app_key)
    command = (
        f"{sys.executable} -m llmobs_async records list --project-id {project_id} "
        f"--dataset-id {dataset_id} --page-size 100 --base-url {fake.base_url} | head -n 2"
    )
    proc = await asyncio.create_subprocess_shell(
        command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert len(out.splitlines()) == 2
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert len([r for r in fake.requests if _is_page(r)]) < 200  # it stopped pulling


def test_a_record_line_is_what_records_create_reads_then_the_api_fields() -> None:
    from llmobs_async._cli.output import record_line
    from llmobs_async._wire.records import structure_record

    record = structure_record(
        {
            "id": "r1",
            "type": "datasets",
            "attributes": {
                "input": {"big": 2**70, "text": "caf\u00e9"},
                "metadata": {"k": None},
                "tags": ["a:b"],
                "version": 3,
                "created_at": "2026-11-23T13:32:39.421652+00:00",
                "author": {"id": "u1", "name": "Ada"},
                "brand_new_field": [1],
            },
        }
    )
    line = record_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    doc = json.loads(line)
    assert list(doc)[:5] == ["id", "input", "expected_output", "metadata", "tags"]
    assert doc["input"] == {"big": 2**70, "text": "caf\u00e9"}  # beyond orjson's 64 bits
    assert (doc["expected_output"], doc["metadata"], doc["version"]) == (None, {"k": None}, 3)
    assert doc["author"] == {"id": "u1", "name": "Ada"}
    assert doc["brand_new_field"] == [1]  # what the API adds tomorrow is kept
    assert doc["created_at"] == "2026-11-23T13:32:39.421652+00:00"


def test_the_pull_counter_draws_on_terminals_only() -> None:
    import io

    from llmobs_async._cli.output import CountBar

    screen = io.StringIO()
    bar = CountBar(screen, what="pulled", enabled=True)
    bar(5000, 5)
    bar.close()
    drawn = screen.getvalue()
    assert drawn.startswith("\rpulled 5,000 records  5 pages") and drawn.endswith("\n")
    quiet = io.StringIO()
    bar = CountBar(quiet, what="pulled", enabled=False)
    bar(5000, 5)
    bar.close()
    assert quiet.getvalue() == ""
