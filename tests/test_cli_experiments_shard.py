"""A sharded run from the shell: ``experiments create``, ``run --shard``, ``summarize``.

Real processes: three ``--shard i/3`` workers at once against the fake, then
``summarize``; a real SIGINT in a shard, and the line it prints run again.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
from pathlib import Path

import pytest

from llmobs_async.experiments import shard_of
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded
from .redisserver import free_port
from .test_cli import Run, _cli
from .test_cli_experiments import refused, write_evals
from .test_cli_experiments_run import _rows_in_fake, _start, _until

CODE = ("--task", "evals:answer", "--evaluator", "evals:exact")


@pytest.fixture
def evals(tmp_path: Path) -> dict[str, str]:
    """The environment that makes the module ``evals`` importable by the subprocess."""
    return write_evals(tmp_path)


def _create_args(project_id: str, dataset_id: str, *rest: str) -> tuple[str, ...]:
    return ("experiments", "create", "--project-id", project_id, "--dataset-id", dataset_id,
            "--name", "sharded", *rest)  # fmt: skip


async def _create(fake: FakeLLMObsServer, project_id: str, dataset_id: str, *rest: str) -> str:
    made = await _cli(fake, *_create_args(project_id, dataset_id, *rest))
    assert made.code == 0, made
    (experiment_id,) = made.out.splitlines()  # one line: EXP=$(llmobs-async experiments create)
    return experiment_id


def _shard(experiment_id: str, shard: str, *rest: str) -> tuple[str, ...]:
    return ("experiments", "run", "--experiment-id", experiment_id, "--shard", shard, *rest)


async def test_create_then_three_shard_processes_then_summarize(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    version = fake.datasets[seeded.dataset_id].version
    eid = await _create(
        fake, seeded.project_id, seeded.dataset_id, "--runs", "2", "--tag", "team:evals",
        "--config", json.dumps({"wrong": [4]}),
    )  # fmt: skip
    stored = fake.experiments[eid]
    assert (stored["dataset_version"], stored["run_count"]) == (version, 2)  # pinned
    assert stored["config"] == {"wrong": [4]} and stored["metadata"] == {"tags": ["team:evals"]}

    shards = await asyncio.gather(
        *(_cli(fake, *_shard(eid, f"{i}/3", *CODE), env=evals) for i in range(3))
    )
    for i, shard in enumerate(shards):
        assert shard.code == 0, shard
        mine = sum(1 for n in range(10) if shard_of(f"rec-{n}", 3) == i)
        assert shard.out.splitlines()[0].endswith("running")
        assert f"rows        {2 * mine} run in" in shard.out
        assert f"shard       {i}/3 done; once every shard is done" in shard.out
        assert f"llmobs-async experiments summarize {eid} --base-url" in shard.out
    assert fake.experiments[eid]["status"] == "running"
    assert fake.events(eid).duplicate_rows() == {}
    assert set(_rows_in_fake(fake, eid)) == {(f"rec-{n}", r) for n in range(10) for r in (1, 2)}
    assert all("team:evals" in s["tags"] for s in fake.events(eid).spans.values())

    done = await _cli(
        fake, "experiments", "summarize", eid, "--summary-evaluator", "evals:accuracy", env=evals
    )
    assert done.code == 0, done
    assert done.out.splitlines()[0].endswith("completed")
    assert "rows        every row recorded; 0 task errors" in done.out
    assert "exact     boolean      true 90.0% (n=20)" in done.out
    assert "summary     accuracy  0.9" in done.out
    assert fake.experiments[eid]["status"] == "completed"


async def test_summarize_while_a_shard_is_missing_exits_1_and_names_rows(
    fake: FakeLLMObsServer, seeded: Seeded, evals: dict[str, str]
) -> None:
    eid = await _create(fake, seeded.project_id, seeded.dataset_id, "--sample-size", "6")
    shard = await _cli(fake, *_shard(eid, "0/2", *CODE, "--json"), env=evals)
    assert shard.code == 0, shard
    doc = json.loads(shard.out)
    assert (doc["status"], doc["shard"]) == ("running", "0/2")
    assert doc["summarize"].startswith(f"llmobs-async experiments summarize {eid}")
    assert "resume" not in doc
    missing = sum(1 for n in range(4, 10) if shard_of(f"rec-{n}", 2) == 1)  # newest 6 first

    early = await _cli(fake, "experiments", "summarize", eid, "--json", "--wait", "0")
    assert early.code == 1, early
    said = json.loads(early.out)
    assert (said["status"], said["missing"], said["expected"]) == ("incomplete", missing, 6)
    assert f"{missing} of 6 rows are missing: rec-" in early.err
    assert fake.experiments[eid]["status"] == "running"

    other = await _cli(fake, *_shard(eid, "1/2", *CODE), env=evals)
    assert other.code == 0, other
    done = await _cli(fake, "experiments", "summarize", eid, "--json", "--wait", "5")
    assert done.code == 0, done
    assert json.loads(done.out)["status"] == "completed"


async def test_ctrl_c_in_a_shard_prints_its_own_line_which_skips_the_rows_done(
    fake: FakeLLMObsServer, evals: dict[str, str]
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=200)
    eid = await _create(fake, project_id, dataset_id, "--config", json.dumps({"sleep": 0.02}))
    fake.latency = 0.02  # a service time: the shard is still going when Ctrl-C comes
    proc = await _start(fake, evals, *_shard(eid, "1/2", *CODE, "--concurrency", "4"), "--progress")
    await _until(proc, b" rows/s ")
    proc.send_signal(signal.SIGINT)
    _, err_b = await asyncio.wait_for(proc.communicate(), 60)
    err = err_b.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert fake.experiments[eid]["status"] == "interrupted"
    assert fake.experiments[eid]["error"] == "shard 1/2: interrupted"
    assert "run shard 1/2 again (it skips the rows done) with:" in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("  llmobs-async experiments run")]
    words = shlex.split(line)
    assert words[3:7] == ["--experiment-id", eid, "--shard", "1/2"]
    before = len(_rows_in_fake(fake, eid))

    fake.latency = 0.0
    again = await _cli(fake, *words[1:], env=evals)
    assert again.code == 0, again
    mine = {f"rec-{n}" for n in range(200) if shard_of(f"rec-{n}", 2) == 1}
    assert {rid for rid, _ in _rows_in_fake(fake, eid)} == mine
    assert f"rows        {len(mine) - before} run in" in again.out  # only those not done
    assert fake.events(eid).duplicate_rows() == {}
    assert fake.experiments[eid]["status"] == "running"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--experiment-id", "e", "--project-id", "p"), "--project-id: not with --experiment-id"),
        (("--project-id", "p", "--dataset-id", "d"), "--name: is required (or --experiment-id"),
        (("--project-id", "p", "--dataset-id", "d", "--name", "n", "--shard", "0/2"),
         "--shard: a sharded run joins an experiment made beforehand"),
        (("--experiment-id", "e", "--config", "{}"), "--config: not with --experiment-id"),
        (("--experiment-id", "e", "--runs", "2"), "--runs: not with --experiment-id"),
        (("--experiment-id", "e", "--tag", "a:b"), "--tag: not with --experiment-id"),
        (("--experiment-id", "e", "--shard", "2/2"), "--shard: must be I/N with 0 <= I < N"),
        (("--experiment-id", "e", "--shard", "1"), "--shard: must be I/N"),
        (("--experiment-id", "e", "--shard", "a/b"), "--shard: must be I/N"),
        (("--experiment-id", "e", "--shard", "0/2", "--summary-evaluator", "evals:accuracy"),
         "--summary-evaluator: not with --shard"),
    ],
)  # fmt: skip
async def test_bad_joins_are_usage_errors_before_any_request(
    fake: FakeLLMObsServer, evals: dict[str, str], args: tuple[str, ...], said: str
) -> None:
    run = await refused(fake, evals, "experiments", "run", *args, *CODE)
    assert said in run.err, run
    assert fake.experiments == {}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--wait", "-1"), "--wait: must be a number of seconds >= 0"),
        (("--wait", "inf"), "--wait: must be a number of seconds >= 0"),
        (("--summary-evaluator", "evals:nope"), "--summary-evaluator: module 'evals' has no"),
    ],
)
async def test_bad_summarize_options_are_usage_errors(
    fake: FakeLLMObsServer, evals: dict[str, str], args: tuple[str, ...], said: str
) -> None:
    run: Run = await refused(fake, evals, "experiments", "summarize", "e", *args)
    assert said in run.err, run


async def test_create_json_prints_the_experiment_with_its_sample_and_version(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    args = _create_args(seeded.project_id, seeded.dataset_id, "--sample-size", "3", "--json")
    made = await _cli(fake, *args, "--dataset-version", "1", "--description", "nightly CI")
    assert made.code == 0, made
    doc = json.loads(made.out)
    assert doc["id"] in fake.experiments and doc["description"] == "nightly CI"
    assert (doc["dataset_version"], doc["metadata"]) == (1, {"sample_size": 3})


LIMITED = """
from llmobs_async import RateLimiter

limiter = RateLimiter("provider", requests=1000, per=1)


async def answer(input_data, config):
    async with limiter.acquire():
        return "ok"
"""


async def test_a_shard_whose_store_is_down_warns_once_and_finishes(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path
) -> None:
    """One warning when the store is down, however many parts of the process use it.

    ``LLMOBS_RATE_LIMIT_STORE`` names a Redis that is not there: the client's gate and the
    task module's own limiter both pace alone; one warning (no password), exit 0.
    """
    (tmp_path / "limited.py").write_text(LIMITED)
    env = {
        "PYTHONPATH": str(tmp_path),
        "LLMOBS_RATE_LIMIT_STORE": f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0",
    }
    eid = await _create(fake, seeded.project_id, seeded.dataset_id)
    run = await _cli(fake, *_shard(eid, "0/1", "--task", "limited:answer", "-q"), env=env)
    assert run.code == 0, run
    warnings = [line for line in run.err.splitlines() if "is unavailable" in line]
    assert len(warnings) == 1, run.err
    assert "rate-limit store redis://127.0.0.1:" in warnings[0]
    assert "hunter2" not in run.out + run.err
    assert len(_rows_in_fake(fake, eid)) == 10
