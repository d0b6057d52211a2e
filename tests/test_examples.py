"""Every program in examples/ runs, against the fake, and says what it did: docs cannot rot.

Each runs in a fresh interpreter, as a user would start it, with the Datadog
variables removed from its environment so it starts its own fake API.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmobs_async.testing import FakeLLMObsServer

from .conftest import client_for
from .redisserver import RedisServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Generous: the box is shared; a healthy run takes a few seconds.
TIMEOUT = 180


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DD_", "TENANT_")) and k != "LLMOBS_RATE_LIMIT_STORE"
    }
    return {**env, **extra}


def _run(*args: str, code: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_example_is_run_here() -> None:
    run_here = {"bulk_job.py", "eval_pipeline.py", "multi_tenant.py", "web_app.py"}
    run_here |= {"ci_gate.py", "test_with_fake.py", "sharded_run.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == run_here


def test_bulk_job_accounts_for_every_record() -> None:
    out = _run("examples/bulk_job.py", "--records", "10000")
    assert "create_many: submitted 10,000, applied 9,999, failed 1," in out
    assert "update_many: submitted 10,000, applied 9,999, failed 1," in out
    assert "1 failed (row-13): BadRequestError" in out
    assert out.rstrip().endswith("every record accounted for")


def test_eval_pipeline_runs_scores_and_completes_the_experiment() -> None:
    out = _run("examples/eval_pipeline.py", "--records", "400")
    assert "rows: 400 run, 0 task errors" in out
    assert "summary: accuracy 85.5%" in out
    # 400 spans, 2 metrics each, 1 summary metric: every one acknowledged through the faults
    assert "pushed: 1,201 spans and metrics submitted, 1,201 acknowledged, 0 failed" in out
    assert "read back 400 rows; 58 wrong, for example:" in out
    assert "closeness 0.50 (off by 1)" in out  # EvaluatorResult's reasoning, read back
    assert out.rstrip().endswith("ended completed")


def test_ci_gate_passes_a_candidate_that_only_improves() -> None:
    out = _run("examples/ci_gate.py", "--records", "200")
    assert "baseline  true rate 85.5% (200 scored, 0 errors)" in out
    assert "candidate true rate 100.0% (200 scored, 0 errors)" in out
    assert "rows: 29 improved, 0 regressed, 171 unchanged, 0 changed, 0 missing" in out
    assert "baseline  one too many 29, right 171" in out  # a categorical's counts
    assert "rows: 0 improved, 0 regressed, 171 unchanged, 29 changed, 0 missing" in out
    assert out.rstrip().endswith("gate: exact_match did not regress")


def test_ci_gate_fails_on_a_regressed_label_even_when_its_mean_rose() -> None:
    out = _run("examples/ci_gate.py", "--candidate-model", "adder-v3", code=1)
    assert "candidate true rate 90.5% (200 scored, 0 errors)" in out
    assert "rows: 26 improved, 16 regressed, 158 unchanged, 0 changed, 0 missing" in out
    assert "gate: exact_match regressed on 16 rows, e.g. " in out


async def _gate(fake: FakeLLMObsServer, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "examples/ci_gate.py",
        *args,
        "--base-url",
        fake.base_url,
        cwd=ROOT,
        env=_env(DD_API_KEY=fake.api_key, DD_APP_KEY=fake.app_key),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_ci_gate_compares_two_experiments_given_by_id(fake: FakeLLMObsServer) -> None:
    project_id = fake.add_project(name="gate")
    records = [{"input": {"n": n}, "expected_output": n} for n in range(30)]
    dataset_id = fake.add_dataset(project_id=project_id, records=records)

    def task(input_data: Any, config: Any) -> int:
        n: int = input_data["n"]
        return n + 1 if config["broken"] and n % 10 == 0 else n

    def exact_match(input_data: Any, output_data: Any, expected_output: Any) -> bool:
        return bool(output_data == expected_output)

    ids = []
    async with client_for(fake) as client:
        for broken in (False, True):
            run = await client.experiments.run(
                project_id,
                dataset_id,
                f"broken={broken}",
                task=task,
                evaluators=[exact_match],
                config={"broken": broken},
            )
            assert run.ok
            ids.append(run.experiment.id)
    code, out = await _gate(fake, *ids, "--fail-on-regression", "exact_match")
    assert code == 1, out
    assert f"compare {ids[0]} -> {ids[1]}" in out
    assert "rows: 0 improved, 3 regressed, 27 unchanged, 0 changed, 0 missing" in out
    assert "gate: exact_match regressed on 3 rows" in out
    assert "baseline (" not in out  # nothing was run: the two experiments were compared
    # A label neither has is not a pass: a typo in a CI gate must fail the build.
    code, out = await _gate(fake, *ids, "--fail-on-regression", "exact-match")
    assert code == 2, out
    assert "gate: no metric 'exact-match' in either experiment (they have: exact_match)" in out
    # The same experiments the other way round: improvements only, the gate passes.
    code, out = await _gate(fake, ids[1], ids[0])
    assert code == 0, out
    assert "rows: 3 improved, 0 regressed, 27 unchanged" in out


def test_multi_tenant_agents_share_one_pool() -> None:
    out = _run("examples/multi_tenant.py", "--agents", "3", "--turns", "4")
    for tenant in ("acme", "globex", "initech"):
        assert f"tenant {tenant}: 3 agents saved 12 records" in out
    assert out.rstrip().endswith("every tenant has all its records")


def test_web_app_handlers_answer_through_faults() -> None:
    out = _run("examples/web_app.py", "--smoke")
    assert "the fake answered 1 x 503, dropped 1: retried" in out
    assert "/complete -> 200 {'id':" in out
    assert "'status': 'completed'}" in out
    assert "GET /experiments/no-such-id -> 404" in out
    assert out.rstrip().endswith("smoke test passed")


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_pytest_example_passes(mode: str) -> None:
    out = _run(
        "-m",
        "pytest",
        "examples/test_with_fake.py",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        f"asyncio_mode={mode}",
    )
    assert "6 passed" in out


def test_sharded_run_8_workers_one_experiment_one_provider_budget(
    redis_server: RedisServer,
) -> None:
    """Issue 17's worked example: 8 CLI processes ``--shard i/8`` over 2,000 records.

    A real redis-server carries the task's limiter; the fake provider answers 429 beyond
    400 calls a second. Every record's row is stored once, the summary completes the
    experiment, and the provider saw its limit kept.
    """
    out = _run(
        "examples/sharded_run.py", "--workers", "8", "--records", "2000", "--limit", "400/1",
        "--service-time", "0.01", "--redis", redis_server.url, "--json",
    )  # fmt: skip
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["rows"] == 2000 and figures["rows_ok"] == 2000, figures
    assert figures["records_missing"] == 0 and figures["rows_twice"] == 0, figures
    assert figures["shards_exit"] == [0] * 8 and figures["summarize_exit"] == 0, figures
    assert figures["status"] == "completed", figures
    assert figures["provider_429"] <= 20, figures  # under 1%: the windows' edges, not a storm
    assert "verdict: OK" in out
    assert "$ llmobs-async experiments run" in out and "--shard 7/8" in out
