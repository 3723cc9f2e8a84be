"""What the benchmarks share: the stack on free ports, percentiles, progress, the final JSON line."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client

from devstack.always_open import always_open_config
from devstack.processes import free_port
from devstack.stack import DevStack
from runtime.settings import Settings


@asynccontextmanager
async def local_stack(keep: Path | None = None, *, always_open: bool = False) -> AsyncIterator[DevStack]:
    """The whole engine as `make dev` runs it, on free ports, in a temp folder or `keep` (logs stay).
    `always_open`: reps on duty and send windows open around the clock, as in the e2e tests (a
    figure must not depend on the hour it is taken at)."""
    with tempfile.TemporaryDirectory(prefix="journeys-bench-") as tmp:
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            keep.mkdir(parents=True)
        files: dict[str, Any] = {}
        if always_open:
            roster_file, sequences_dir = always_open_config((keep or Path(tmp)) / "config")
            files = {"roster_file": roster_file, "sequences_dir": sequences_dir}
        settings = Settings(
            data_dir=keep or Path(tmp),
            api_port=free_port(),
            api_key=SecretStr("bench-admin-key"),
            temporal_address=f"127.0.0.1:{free_port()}",
            pg_port=free_port(),
            sandbox_port=free_port(),
            log_level="WARNING",
            **files,
        )
        stack = DevStack(
            settings,
            with_ui=False,
            worker_metrics_port=None,
            durable=os.environ.get("BENCH_DURABLE", "1") == "1",
        )
        progress("starting the stack (Temporal dev server, PostgreSQL, sandbox, worker, API) ...")
        await stack.start()
        try:
            yield stack
        finally:
            await stack.stop()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2) if values else float("nan"),
    }


def histogram(
    values: list[float], *, buckets_ms: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500)
) -> str:
    """A latency distribution as text bars: readable in a terminal and in the docs."""
    counts = [0] * (len(buckets_ms) + 1)
    for value in values:
        ms = value * 1000
        index = next((i for i, edge in enumerate(buckets_ms) if ms <= edge), len(buckets_ms))
        counts[index] += 1
    widest = max(counts) or 1
    lines = []
    for i, count in enumerate(counts):
        label = f"<= {buckets_ms[i]:g} ms" if i < len(buckets_ms) else f" > {buckets_ms[-1]:g} ms"
        lines.append(f"  {label:>12} | {'#' * round(40 * count / widest):<40} {count}")
    return "\n".join(lines)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def final_line(figures: dict[str, Any]) -> None:
    print(json.dumps(figures, sort_keys=True), flush=True)


async def signal_with_start_all(
    client: Client, workflow: str, queue: str, count: int, workflow_id: Callable[[int], str], concurrency: int
) -> list[float]:
    """The bare stack's ingest: `count` signal-with-starts of `workflow` (its input and signal `{"n": n}`),
    `concurrency` in flight. Answers each call's latency in seconds."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(n: int) -> None:
        async with gate:
            started = time.perf_counter()
            await client.start_workflow(
                workflow,
                {"n": n},
                id=workflow_id(n),
                task_queue=queue,
                start_signal="event",
                start_signal_args=[{"n": n, "type": "track"}],
            )
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(n) for n in range(count)))
    return latencies
