"""Every program in examples/ runs, against the fake, and says what it did: docs cannot rot.

Each runs in a fresh interpreter, as a user would start it, with the Datadog
variables removed from its environment so it starts its own fake API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Generous: the box is shared; a healthy run takes a few seconds.
TIMEOUT = 180


def _run(*args: str) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DD_", "TENANT_")) and k != "LLMOBS_RATE_LIMIT_STORE"
    }
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_example_is_run_here() -> None:
    run_here = {"bulk_job.py", "eval_pipeline.py", "multi_tenant.py", "web_app.py"}
    run_here.add("test_with_fake.py")
    assert {p.name for p in EXAMPLES.glob("*.py")} == run_here


def test_bulk_job_accounts_for_every_record() -> None:
    out = _run("examples/bulk_job.py", "--records", "10000")
    assert "create_many: submitted 10,000, applied 9,999, failed 1," in out
    assert "update_many: submitted 10,000, applied 9,999, failed 1," in out
    assert "1 failed (row-13): BadRequestError" in out
    assert out.rstrip().endswith("every record accounted for")


def test_eval_pipeline_pushes_and_completes_the_experiment() -> None:
    out = _run("examples/eval_pipeline.py", "--records", "400")
    assert "pushed and read back 400 spans; accuracy 85.5%" in out
    assert out.rstrip().endswith("marked completed")


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
