"""The README and the docs pages stay short, linked, and in step with the API.

`make test` also builds the site with ``mkdocs build --strict`` (broken API
references, links and anchors inside docs/ fail there); these tests cover
what that build does not see: the README (GitHub renders it, mkdocs does not),
the code in the pages, and that the reference covers the public surface.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

import llmobs_async
from llmobs_async import LLMObsClient
from llmobs_async.testing import FakeLLMObsServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
CODE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's and Python-Markdown's anchor for a heading (they agree on these)."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = unicodedata.normalize("NFKD", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = CODE.sub("", path.read_text())
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def test_readme_is_short_and_opens_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 300
    first_block = CODE.search(README.read_text())
    assert first_block is not None
    commands = first_block.group(2).splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
    assert all("installs" in c for c in commands)
    assert "redis-server" in commands[1]
    assert "sudo" in commands[1]
    before = README.read_text()[: first_block.start()]
    assert before.strip() == "# llmobs_async"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = CODE.sub("", page.read_text())
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: {target} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: no heading for {target}"


def _python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in [README, *PAGES]:
        for lang, code in CODE.findall(page.read_text()):
            if lang == "python" and not code.startswith("--8<--"):
                blocks.append((str(page.relative_to(ROOT)), code))
    return blocks


BLOCKS = _python_blocks()


@pytest.mark.parametrize(
    ("page", "code"), BLOCKS, ids=[f"{p}:{i}" for i, (p, _) in enumerate(BLOCKS)]
)
def test_python_blocks_compile(page: str, code: str) -> None:
    compile(code, page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_the_kubernetes_jobs_are_indexed_jobs_running_one_shard_per_pod() -> None:
    """Each Job manifest is indexed, and each pod runs shard JOB_COMPLETION_INDEX of them.

    Read as text (the oldest-dependencies venv has no YAML parser); the manifests were
    checked with ``yaml.safe_load`` when written.
    """
    jobs = [
        code
        for page in [README, *PAGES]
        for lang, code in CODE.findall(page.read_text())
        if lang == "yaml" and "kind: Job" in code
    ]
    assert len(jobs) >= 2  # the README's and docs/scaling.md's
    for job in jobs:
        assert re.search(r"^  completionMode: Indexed\b", job, re.M), job
        completions = re.search(r"^  completions: (\d+)$", job, re.M)
        assert completions, job
        command = " ".join(job.split())
        assert f"--shard $JOB_COMPLETION_INDEX/{completions.group(1)} " in command, job
        assert "--experiment-id $" in command and "LLMOBS_RATE_LIMIT_STORE" in command, job


async def test_client_calls_in_the_pages_exist() -> None:
    client = LLMObsClient(api_key="k", app_key="a", base_url="http://127.0.0.1:1")
    calls = re.compile(r"client\.(\w+)\.(\w+)(?:\.(\w+))?\(")
    seen = 0
    for page in [README, *PAGES]:
        for names in calls.findall(page.read_text()):
            target: object = client
            for name in filter(None, names):
                assert hasattr(target, name), f"{page.name}: client.{'.'.join(names)}"
                target = getattr(target, name)
            seen += 1
    assert seen > 20
    await client.close()


def test_the_reference_covers_the_public_surface() -> None:
    directives = set()
    for page in (ROOT / "docs" / "reference").glob("*.md"):
        directives.update(re.findall(r"^::: ([\w.]+)$", page.read_text(), re.M))
    for module in ("errors", "models", "pagination", "testing", "testing.pytest_plugin"):
        assert f"llmobs_async.{module}" in directives
    covered_by_module = {"errors", "experiments", "models", "pagination", "UNSET", "__version__"}
    covered_by_module |= {"AsyncPaginator", "Page", "EventsPage"}  # pagination's page
    for name in set(llmobs_async.__all__) - covered_by_module:
        assert f"llmobs_async.{name}" in directives, name


def test_fake_calls_in_the_pages_exist() -> None:
    fake = FakeLLMObsServer()
    uses = re.compile(r"\b(?:llmobs_fake|fake)\.(\w+)")
    seen = 0
    for page in [README, *PAGES]:
        for name in uses.findall(page.read_text()):
            assert hasattr(fake, name), f"{page.name}: fake.{name}"
            seen += 1
    assert seen > 20
