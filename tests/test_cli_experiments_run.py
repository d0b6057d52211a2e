"""``llmobs-async experiments run/resume/compare`` end to end against the fake.

Summaries, JSON, task errors, a refused push and its resume line, a real
SIGINT followed by the printed resume line, and compare's CI gate.
"""

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

from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .conftest import Seeded
from .test_cli import _cli
from .test_cli_experiments import _run_args, write_evals


@pytest.fixture
def evals(tmp_path: Path) -> dict[str, str]:
    """The environment that makes the module ``evals`` importable by the subprocess."""
    return write_evals(tmp_path)


RUN = ("--task", "evals:answer", "--evaluator", "evals:exact", "--evaluator", "evals:length")
RUN += ("--summary-evaluator", "evals:accuracy")


def _rows_in_fake(fake: FakeLLMObsServer, experiment_id: str) -> dict[tuple[str, int], list[str]]:
    """The statuses of the spans pushed for each (record, run_iteration)."""
    rows: dict[tuple[str, int], list[str]] = {}
    for span in fake.events(experiment_id).spans.values():
        tags = dict(tag.split(":", 1) for tag in span.get("tags") or ())
        key = (tags["dataset_record_id"], int(tags["run_iteration"]))
        rows.setdefault(key, []).append(span["status"])
    return rows


def _labels_by_span(fake: FakeLLMObsServer, experiment_id: str) -> dict[str, set[str]]:
    labels: dict[str, set[str]] = {}
    for metric in fake.events(experiment_id).metrics:
        labels.setdefault(metric["span_id"], set()).add(metric["label"])
    return labels


def _assert_complete(fake: FakeLLMObsServer, experiment_id: str, records: int, runs: int) -> None:
    """Every (record, run) has exactly one ok span and each evaluator's metric on it."""
    rows = _rows_in_fake(fake, experiment_id)
    expected = {(f"rec-{i}", n) for i in range(records) for n in range(1, runs + 1)}
    assert set(rows) == expected
    assert all(statuses.count("ok") == 1 for statuses in rows.values()), rows
    labels = _labels_by_span(fake, experiment_id)
    for span_id, span in fake.events(experiment_id).spans.items():
        if span["status"] == "ok":
            assert {"exact", "length"} <= labels.get(span_id, set()), span
    summary = [m for m in fake.events(experiment_id).metrics if m["metric_source"] == "summary"]
    assert "accuracy" in {m["label"] for m in summary}
    assert fake.experiments[experiment_id]["status"] == "completed"


