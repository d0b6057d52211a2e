"""CSV import speed: a generated CSV through create_from_csv (batches) and upload_csv.

    python benchmarks/csv_import.py [--rows 100000] [--service-time 0.05] [--runs 1]

Against the fake server on loopback (in its own process), every request
answered after ``--service-time`` seconds (its ``latency``). Rows: ``id``, a question,
an answer and a note (~90 bytes a row). Also times reading the file alone
(``CsvSource``, no requests) and ``create_many`` over the same records already
in memory, and the CSV read with a plain ``for`` on the event loop instead of
in chunks in a thread, to show what reading the CSV costs. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llmobs_async import CsvSource, LLMObsClient
from llmobs_async.testing import FakeLLMObsServer

COLUMNS: dict[str, Any] = {
    "input_columns": ["question"],
    "expected_output_columns": ["answer"],
    "metadata_columns": ["notes"],
    "id_column": "id",
}


def _write(path: Path, rows: int) -> None:
    with open(path, "w", newline="") as f:
        f.write("id,question,answer,notes\n")
        for i in range(rows):
            f.write(f'r{i},"What is {i} times {i}, exactly?",{i * i},"row {i} of the file"\n')


async def _read_only(path: Path) -> int:
    return sum([1 async for _ in CsvSource(path, **COLUMNS)])


def _serve(conn: Connection, service: float) -> None:
    """The fake in its own process (its CPU is not the client's), until told to stop."""

    async def serve() -> None:
        async with FakeLLMObsServer(latency=service) as fake:
            pid = fake.add_project()
            did = fake.add_dataset(project_id=pid)
            conn.send((fake.base_url, fake.api_key, fake.app_key, pid, did))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            conn.send((len(fake.records(did)), len(fake.requests)))

    asyncio.run(serve())


async def _run(path: Path, how: str, service: float) -> tuple[int, float, int]:
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(theirs, service))
    server.start()
    base_url, api_key, app_key, pid, did = ours.recv()
    try:
        async with LLMObsClient(
            base_url=base_url, api_key=api_key, app_key=app_key, timeout=600
        ) as client:
            records = list(CsvSource(path, **COLUMNS)) if how == "create_many" else None
            started = time.perf_counter()
            if how == "create_from_csv":
                result = await client.records.create_from_csv(pid, did, path, **COLUMNS)
                done = result.applied
            elif how == "create_many, plain for":
                source = iter(CsvSource(path, **COLUMNS))  # read on the loop, not in a thread
                done = (await client.records.create_many(pid, did, source)).applied
            elif how == "create_many":
                assert records is not None
                result = await client.records.create_many(pid, did, records)
                done = result.applied
            else:
                upload = await client.records.upload_csv(pid, did, path, **COLUMNS)
                done = upload.records_created or 0
            elapsed = time.perf_counter() - started
        ours.send("stop")
        stored, requests = ours.recv()
    finally:
        server.join(10)
    assert stored == done, (stored, done)
    return done, elapsed, requests


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--service-time", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        _write(path, args.rows)
        size, service = path.stat().st_size / 1e6, args.service_time * 1000
        print(f"{args.rows:,} rows, {size:.1f} MB, service time {service:g} ms")
        print("| path | records | requests | seconds | records/s |")
        print("|---|---:|---:|---:|---:|")
        for _ in range(args.runs):
            started = time.perf_counter()
            count = await _read_only(path)
            elapsed = time.perf_counter() - started
            rate = count / elapsed
            print(f"| CsvSource, read only | {count:,} | 0 | {elapsed:.2f} | {rate:,.0f} |")
            for how in ("create_from_csv", "create_many, plain for", "create_many", "upload_csv"):
                done, elapsed, requests = await _run(path, how, args.service_time)
                print(f"| {how} | {done:,} | {requests} | {elapsed:.2f} | {done / elapsed:,.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
