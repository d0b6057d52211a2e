"""``llmobs-async records create FILE.csv``: CSV rows through the bulk engine, by line."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import pytest

from llmobs_async._cli import main
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded
from .fakehttp import hold_after
from .test_cli import _cli
from .test_cli_interrupt import _start

COLUMNS = (
    *("--input-columns", "question", "--expected-output-columns", "answer"),
    *("--metadata-columns", "source,lang", "--id-column", "rid"),
)


def _ds(seeded: Seeded) -> tuple[str, ...]:
    return ("--project-id", seeded.project_id, "--dataset-id", seeded.dataset_id)


async def test_a_csv_file_is_created_by_line_and_its_failures_written_to_re_run(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    fake.reject_record("refused")
    path, failed_out = tmp_path / "in.csv", tmp_path / "failed.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbfrid,question,answer,source,lang,extra\r\n"  # 1
        b'one,"What is\r\nthe capital?",Boston,atlas,en,x\r\n'  # 2-3
        b"two,short,row\r\n"  # 4
        b'refused,"Why\nnot?",no,faq,en,x\r\n'  # 5-6
        b"\r\n"  # 7
        b"three,q3,a3,s3,fr,x\r\n"  # 8
        b'four,"unclosed,a4,s4,en,x\r\n'  # 9-10 (to the end of the file)
    )
    args = ("records", "create", *_ds(seeded), *COLUMNS, "--failed-out", str(failed_out))
    run = await _cli(fake, *args, str(path))
    assert run.code == 1, run.err
    assert "Traceback" not in run.err
    assert "line 4: has 3 fields; the header has 6" in run.err
    assert "line 5: refused: 400 Bad Request: record refused is invalid" in run.err
    assert "line 9: not valid CSV (unexpected end of data)" in run.err
    assert "created 2 of 5 records" in run.out
    stored = fake.records(seeded.dataset_id)
    assert stored["one"]["input"] == {"question": "What is\r\nthe capital?"}
    assert stored["one"]["expected_output"] == {"answer": "Boston"}
    assert stored["one"]["metadata"] == {"source": "atlas", "lang": "en"}
    assert stored["three"]["metadata"] == {"source": "s3", "lang": "fr"}
    assert "refused" not in stored and "two" not in stored

    written = [json.loads(line) for line in failed_out.read_text().splitlines()]
    assert [w["_failure"]["line"] for w in written] == [4, 5, 9]
    assert written[0] == {
        "_failure": {"line": 4, "error": "has 3 fields; the header has 6", "raw": "two,short,row"}
    }
    assert written[1]["id"] == "refused" and written[1]["input"] == {"question": "Why\nnot?"}
    assert "record refused is invalid" in written[1]["_failure"]["error"]

    # The failed records re-run as JSON Lines; the malformed rows have no input: not sent.
    fake.clear_faults()
    run = await _cli(fake, "records", "create", *_ds(seeded), str(failed_out))
    assert run.code == 1
    assert "created 1 of 3 records" in run.out
    assert fake.records(seeded.dataset_id)["refused"]["metadata"] == {"source": "faq", "lang": "en"}


async def test_csv_options_are_checked_before_anything_is_sent(
    fake: FakeLLMObsServer,
    seeded: Seeded,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DD_API_KEY", fake.api_key)
    monkeypatch.setenv("DD_APP_KEY", fake.app_key)
    library = logging.getLogger("llmobs_async")  # main() sets it up for the command line
    monkeypatch.setattr(library, "handlers", [])
    monkeypatch.setattr(library, "propagate", True)

    async def cli(*args: str) -> tuple[int, str]:
        argv = ["records", "create", *_ds(seeded), *args, "--base-url", fake.base_url, "-q"]
        code = await asyncio.to_thread(main, argv)  # its own event loop; the fake runs on ours
        return code, capsys.readouterr().err

    path = tmp_path / "in.csv"
    path.write_text("rid,question\nr1,q1\n")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"input": 1}\n')
    for extra, file, said in (
        ((), path, "--input-columns: is required for a CSV file"),
        (("--input-columns", "question", "--metadata-columns", "lang"), path, "--metadata-columns"),
        (("--input-columns", "question"), jsonl, "--input-columns: applies to CSV input only"),
        (("--input-columns", "q", "--delimiter", "ab"), path, "--delimiter: must be one character"),
        (
            ("--input-columns", "lang"),
            path,
            "column 'lang' not in the CSV header ('rid', 'question')",
        ),
    ):
        code, err = await cli(*extra, str(file))
        assert code == 2, err
        assert said in err
    assert fake.requests == []
    # --format csv reads any name (here: stdin) as CSV.
    args = ("records", "create", *_ds(seeded), "--format", "csv", "--input-columns", "question")
    run = await _cli(fake, *args, "--id-column", "rid", "-", stdin=path.read_bytes())
    assert run.code == 0, run.err
    assert fake.records(seeded.dataset_id)["r1"]["input"] == {"question": "q1"}


TOTAL, BATCH, ANSWERED, CONCURRENCY = 6_000, 100, 10, 16


async def test_ctrl_c_on_a_csv_run_says_the_line_to_resume_from(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id)
    path, failed_out = tmp_path / "in.csv", tmp_path / "failed.jsonl"
    rows = "".join(f'r{i},"question\n{i}"\n' for i in range(TOTAL))  # two lines a record
    path.write_text("rid,question\n" + rows, newline="")
    args = ["records", "create", "--project-id", project_id, "--dataset-id", dataset_id]
    args += ["--input-columns", "question", "--id-column", "rid"]
    args += ["--batch-size", str(BATCH), "--grace", "0.2", "--failed-out", str(failed_out)]
    held = hold_after(fake, ANSWERED, CONCURRENCY)
    proc = await _start(fake, *args, str(path))
    await asyncio.wait_for(held.wait(), 60)
    proc.send_signal(signal.SIGINT)
    out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "not sent" in out
    resume = int(err.split("resume with --start-line ")[1].split()[0])

    # Every record starting before the resume line is created; what was read and
    # not sent is in --failed-out with the line it starts on, the first at the resume line.
    created = set(fake.records(dataset_id))
    assert len(created) == ANSWERED * BATCH
    assert {f"r{i}" for i in range((resume - 2) // 2)} <= created
    lines = [json.loads(line) for line in failed_out.read_text().splitlines()]
    assert [w["_failure"]["line"] for w in lines] == [2 + 2 * int(w["id"][1:]) for w in lines]
    assert all(w["_failure"]["unsent"] for w in lines)
    assert not {w["id"] for w in lines} & created
    assert lines[0]["_failure"]["line"] == resume  # a record's first line, not its second

    # Following the printed line alone creates every record left, each once.
    fake.clear_faults()
    rest = await _start(fake, *args[:-2], "--start-line", str(resume), str(path))
    _, err_b = await asyncio.wait_for(rest.communicate(), 60)
    assert rest.returncode == 0, err_b.decode()
    assert set(fake.records(dataset_id)) == {f"r{i}" for i in range(TOTAL)}
