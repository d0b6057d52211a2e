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
    assert len([r for r in fake.requests if r.method == "POST"]) == 4  # batches of 3, 3, 3, 1
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
    written = failed_out.read_text().splitlines()  # in input order, every line marked
    marked = [json.loads(line, parse_constant=str) for line in written]
    assert [m.pop("_failure") for m in marked] == [
        {
            "line": 3,
            "error": "not valid JSON (Expecting property name enclosed in double "
            "quotes at column 2)",
            "raw": "{not json",
        },
        {"line": 4, "error": "id: is required"},
        {"line": 5, "error": "input: nan is not valid JSON"},
        {"line": 6, "error": "expected a JSON object, got list", "raw": "[1, 2]"},
    ]
    assert marked == [{}, {"input": 1}, {"id": "rec-2", "input": "NaN"}, {}]
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
    assert "line 5: rec-4: 400 Bad Request: record rec-4 is invalid" in run.err
    assert "applied 9 of 10 records" in run.out
    [line] = failed_out.read_text().splitlines()
    assert json.loads(line) == {
        "id": "rec-4",
        "input": "x",
        "_failure": {"line": 5, "error": "400 Bad Request: record rec-4 is invalid"},
    }


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


async def test_demo_runs_the_whole_workflow_through_faults() -> None:
    run = await _cli(None, "demo", "--records", "2000")
    assert run.code == 0, run.out + run.err
    assert "Traceback" not in run.err and "!!" not in run.out
    for step in (
        "found again by name",
        "created 2,000 of 2,000",
        "the job made 1 dataset version(s)",
        "checked all 2,000: ids unique, content as created",
        "updated 2,000 of 2,000",
        "checked all 2,000: every record holds its update",
        "6. experiments.run 'baseline': 2,000 records",
        "the fake holds 2,000 records with one span each and 4,000 metrics, each once",
        "the experiment reads 'interrupted'",
        "resumed: completed",
        "21 rows regressed",
        "verdict: OK",
    ):
        assert step in run.out
    answered = run.out.split("the fake API answered ")[1].split("\n")[0]
    faults = [int(part.split()[0]) for part in answered.split(", ")[1:]]
    assert len(faults) == 3 and all(faults), answered  # 429s, 503s and drops all happened


