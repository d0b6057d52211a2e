"""``--failed-out`` is checked before the job: an unwritable path loses no record."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded
from .test_cli import _cli


@pytest.mark.parametrize("action", ["create", "update"])
async def test_an_unwritable_failed_out_is_refused_before_anything_is_sent(
    fake: FakeLLMObsServer, seeded: Seeded, tmp_path: Path, action: str
) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"id": "rec-1", "input": "x", "expected_output": "y"}\n')
    run = await _cli(
        fake,
        "records",
        action,
        str(lines),
        "--project-id",
        seeded.project_id,
        "--dataset-id",
        seeded.dataset_id,
        "--failed-out",
        str(tmp_path / "no-such-dir" / "failed.jsonl"),
    )
    assert run.code == 2, run.err
    assert "--failed-out" in run.err and "No such file or directory" in run.err
    assert "Traceback" not in run.err
    assert fake.requests == []
