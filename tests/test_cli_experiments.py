"""``llmobs-async experiments run/resume/compare``: the runner from the shell, against the fake.

The tasks and evaluators live in a small module written to ``tmp_path`` and
found through PYTHONPATH, as a user's own module would be.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest

from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded
from .test_cli import Run, _cli

EVALS = textwrap.dedent(
    """
    import asyncio

    async def answer(input_data, config):
        await asyncio.sleep(float(config.get("sleep", 0)) if config else 0)
        return f"out-{input_data}"

    def exact(input_data, output_data, expected_output):
        return output_data == f"out-{input_data}"

    def length(input_data, output_data, expected_output):
        return len(output_data)

    def accuracy(inputs, outputs, expected_outputs, evaluators_results):
        return sum(evaluators_results["exact"]) / len(inputs)

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
