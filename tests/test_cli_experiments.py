"""``llmobs-async experiments run/resume``: options, imports and usage errors; the run bar.

The tasks and evaluators live in a small module written to ``tmp_path`` and
found through PYTHONPATH, as a user's own module would be (``write_evals``;
the end-to-end runs are in ``test_cli_experiments_run.py``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import pytest

from llmobs_async._cli import main
from llmobs_async._cli.output import RunBar
from llmobs_async.experiments import RunProgress
from llmobs_async.testing import FakeLLMObsServer

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


def write_evals(folder: Path) -> dict[str, str]:
    """Write the test modules to ``folder``; the environment that makes them importable."""
    (folder / "evals.py").write_text(EVALS)
    (folder / "broken.py").write_text("x = 1\n\nraise RuntimeError('no model key')\n")
    (folder / "badsyntax.py").write_text("def f(:\n    pass\n")
    (folder / "importsmissing.py").write_text("import no_such_dependency_xyz\n")
    return {"PYTHONPATH": str(folder)}


@pytest.fixture
def evals(tmp_path: Path) -> dict[str, str]:
    """The environment that makes the module ``evals`` importable by the subprocess."""
    return write_evals(tmp_path)


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


_TEST_MODULES = ("evals", "broken", "badsyntax", "importsmissing")


async def _refused(fake: FakeLLMObsServer, seeded: Seeded, env: dict[str, str], *rest: str) -> Run:
    """Run ``experiments run`` with ``rest``; it must be a usage error that sent nothing."""
    run = await refused(fake, env, *_run_args(seeded, *rest))
    assert fake.experiments.keys() == {seeded.experiment_id}  # none created
    return run


async def refused(fake: FakeLLMObsServer, env: dict[str, str], *args: str) -> Run:
    """Run ``llmobs-async *args``; it must be a usage error (exit 2) that sent nothing.

    Run in this process (in a thread, the fake answering on this loop): a usage
    error never gets as far as Ctrl-C handling, and an interpreter started for
    each of these cases would cost the suite seconds.
    """
    argv = [*args, "--base-url", fake.base_url]
    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        try:
            return main(argv)
        except SystemExit as exc:  # argparse's refusals
            return int(exc.code or 0)

    saved = list(sys.path)
    sys.path.insert(0, env["PYTHONPATH"])
    keys = {"DD_API_KEY": fake.api_key, "DD_APP_KEY": fake.app_key}
    library = logging.getLogger("llmobs_async")  # main() sets it up for the command line
    logger_state = (list(library.handlers), library.propagate, library.level)
    try:
        with mock.patch.dict(os.environ, keys), redirect_stdout(out), redirect_stderr(err):
            code = await asyncio.to_thread(call)
    finally:
        sys.path[:] = saved
        for name in _TEST_MODULES:
            sys.modules.pop(name, None)
        library.handlers[:], library.propagate, library.level = logger_state
    run = Run(code, out.getvalue(), err.getvalue())
    assert run.code == 2, run
    assert "Traceback" not in run.err
    assert fake.requests == []
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
