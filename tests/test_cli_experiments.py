"""``llmobs-async experiments run/resume/compare``: the runner from the shell, against the fake.

The tasks and evaluators live in a small module written to ``tmp_path`` and
found through PYTHONPATH, as a user's own module would be.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shlex
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from llmobs_async._cli.output import RunBar
from llmobs_async.experiments import RunProgress
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .conftest import Seeded
from .test_cli import Run, _cli

EVALS = textwrap.dedent(
    """
    import asyncio

    async def answer(input_data, config):
        await asyncio.sleep(float(config.get("sleep", 0)))
        i = input_data["i"]
        if i in config.get("fail", ()):
            raise ValueError(f"no answer for {i}")
        return "bad" if i in config.get("wrong", ()) else f"out-{i}"

    def exact(input_data, output_data, expected_output):
        return output_data == f"out-{input_data['i']}"

    def length(input_data, output_data, expected_output):
        return len(output_data)

    def polite(input_data, output_data, expected_output):
        return True

    def accuracy(inputs, outputs, expected_outputs, evaluators_results):
        return sum(1 for value in evaluators_results["exact"] if value) / len(inputs)

    async def picky(input_data, output_data, expected_output):
        if input_data["i"] == 5:
            raise ValueError("cannot judge 5")
        return 0.5

    class Tone:
        name = "tone"

        def evaluate(self, context):
            return "plain" if context.output_data.islower() else "loud"

    NOT_CALLABLE = 42

    class NeedsArgs:
        name = "needs"

        def __init__(self, threshold):
            self.threshold = threshold

        def evaluate(self, context):
            return True
    """
)


@pytest.fixture
def evals(tmp_path: Path) -> dict[str, str]:
    """The environment that makes the module ``evals`` importable by the subprocess."""
    (tmp_path / "evals.py").write_text(EVALS)
    (tmp_path / "broken.py").write_text("x = 1\n\nraise RuntimeError('no model key')\n")
    (tmp_path / "badsyntax.py").write_text("def f(:\n    pass\n")
    (tmp_path / "importsmissing.py").write_text("import no_such_dependency_xyz\n")
    return {"PYTHONPATH": str(tmp_path)}


def _run_args(seeded: Seeded, *rest: str) -> tuple[str, ...]:
    return (
        "experiments",
        "run",
        "--project-id",
        seeded.project_id,
        "--dataset-id",
        seeded.dataset_id,
        "--name",
        "nightly",
        *rest,
    )


async def _refused(fake: FakeLLMObsServer, seeded: Seeded, env: dict[str, str], *rest: str) -> Run:
    """Run ``experiments run`` with ``rest``; it must be a usage error that sent nothing."""
    run = await _cli(fake, *_run_args(seeded, *rest), env=env)
    assert run.code == 2, run
    assert "Traceback" not in run.err
    assert fake.requests == []
    assert fake.experiments.keys() == {seeded.experiment_id}  # none created
    return run


async def test_help_names_every_option_and_the_exit_statuses() -> None:
    run = await _cli(None, "experiments", "run", "--help")
    assert run.code == 0
    for word in ("--task", "--evaluator", "--summary-evaluator", "--config", "--runs"):
        assert word in run.out
    assert "130 interrupted" in run.out
    run = await _cli(None, "experiments", "compare", "--help")
    assert "--fail-on-regression" in run.out
    assert "1 one of them regressed" in run.out


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("no_such_module_xyz:answer", "--task: cannot import 'no_such_module_xyz': no module"),
        ("evals:nope", "--task: module 'evals' has no 'nope' (from 'evals:nope')"),
        ("evals", "--task: must be MODULE:FUNCTION, e.g. my_evals.checks:exact; got 'evals'"),
        ("evals:NOT_CALLABLE", "--task: 'evals:NOT_CALLABLE' is a int, not a function"),
        ("broken:f", "--task: importing 'broken' failed: RuntimeError: no model key ("),
        ("badsyntax:f", "--task: importing 'badsyntax' failed: SyntaxError: "),
        (
            "importsmissing:f",
            "--task: importing 'importsmissing' failed: ModuleNotFoundError: "
            "No module named 'no_such_dependency_xyz' (",
        ),
        ("missing/file.py:f", "--task: cannot import 'missing/file.py': no such file"),
        (
            "evals:length",
            "--task: 'evals:length' takes (input_data, output_data, expected_output), but is "
            "called as task(input_data, config)",
        ),
    ],
)
async def test_a_task_that_does_not_import_is_a_usage_error_before_any_request(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str], spec: str, said: str
) -> None:
    run = await _refused(fake, seeded, evals, "--task", spec)
    assert f"llmobs-async: error: {said}" in run.err
    if spec.startswith("broken"):
        assert "broken.py, line 3)" in run.err  # where in the user's code


async def test_evaluator_errors_name_their_own_option(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    ok = ("--task", "evals:answer", "--evaluator", "evals:exact")
    run = await _refused(fake, seeded, evals, *ok, "--evaluator", "evals:gone")
    assert "--evaluator: module 'evals' has no 'gone'" in run.err
    run = await _refused(fake, seeded, evals, *ok, "--summary-evaluator", "evals:NOT_CALLABLE")
    assert (
        "--summary-evaluator: 'evals:NOT_CALLABLE' is a int, not a function or an object "
        "with an evaluate method"
    ) in run.err
    run = await _refused(fake, seeded, evals, *ok, "--evaluator", "evals:answer")
    assert (
        "--evaluator: 'evals:answer' takes (input_data, config), but is called as "
        "evaluator(input_data, output_data, expected_output)"
    ) in run.err
    run = await _refused(fake, seeded, evals, *ok, "--summary-evaluator", "evals:exact")
    assert "called as summary(inputs, outputs, expected_outputs, evaluators_results)" in run.err
    run = await _refused(fake, seeded, evals, *ok, "--evaluator", "evals:NeedsArgs")
    assert "--evaluator: 'evals:NeedsArgs' is an evaluator class that cannot be made" in run.err
    assert "name an instance of it instead" in run.err


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--runs", "0"), "argument --runs: must be >= 1; got 0"),
        (("--concurrency", "many"), "argument --concurrency: not an integer: 'many'"),
        (("--max-task-retries", "-1"), "argument --max-task-retries: must be >= 0; got -1"),
        (("--task-timeout", "0"), "argument --task-timeout: must be a number of seconds > 0"),
        (("--config", "[1, 2]"), "argument --config: must be a JSON object"),
        (("--config", "{nope"), "argument --config: not valid JSON"),
        (("--config", "@/no/such/config.json"), "argument --config: cannot read"),
        (("--progress", "--quiet"), "not allowed with argument --progress"),
    ],
)
async def test_bad_options_are_refused_before_any_request(
    fake: FakeLLMObsServer,
    seeded: Seeded,
    evals: dict[str, str],
    flags: tuple[str, ...],
    said: str,
) -> None:
    run = await _refused(fake, seeded, evals, "--task", "evals:answer", *flags)
    assert said in run.err


async def test_run_without_a_task_is_a_usage_error(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    run = await _refused(fake, seeded, evals)
    assert "the following arguments are required: --task" in run.err


async def _console_script(cwd: Path, *args: str) -> Run:
    """The installed ``llmobs-async`` script (not ``python -m``), run in ``cwd``."""
    script = Path(sys.executable).parent / "llmobs-async"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    environ.pop("PYTHONPATH", None)
    proc = await asyncio.create_subprocess_exec(
        str(script),
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def test_the_console_script_finds_modules_in_the_current_directory(
    tmp_path: Path, evals: dict[str, str]
) -> None:
    # The script's sys.path starts with its own bin folder, not the current directory:
    # without the fix 'evals' is not found. The keys are checked after the import, so the
    # message about DD_API_KEY shows the module imported.
    args = ("experiments", "run", "--project-id", "p", "--dataset-id", "d", "--name", "n")
    run = await _console_script(tmp_path, *args, "--task", "evals:answer")
    assert run.code == 2, run
    assert "DD_API_KEY: is not set" in run.err
    run = await _console_script(tmp_path, *args, "--task", "evals:gone")
    assert "--task: module 'evals' has no 'gone'" in run.err


async def test_a_task_in_a_file_path_imports_with_its_sibling_modules(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helpers.py").write_text("PREFIX = 'out-'\n")
    (folder / "tasks.py").write_text(
        "from helpers import PREFIX\n\ndef answer(input_data, config):\n"
        "    return PREFIX + str(input_data)\n"
    )
    args = ("experiments", "run", "--project-id", "p", "--dataset-id", "d", "--name", "n")
    run = await _console_script(tmp_path, *args, "--task", "project/tasks.py:answer")
    assert "DD_API_KEY: is not set" in run.err, run  # imported: on to the keys
    run = await _console_script(tmp_path, *args, "--task", "project/tasks.py:nope")
    assert "--task: file 'project/tasks.py' has no 'nope'" in run.err


# --- end to end against the fake ---------------------------------------------------------------

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
    assert "exact     boolean      true 100.0% n=20" in run.out
    assert "length    score        mean 5 n=20" in run.out  # out-0 .. out-9: 5 characters
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
    run = await _refused(
        fake,
        seeded,
        evals,
        "--task",
        "evals:answer",
        "--evaluator",
        "evals:exact",
        "--evaluator",
        "evals:exact",
    )
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
    assert "exact     boolean      true 100.0% n=400" in again.out  # the whole experiment
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


async def test_compare_gates_on_a_regressed_label(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    base = await _experiment(fake, seeded, evals, {"wrong": [1]})
    cand = await _experiment(fake, seeded, evals, {"wrong": [2, 3]})  # 1 improves, 2 and 3 regress
    compare = ("experiments", "compare", base, cand)

    run = await _cli(fake, *compare)
    assert run.code == 0, run  # no gate: a report
    table = run.out.splitlines()
    assert table[:2] == [f"baseline  {base}", f"candidate {cand}"]
    assert table[2].split() == [
        "metric", "type", "baseline", "candidate", "improved", "regressed", "unchanged",
        "changed", "missing",
    ]  # fmt: skip
    assert table[3].split() == [
        "exact", "boolean", "true", "90.0%", "n=10", "true", "80.0%", "n=10", "1", "2", "7",
        "0", "0",
    ]  # fmt: skip
    assert table[5].split()[:2] == ["polite", "boolean"]
    assert "exact regressed on: rec-2 (run 1), rec-3 (run 1)" in run.out

    run = await _cli(fake, *compare, "--fail-on-regression", "polite")
    assert run.code == 0, run
    run = await _cli(
        fake, *compare, "--fail-on-regression", "polite", "--fail-on-regression", "exact"
    )
    assert run.code == 1, run
    assert "llmobs-async: exact: 2 rows regressed (gated by --fail-on-regression)" in run.err

    run = await _cli(fake, *compare, "--fail-on-regression", "exact", "--json")
    assert run.code == 1, run
    doc = json.loads(run.out)
    assert doc["failed"] == ["exact"]
    assert doc["metrics"]["exact"]["regressed_rows"] == [["rec-2", 1], ["rec-3", 1]]
    assert doc["metrics"]["exact"]["candidate"] == {
        "count": 10,
        "errors": 0,
        "true_rate": 0.8,
    }
    assert (doc["metrics"]["polite"]["unchanged"], doc["metrics"]["polite"]["regressed"]) == (10, 0)

    run = await _cli(fake, *compare, "--fail-on-regression", "exakt")
    assert run.code == 2, run  # a typo in a CI gate must not pass
    assert (
        "--fail-on-regression: no metric 'exakt' in either experiment "
        "(labels: exact, length, polite)"
    ) in run.err


async def test_compare_gate_fails_when_the_candidate_lacks_the_metric(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    base = await _experiment(fake, seeded, evals, {})
    run = await _cli(
        fake,
        *_run_args(seeded, "--task", "evals:answer", "--evaluator", "evals:exact", "--json"),
        env=evals,
    )
    cand = json.loads(run.out)["experiment_id"]
    run = await _cli(fake, "experiments", "compare", base, cand, "--fail-on-regression", "polite")
    assert run.code == 1, run  # dropping an evaluator does not get past its gate
    assert "polite: the candidate has no 'polite' metric" in run.err
    run = await _cli(fake, "experiments", "compare", base, cand, "--fail-on-regression", "exact")
    assert run.code == 0, run


async def test_compare_of_an_unknown_experiment_exits_1(fake: FakeLLMObsServer) -> None:
    run = await _cli(fake, "experiments", "compare", "nope-1", "nope-2")
    assert run.code == 1, run
    assert "404" in run.err


def _progress(done: int, total: int | None) -> RunProgress:
    return RunProgress(
        experiment_id="e-1", done=done, total=total, task_errors=1, pushed=7, push_failed=0,
        retries=2,
    )  # fmt: skip


def test_the_run_bar_redraws_one_line_on_a_terminal() -> None:
    stream = io.StringIO()
    bar = RunBar(stream, enabled=True, terminal=True)
    bar(_progress(3, 12))
    bar(_progress(4, 12))
    bar.close()
    drawn = stream.getvalue()
    assert drawn.startswith("\r") and drawn.index("\n") == len(drawn) - 1  # one line, redrawn
    assert "[######..................] 3/12 rows" in drawn
    assert "4/12 rows" in drawn.split("\r")[-1]  # close draws the last state
    assert "task errors 1  pushed 7  push failed 0  retries 2" in drawn
    assert bar.experiment_id == "e-1"


def test_the_run_bar_writes_whole_lines_elsewhere_and_nothing_when_disabled() -> None:
    stream = io.StringIO()
    bar = RunBar(stream, enabled=True, terminal=False)
    bar(_progress(5, None))
    bar.close()
    bar.close()  # once only
    lines = stream.getvalue().splitlines(keepends=True)
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[0].startswith("llmobs-async: 5 rows  ")
    quiet = io.StringIO()
    off = RunBar(quiet, enabled=False, terminal=True)
    off(_progress(5, 10))
    off.close()
    assert quiet.getvalue() == ""


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
