"""One experiment split over many worker processes, with one budget for the task's LLM calls.

    python examples/sharded_run.py                      # 8 workers, 2,000 records, 500 calls/5 s
    python examples/sharded_run.py --workers 4 --limit 120/10   # the benchmark's provider
    python examples/sharded_run.py --no-share           # the control: each worker alone

What a Kubernetes Indexed Job or a Slurm array does, on one machine: it starts a fake
LLM Observability API with a 2,000-record dataset, a fake LLM provider that answers 429
beyond its own limit (``--limit calls/seconds``, each call taking ``--service-time``),
and a ``redis-server`` (or uses ``--redis URL``). Then it runs the three commands a
cluster would:

1. ``llmobs-async experiments create`` once: the experiment every worker joins;
2. ``llmobs-async experiments run --experiment-id ID --shard I/N`` in N processes at
   once, each running the records whose id hashes to its shard; the task
   (``examples/sharded/task.py``) calls the provider through a ``RateLimiter`` that
   shares its window through ``LLMOBS_RATE_LIMIT_STORE``;
3. ``llmobs-async experiments summarize ID`` once they are done: the summary over
   every row, and the experiment ``completed``.

It prints each command, then what the fake stored and what the provider saw, and
exits 1 unless every record has exactly one row and the experiment is completed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from llmobs_async.testing import FakeLLMObsServer, FakeProvider

HERE = Path(__file__).resolve().parent
TASK = HERE / "sharded" / "task.py"
MODULE = os.path.relpath(TASK)
"""The task module as a user types it, from where they are."""


def limit(text: str) -> tuple[int, float]:
    """``calls/seconds``, e.g. ``120/10``."""
    calls, _, seconds = text.partition("/")
    try:
        return int(calls), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not CALLS/SECONDS: {text!r}") from None


@asynccontextmanager
async def redis_server(url: str | None) -> AsyncIterator[str]:
    """``url``, or a ``redis-server`` started here on a free loopback port."""
    if url:
        yield url
        return
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        server = await asyncio.create_subprocess_exec(
            executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir, "--loglevel", "warning",
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    if time.monotonic() > deadline or server.returncode is not None:
                        raise SystemExit("redis-server did not start") from None
                    await asyncio.sleep(0.05)
                else:
                    writer.close()
                    break
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            await server.wait()


async def cli(env: dict[str, str], *args: str, show: bool = True) -> tuple[int, str]:
    """Run ``llmobs-async ARGS`` in a fresh process, as a cluster would; its exit and stdout."""
    if show:
        print("$ llmobs-async " + " ".join(args), flush=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmobs_async", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode:
        sys.stderr.write(err.decode())
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """The three steps, and the figures of the run."""
    records = [
        {"id": f"rec-{i:05d}", "input": {"question": f"question {i}"}, "expected_output": "ok"}
        for i in range(args.records)
    ]
    async with (
        FakeLLMObsServer() as fake,
        FakeProvider(limit=args.limit, service_time=args.service_time) as provider,
        redis_server(None if args.no_share else args.redis) as store,
    ):
        project_id, dataset_id = fake.seed_dataset(records)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        env.update(
            DD_API_KEY=fake.api_key,
            DD_APP_KEY=fake.app_key,
            PROVIDER_URL=provider.url,
            PROVIDER_LIMIT=f"{args.limit[0]}/{args.limit[1]:g}",
        )
        env.pop("LLMOBS_RATE_LIMIT_STORE", None)
        if not args.no_share:
            env["LLMOBS_RATE_LIMIT_STORE"] = store
        api = ("--base-url", fake.base_url)
        code, out = await cli(
            env, "experiments", "create", *api, "--project-id", project_id,
            "--dataset-id", dataset_id, "--name", "sharded-example",
        )  # fmt: skip
        if code:
            raise SystemExit(f"experiments create exited {code}")
        experiment_id = out.strip()
        n = args.workers
        started = time.monotonic()
        shards = await asyncio.gather(
            *(
                cli(env, *shard_args(api, experiment_id, i, n, args), show=i in (0, n - 1))
                for i in range(n)
            )
        )
        makespan = time.monotonic() - started
        if n > 2:
            print(f"  ... and {n - 2} more, {n} in all, at once")
        code, _ = await cli(
            env, "experiments", "summarize", *api, experiment_id,
            "--summary-evaluator", f"{MODULE}:answered_rate",
        )  # fmt: skip
        stored = fake.events(experiment_id)
        spans = list(stored.spans.values())
        ok = sum(1 for span in spans if span["status"] == "ok")
        seen = {_record_of(span) for span in spans}
        calls, per = args.limit
        return {
            "workers": n,
            "shared": not args.no_share,
            "records": args.records,
            "rows": len(spans),
            "rows_ok": ok,
            "records_missing": args.records - len(seen & {r["id"] for r in records}),
            "rows_twice": len(stored.duplicate_rows()),
            "shards_exit": [shard_code for shard_code, _ in shards],
            "summarize_exit": code,
            "status": fake.experiments[experiment_id]["status"],
            "provider_calls": provider.calls,
            "provider_429": provider.rate_limited,
            "max_per_window": provider.max_per_window,
            "makespan_s": round(makespan, 2),
            "allowed_s": math.ceil(args.records / calls) * per,
        }


def shard_args(
    api: tuple[str, ...], experiment_id: str, i: int, n: int, args: argparse.Namespace
) -> list[str]:
    """What worker ``i`` of ``n`` runs: the same command, its own shard."""
    return [
        "experiments", "run", *api, "--experiment-id", experiment_id, "--shard", f"{i}/{n}",
        "--task", f"{MODULE}:task", "--evaluator", f"{MODULE}:answered",
        "--concurrency", str(args.concurrency), "--max-task-retries", "0", "--json", "-q",
    ]  # fmt: skip


def _record_of(span: dict[str, Any]) -> str:
    tags: dict[str, str] = dict(t.split(":", 1) for t in span.get("tags") or () if ":" in t)
    return tags.get("dataset_record_id", "")


def report(result: dict[str, Any]) -> bool:
    """Print the figures; True when every record has exactly one ok row and it completed."""
    good: bool = (
        result["records_missing"] == 0
        and result["rows_twice"] == 0
        and result["rows"] == result["records"]
        and result["status"] == "completed"
    )
    budget = "one shared budget" if result["shared"] else "each alone"
    print(
        f"\n{result['workers']} workers ({budget}): {result['rows']:,} rows for "
        f"{result['records']:,} records "
        f"({result['rows_ok']:,} ok, {result['records_missing']} missing, "
        f"{result['rows_twice']} twice); experiment {result['status']}\n"
        f"provider: {result['provider_calls']:,} calls, {result['provider_429']:,} answered 429, "
        f"at most {result['max_per_window']} in a window\n"
        f"makespan {result['makespan_s']:.1f} s; the provider's limit allows "
        f"{result['allowed_s']:.0f} s at best ({result['makespan_s'] / result['allowed_s']:.2f}x)\n"
        f"verdict: {'OK' if good else 'FAILED'}"
    )
    return good


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--limit", type=limit, default=(500, 5.0), metavar="CALLS/SECONDS")
    parser.add_argument("--service-time", type=float, default=0.05, metavar="SECONDS")
    parser.add_argument("--concurrency", type=int, default=16, help="rows at once per worker")
    parser.add_argument("--redis", metavar="URL", help="a Redis to share through (else started)")
    parser.add_argument("--no-share", action="store_true", help="no store: each worker alone")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    figures = asyncio.run(main(arguments))
    passed = report(figures)
    if arguments.json:
        print(json.dumps(figures))
    sys.exit(0 if passed else 1)