async def test_run_end_to_end_prints_a_summary_and_exits_0(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    run = await _cli(fake, *_run_args(seeded, *RUN, "--runs", "2"), env=evals)
    assert run.code == 0, run
    (experiment_id,) = set(fake.experiments) - {seeded.experiment_id}
    _assert_complete(fake, experiment_id, records=10, runs=2)
    lines = run.out.splitlines()
    assert lines[0].startswith(f"experiment  {experiment_id}  nightly")
    assert lines[0].endswith("completed")
    assert "rows        20 run in" in run.out
    assert "; 0 task errors" in run.out
    assert "61 spans and metrics acknowledged; 0 spans and 0 metrics not recorded" in run.out
    assert "evaluators  accuracy  " not in run.out
    assert "exact     boolean      true 100.0% (n=20)" in run.out
    assert "length    score        mean 5 (n=20)" in run.out  # out-0 .. out-9: 5 characters
    assert "summary     accuracy  1" in run.out
    assert run.err == ""  # no progress bar when stderr is not a terminal


async def test_run_json_with_task_errors_is_completed_and_exits_0(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    config = json.dumps({"fail": [3, 7]})
    run = await _cli(
        fake,
        *_run_args(seeded, *RUN, "--evaluator", "evals:Tone", "--evaluator", "evals:picky"),
        "--config",
        config,
        "--json",
        "--max-task-retries",
        "0",
        env=evals,
    )
    assert run.code == 0, run  # a task error is a row: the run completed
    doc = json.loads(run.out)
    assert doc["status"] == "completed"
    assert (doc["rows_done"], doc["task_errors"]) == (10, 2)
    assert doc["pushed"] == {
        "acknowledged": 10 + 8 * 4 + 1,
        "failed_spans": 0,
        "failed_metrics": 0,
        "retries": 0,
    }
    assert doc["evaluators"]["exact"] == {
        "metric_type": "boolean",
        "count": 8,
        "errors": 2,
        "true_rate": 1.0,
    }
    assert doc["evaluators"]["tone"] == {  # a class-based evaluator, made by the CLI
        "metric_type": "categorical",
        "count": 8,
        "errors": 2,
        "categories": {"plain": 8},
    }
    assert doc["evaluators"]["picky"] == {  # async, raised once
        "metric_type": "score",
        "count": 7,
        "errors": 3,
        "mean": 0.5,
    }
    assert doc["summary"] == {"accuracy": 0.8}
    assert "resume" not in doc
    # The aggregates were counted as the run went (no read-back), and agree with compare's.
    assert not [r for r in fake.requests_to("/events") if r.method == "GET"]
    eid = doc["experiment_id"]
    same = await _cli(fake, "experiments", "compare", eid, eid, "--json")
    metrics = json.loads(same.out)["metrics"]
    compared = {k: {"metric_type": m["metric_type"], **m["candidate"]} for k, m in metrics.items()}
    for label in ("exact", "tone", "picky"):
        kind = doc["evaluators"][label].pop("metric_type")
        assert compared[label] == {"metric_type": kind, **doc["evaluators"][label]}
    statuses = _rows_in_fake(fake, doc["experiment_id"])
    assert statuses[("rec-3", 1)] == statuses[("rec-7", 1)] == ["error"]


async def test_run_config_from_a_file(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"wrong": [0, 1, 2, 3]}))
    run = await _cli(fake, *_run_args(seeded, *RUN, "--config", f"@{path}", "--json"), env=evals)
    assert run.code == 0, run
    doc = json.loads(run.out)
    assert doc["evaluators"]["exact"]["true_rate"] == 0.6
    assert fake.experiments[doc["experiment_id"]]["config"] == {"wrong": [0, 1, 2, 3]}