async def test_hostile_lines_are_reported_and_every_good_line_is_sent(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    def good(i: int) -> bytes:
        return json.dumps({"id": f"rec-{i}", "expected_output": f"new-{i}"}).encode()

    hostile = {
        2: b"[" * 100_000 + b"]" * 100_000,  # nesting 100,000 levels deep
        4: b'{"id": "rec-9", "input": "caf\xe9"}',  # Latin-1, not UTF-8
        6: b'{"id": "rec-9", "input": ' + b"7" * 5000 + b"}",  # 5,000-digit integer
        8: b'{"id": "rec-8", "input": "\\ud800"}',  # lone surrogate: fails, then written out
        10: '{"id": "rec-9", "input": "\u00e9\u00e9", x}'.encode(),  # error after 2-byte chars
    }
    lines = [hostile.get(n) or good(n // 2) for n in range(1, 12)]  # good: rec-0 .. rec-5
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    failed_out = tmp_path / "failed.jsonl"
    before = {i: dict(fake.records(seeded.dataset_id)[f"rec-{i}"]) for i in (8, 9)}
    run = await _cli(fake, *_records_args(seeded, "--failed-out", str(failed_out), str(path)))
    assert run.code == 1
    assert "Traceback" not in run.err
    assert "line 2: not valid JSON (nested too deeply)" in run.err
    assert "line 4: not valid UTF-8 (byte 0xe9 at column 30)" in run.err
    assert "line 6: not valid JSON (a number has too many digits)" in run.err
    assert "line 8: input: contains a lone surrogate" in run.err
    assert "line 10: not valid JSON (Expecting property name" in run.err
    assert "at column 32)" in run.err  # characters, not bytes
    assert "applied 6 of 11 records" in run.out
    stored = fake.records(seeded.dataset_id)
    assert [stored[f"rec-{i}"]["expected_output"] for i in range(6)] == [
        f"new-{i}" for i in range(6)
    ]
    assert {i: stored[f"rec-{i}"] for i in (8, 9)} == before
    *malformed, marked, last = failed_out.read_bytes().splitlines()  # in input order
    assert marked.startswith(b'{"id": "rec-8", "input": "\\ud800", "_failure": {"line": 8,')
    # A malformed line is marked too: the mark keeps it as text, every byte of it.
    marks = [json.loads(line)["_failure"] for line in [*malformed, last]]
    assert [m["line"] for m in marks] == [2, 4, 6, 10]
    assert [m["raw"].encode("utf-8", "surrogateescape") for m in marks] == [
        hostile[n] for n in (2, 4, 6, 10)
    ]
    assert marks[1]["error"] == "not valid UTF-8 (byte 0xe9 at column 30)"
    # Fed back in, a marked malformed line is the same malformed line again, never a record.
    again = tmp_path / "again.jsonl"
    run = await _cli(fake, *_records_args(seeded, "--failed-out", str(again), str(failed_out)))
    assert run.code == 1 and "applied 0 of 5 records" in run.out, run.err
    assert "line 2: not valid UTF-8 (byte 0xe9 at column 30)" in run.err
    remarked = [json.loads(line)["_failure"] for line in again.read_bytes().splitlines()]
    del remarked[3]  # rec-8, refused again
    assert remarked == [{**m, "line": n} for m, n in zip(marks, (1, 2, 3, 5), strict=True)]


async def test_a_byte_order_mark_is_not_data(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "rec-1", "input": 1}\n{"id": "rec-2", "input": 2}\n')
    run = await _cli(fake, *_records_args(seeded, str(path)))
    assert run.code == 0, run.err
    assert [fake.records(seeded.dataset_id)[f"rec-{i}"]["input"] for i in (1, 2)] == [1, 2]


@pytest.mark.parametrize(
    ("args", "env", "expected", "python_name"),
    [
        (("projects", "update", "x", "--name", "y"), {"DD_API_KEY": ""}, "DD_API_KEY", "api_key"),
        (("projects", "update", "x", "--name", "y"), {"DD_APP_KEY": ""}, "DD_APP_KEY", "app_key"),
        (
            ("projects", "update", "x", "--name", "y", "--base-url", "http://127.0.0.1:9"),
            {"DD_API_KEY": "k\n"},
            "DD_API_KEY: has a line break",
            "api_key",
        ),
        (
            ("projects", "update", "x", "--name", "y", "--site", "nope.com"),
            {},
            "use --base-url",
            "base_url",
        ),
        (
            ("projects", "update", "x", "--name", "y", "--base-url", "ftp://h"),
            {},
            "error: --base-url:",
            "base_url",
        ),
    ],
)
async def test_messages_speak_in_command_line_terms(
    args: tuple[str, ...], env: dict[str, str], expected: str, python_name: str
) -> None:
    environ = {"DD_API_KEY": "k", "DD_APP_KEY": "a", **env}
    run = await _cli(None, *args, env=environ)
    assert run.code == 2
    assert expected in run.err
    assert python_name not in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("verbose", [False, True])
async def test_the_library_log_shows_only_under_verbose(
    fake: FakeLLMObsServer, seeded: Seeded, verbose: bool
) -> None:
    fake.inject(status=503, times=None)
    args = ["projects", "update", seeded.project_id, "--name", "n", "--max-retries", "0"]
    run = await _cli(fake, *args, *(["-v"] if verbose else []))
    assert run.code == 1
    assert "503" in run.err  # the CLI's own message says what happened
    assert ("giving up" in run.err) is verbose


def _lines_with(n: int, unknown: dict[int, str], malformed: set[int]) -> bytes:
    out = []
    for i in range(n):
        if i in malformed:
            out.append("{not json")
        else:
            out.append(json.dumps({"id": unknown.get(i, f"rec-{i}"), "expected_output": "x"}))
    return ("\n".join(out) + "\n").encode()


async def test_failures_are_summarised_by_cause(fake: FakeLLMObsServer, tmp_path: Path) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=3000)
    unknown = {17: "gone-a", 1204: "gone-b", 2949: "gone-c"}
    malformed = set(range(100, 3000, 50))  # 58 malformed lines fill any "first N" list
    path = tmp_path / "in.jsonl"
    path.write_bytes(_lines_with(3000, unknown, malformed))
    args = ("records", "update", "--project-id", project_id, "--dataset-id", dataset_id)
    run = await _cli(fake, *args, str(path))
    assert run.code == 1
    assert "61 lines not applied, by cause (-v lists every line)" in run.err
    assert "3 records: 404 Not Found" in run.err
    assert "gone-a (line 18), gone-b (line 1205), gone-c (line 2950)" in run.err
    assert "58 lines: malformed: not valid JSON; line 101, line 151, line 201, ..." in run.err
    assert "line 151:" not in run.err  # not every line without -v
    assert f"applied {3000 - 61:,} of 3,000 records" in run.out

    verbose = await _cli(fake, *args, "-v", str(path))
    for number in (18, 1205, 2950, *(m + 1 for m in malformed)):
        assert f"llmobs-async: line {number}: " in verbose.err


async def test_a_batch_level_error_is_never_hidden(fake: FakeLLMObsServer, tmp_path: Path) -> None:
    project_id = fake.add_project()
    path = tmp_path / "in.jsonl"
    path.write_bytes(_lines_with(3000, {}, set(range(0, 3000, 100))))  # 30 malformed, first
    args = ("records", "update", "--project-id", project_id, "--dataset-id", "no-such-dataset")
    run = await _cli(fake, *args, str(path))
    assert run.code == 1
    err = run.err.splitlines()
    causes = err.index(next(line for line in err if "by cause" in line))
    # The dataset's 404 comes first, however many malformed lines there are.
    assert (
        "404 Not Found [whole batch refused] (dataset no-such-dataset not found)" in err[causes + 1]
    )
    assert "malformed" in run.err
    assert "applied 0 of 3,000 records" in run.out


async def test_the_progress_bar_is_for_terminals_only() -> None:
    import io

    from llmobs_async import BulkProgress
    from llmobs_async._cli.output import ProgressBar

    screen = io.StringIO()
    bar = ProgressBar(screen, total=1000, enabled=True)
    bar(BulkProgress(submitted=600, applied=500, failed=3, retries=7))
    bar.close()
    drawn = screen.getvalue()
    assert drawn.startswith("\r[") and drawn.endswith("\n")
    for part in ("503/1,000", "applied 500", "failed 3", "retries 7", "rec/s"):
        assert part in drawn
    quiet = io.StringIO()
    bar = ProgressBar(quiet, total=1000, enabled=False)
    bar(BulkProgress(submitted=600, applied=500, failed=3, retries=7))
    bar.close()
    assert quiet.getvalue() == ""