async def test_two_evaluators_with_one_name_are_refused_naming_the_option(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    # The runner's own check (in a subprocess: it runs where Ctrl-C is handled).
    twice = ("--evaluator", "evals:exact", "--evaluator", "evals:exact")
    run = await _cli(fake, *_run_args(seeded, "--task", "evals:answer", *twice), env=evals)
    assert run.code == 2, run
    assert fake.requests == []
    assert (
        "llmobs-async: error: --evaluator evals:exact: two evaluators are named 'exact'"
    ) in run.err


async def test_a_run_whose_metrics_are_refused_fails_exits_1_and_says_how_to_resume(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    def metrics_push(request: RecordedRequest) -> bool:
        return request.method == "POST" and request.url_path.endswith("/events")

    fake.inject(status=400, times=None, match=metrics_push)
    run = await _cli(fake, *_run_args(seeded, *RUN), env=evals)
    assert run.code == 1, run
    (experiment_id,) = set(fake.experiments) - {seeded.experiment_id}
    assert fake.experiments[experiment_id]["status"] == "failed"
    assert "experiment  " in run.out and "  failed" in run.out.splitlines()[0]
    assert "10 spans and 21 metrics not recorded" in run.out
    assert f"llmobs-async: experiment {experiment_id} failed: " in run.err
    assert "not recorded: " in run.err
    line = _resume_line(run.err)
    assert line[:4] == ["llmobs-async", "experiments", "resume", experiment_id]

    fake.clear_faults()  # the cause fixed: the printed line finishes the experiment
    again = await _cli(fake, *line[1:], env=evals)
    assert again.code == 0, again
    _assert_complete(fake, experiment_id, records=10, runs=1)


def _resume_line(err: str) -> list[str]:
    """The printed ``experiments resume`` command, split as a shell would."""
    (line,) = [ln for ln in err.splitlines() if ln.startswith("  llmobs-async experiments resume")]
    return shlex.split(line)


async def test_run_against_an_unknown_dataset_exits_1_with_the_api_error(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    args = ("experiments", "run", "--project-id", seeded.project_id, "--dataset-id", "nope")
    run = await _cli(fake, *args, "--name", "n", *RUN, env=evals)
    assert run.code == 1, run
    assert "404" in run.err
    assert "Traceback" not in run.err
    assert set(fake.experiments) == {seeded.experiment_id}


async def _start(fake: FakeLLMObsServer, evals: dict[str, str], *args: str) -> Any:
    """``llmobs-async *args`` against ``fake``, as a process whose stderr the test reads."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    environ.update(evals, DD_API_KEY=fake.api_key, DD_APP_KEY=fake.app_key)
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


async def _until(proc: Any, text: bytes) -> bytes:
    """Read ``proc``'s stderr up to the line holding ``text``; what was read."""
    said = b""
    while text not in said:
        line = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert line, said  # the process ended without saying it
        said += line
    return said


async def _interrupted_run(fake: FakeLLMObsServer, evals: dict[str, str], records: int) -> Any:
    """``experiments run`` over ``records`` records twice, at its first progress line."""
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=records)
    fake.latency = 0.02  # a service time: the run is still going when Ctrl-C comes
    args = ["experiments", "run", "--project-id", project_id, "--dataset-id", dataset_id]
    args += ["--name", "nightly", *RUN, "--runs", "2", "--concurrency", "4", "--progress"]
    args += ["--config", json.dumps({"sleep": 0.02})]
    proc = await _start(fake, evals, *args)
    await _until(proc, b" rows/s ")  # the first progress line: rows are being run
    return proc


async def test_ctrl_c_marks_the_run_interrupted_and_its_resume_line_finishes_it(
    fake: FakeLLMObsServer, evals: dict[str, str]
) -> None:
    records = 200
    proc = await _interrupted_run(fake, evals, records)
    proc.send_signal(signal.SIGINT)
    out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
    err = err_b.decode()
    assert proc.returncode == 130, (out_b, err)
    assert "Traceback" not in err
    (experiment_id,) = fake.experiments
    assert fake.experiments[experiment_id]["status"] == "interrupted"
    done = _rows_in_fake(fake, experiment_id)
    assert 0 < len(done) < records * 2  # stopped mid-run
    assert out_b.decode().splitlines()[0].endswith("  interrupted")  # the summary so far
    assert f"experiment {experiment_id} is marked interrupted; finish it with:" in err
    line = _resume_line(err)
    assert line[:4] == ["llmobs-async", "experiments", "resume", experiment_id]
    for option in RUN[::2]:
        assert line.count(option) == RUN.count(option)  # every task and evaluator
    assert line[line.index("--concurrency") + 1] == "4"

    fake.latency = 0.0
    again = await _cli(fake, *line[1:], env=evals)
    assert again.code == 0, again
    _assert_complete(fake, experiment_id, records=records, runs=2)
    assert f"experiment  {experiment_id}  nightly" in again.out
    assert "exact     boolean      true 100.0% (n=400)" in again.out  # the whole experiment
    assert "summary     accuracy  1" in again.out


async def test_a_second_ctrl_c_quits_at_once_and_still_says_how_to_finish(
    fake: FakeLLMObsServer, evals: dict[str, str]
) -> None:
    def marking_interrupted(request: RecordedRequest) -> bool:
        return request.method == "PATCH" and b'"interrupted"' in request.body

    fake.inject(delay=60, times=None, match=marking_interrupted)  # the first Ctrl-C waits
    proc = await _interrupted_run(fake, evals, 200)
    proc.send_signal(signal.SIGINT)
    await _until(proc, b"interrupted: stopping the run")
    proc.send_signal(signal.SIGINT)  # the runner waits up to 10 s for the status: not this
    _, err_b = await asyncio.wait_for(proc.communicate(), 5)
    assert proc.returncode == 130
    (experiment_id,) = fake.experiments
    err = err_b.decode()
    assert f"quitting at once; experiment {experiment_id} may be left running." in err
    assert _resume_line(err)[3] == experiment_id


async def test_ctrl_c_exits_130_even_when_the_status_cannot_be_set(
    fake: FakeLLMObsServer, evals: dict[str, str]
) -> None:
    def marking_interrupted(request: RecordedRequest) -> bool:
        return request.method == "PATCH" and b'"interrupted"' in request.body

    fake.inject(status=400, times=None, match=marking_interrupted)
    proc = await _interrupted_run(fake, evals, 200)
    proc.send_signal(signal.SIGINT)
    _, err_b = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 130
    (experiment_id,) = fake.experiments
    assert fake.experiments[experiment_id]["status"] == "running"
    err = err_b.decode()
    assert f"experiment {experiment_id} could not be marked so; finish it with:" in err, err
    assert _resume_line(err)[3] == experiment_id


async def _experiment(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str], config: dict[str, Any]
) -> str:
    run = await _cli(
        fake,
        *_run_args(seeded, *RUN, "--evaluator", "evals:polite", "--json"),
        "--config",
        json.dumps(config),
        env=evals,
    )
    assert run.code == 0, run
    experiment_id: str = json.loads(run.out)["experiment_id"]
    return experiment_id


async def test_run_passes_every_experiment_option_on(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    version = fake.datasets[seeded.dataset_id].version
    fake.add_records(seeded.dataset_id, [{"id": "rec-new", "input": {"i": 99}}])
    options = ("--sample-size", "3", "--dataset-version", str(version), "--runs", "2")
    options += ("--description", "from CI", "--tag", "team:evals", "--json")
    run = await _cli(fake, *_run_args(seeded, *RUN, *options), env=evals)
    assert run.code == 0, run
    doc = json.loads(run.out)
    stored = fake.experiments[doc["experiment_id"]]
    assert (stored["description"], stored["dataset_version"]) == ("from CI", version)
    rows = _rows_in_fake(fake, doc["experiment_id"])
    assert len(rows) == doc["rows_done"] == 6  # the first 3 records, twice
    assert all(key[0] != "rec-new" for key in rows)  # not in the version asked for
    spans = fake.events(doc["experiment_id"]).spans.values()
    assert all("team:evals" in span["tags"] for span in spans)


async def test_resume_of_a_complete_experiment_runs_nothing_and_sums_it_all_up(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    experiment_id = await _experiment(fake, seeded, evals, {"wrong": [4]})
    pushes = [r for r in fake.requests_to("/events") if r.method == "POST"]
    run = await _cli(fake, "experiments", "resume", experiment_id, *RUN, "--json", env=evals)
    assert run.code == 0, run
    doc = json.loads(run.out)
    assert (doc["status"], doc["rows_done"]) == ("completed", 0)
    assert doc["evaluators"]["exact"]["true_rate"] == 0.9  # every row of the experiment
    assert doc["summary"] == {"accuracy": 0.9}
    after = [r for r in fake.requests_to("/events") if r.method == "POST"]
    assert len(after) == len(pushes) + 1  # the summary, recomputed
    assert len(fake.events(experiment_id).spans) == 10  # no task ran again


async def test_resume_refusals(fake: FakeLLMObsServer, evals: dict[str, str]) -> None:
    run = await _cli(fake, "experiments", "resume", "some-id", env=evals)
    assert run.code == 2
    assert "the following arguments are required: --task" in run.err
    run = await _cli(fake, "experiments", "resume", "some-id", "--task", "evals:nope", env=evals)
    assert run.code == 2
    assert "--task: module 'evals' has no 'nope'" in run.err
    assert fake.requests == []
    run = await _cli(fake, "experiments", "resume", "no-such-id", *RUN, env=evals)
    assert run.code == 1, run
    assert "404" in run.err and "Traceback" not in run.err
