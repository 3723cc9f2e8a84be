"""Steady load for a long time: does memory stay flat and do errors stay at zero?

    .venv/bin/python -m bench.soak [--minutes 30] [--rate 2] [--anon-rate 2]

The mixed workload of `bench.mixed` at a steady rate. Every minute it prints one row: leads sent,
requests refused or still failing after the client's retries, the flows completed in that minute
and their p99, and the RSS of the worker, the API, the router, the sandbox and the Temporal dev
server. At the end: each process's memory growth from the first sampled minutes to the last
(MB per 10 minutes, from a least-squares line over the minutes after warm-up) and the error
trend. The last line is one JSON object. Not part of CI: it takes its minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.common import final_line, local_stack, percentile, progress
from bench.mixed import MIX, rss_mb
from bench.workload import RequestRefused, anonymous_visit, kind_for, new_lead, run_lead, workload_client
from devstack.stack import DevStack
from store.db import create_engine

WARM_UP_MINUTES = 3
ENGINE_PROCESSES = ("worker", "api", "router")


def slope_per_10_min(values: list[float]) -> float:
    """Least-squares slope of one value per minute, scaled to 10 minutes."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    variance = sum((x - mean_x) ** 2 for x in range(n))
    return round(10 * covariance / variance, 2)


def processes(stack: DevStack) -> dict[str, int | None]:
    pids: dict[str, int | None] = {name: child.pid for name, child in stack.children.items()}
    if stack.temporal is not None and stack.temporal.process is not None:
        pids["temporal"] = stack.temporal.process.pid
    return pids


async def soak(stack: DevStack, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    engine = create_engine(stack.database_url, pool_size=2)
    flows_query = text(
        "SELECT extract(epoch FROM done_at - started_at) FROM data_flows "
        "WHERE done_at >= :since AND done_at < :until"
    )
    async with workload_client(stack, "soak", give_up_after=60) as (_api, sender):
        errors: list[str] = []
        tasks: set[asyncio.Task[Any]] = set()

        async def guarded(work: Any) -> None:
            try:
                await work
            except (RequestRefused, httpx.HTTPError) as exc:
                errors.append(str(exc)[:200])

        started = time.perf_counter()
        lead_n = visitor_n = 0
        progress(f"soak: {args.minutes} minutes at {args.rate:g} leads/s and {args.anon_rate:g} visitors/s")
        progress(
            f"{'min':>4} {'leads':>6} {'errors':>6} {'flows':>6} {'p99 s':>6}  "
            "RSS MB: worker api router sandbox temporal"
        )
        for minute in range(args.minutes):
            minute_start = time.perf_counter()
            wall_start = time.time()
            errors_before, leads_before = len(errors), lead_n
            while time.perf_counter() - minute_start < 60:
                elapsed = time.perf_counter() - started
                while lead_n < elapsed * args.rate:
                    task = asyncio.create_task(
                        guarded(run_lead(sender, new_lead(lead_n, kind_for(lead_n, MIX), "soak")))
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    lead_n += 1
                while visitor_n < elapsed * args.anon_rate:
                    visit = anonymous_visit(sender, f"anon-soak-{uuid.uuid4().hex[:10]}")
                    task = asyncio.create_task(guarded(visit))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    visitor_n += 1
                await asyncio.sleep(0.05)
            async with engine.connect() as connection:
                since = _at(wall_start)
                latencies = [
                    float(r[0])
                    for r in (
                        await connection.execute(flows_query, {"since": since, "until": _at(time.time())})
                    ).all()
                ]
            memory = {name: round(rss_mb(pid), 1) for name, pid in processes(stack).items()}
            row = {
                "minute": minute + 1,
                "leads": lead_n - leads_before,
                "errors": len(errors) - errors_before,
                "flows_done": len(latencies),
                "flow_p99_s": round(percentile(latencies, 99), 3) if latencies else None,
                "in_flight": len(tasks),
                "rss_mb": memory,
            }
            rows.append(row)
            progress(
                f"{row['minute']:>4} {row['leads']:>6} {row['errors']:>6} {row['flows_done']:>6} "
                f"{row['flow_p99_s'] if row['flow_p99_s'] is not None else '-':>6}  "
                + " ".join(
                    f"{memory.get(n, float('nan')):.0f}"
                    for n in ("worker", "api", "router", "sandbox", "temporal")
                )
            )
        await asyncio.gather(*tasks)
        if errors:
            progress(f"first errors: {errors[:5]}")
    await engine.dispose()
    return rows


def _at(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=float, default=2.0, help="leads per second")
    parser.add_argument("--anon-rate", type=float, default=2.0, help="anonymous visitors per second")
    parser.add_argument("--data-dir", type=Path, default=Path("bench/results/soak-stack"))
    args = parser.parse_args()
    async with local_stack(args.data_dir) as stack:
        rows = await soak(stack, args)
    # The second half: by then the worker's workflow cache (1,000 runs) has filled, which is
    # growth by design; what grows after it is what a soak looks for.
    steady = rows[max(WARM_UP_MINUTES, len(rows) // 2) :] or rows
    growth = {
        name: slope_per_10_min([row["rss_mb"].get(name, 0.0) for row in steady]) for name in rows[0]["rss_mb"]
    }
    errors = [row["errors"] for row in rows]
    half = len(steady) // 2
    figures = {
        "bench": "soak",
        "minutes": args.minutes,
        "rate_leads_per_s": args.rate,
        "anon_rate_per_s": args.anon_rate,
        "leads": sum(row["leads"] for row in rows),
        "errors": sum(errors),
        "errors_first_half": sum(row["errors"] for row in steady[:half]),
        "errors_second_half": sum(row["errors"] for row in steady[half:]),
        "rss_mb_first": rows[0]["rss_mb"],
        "rss_mb_last": rows[-1]["rss_mb"],
        "rss_growth_mb_per_10_min": growth,
        "flow_p99_s_by_minute": [row["flow_p99_s"] for row in rows],
    }
    # The engine's own processes; the sandbox keeps every platform record it is sent (it is the
    # outside world), and the Temporal dev server's SQLite grows with the histories it holds.
    figures["flat"] = sum(errors) == 0 and all(growth.get(name, 0.0) < 10 for name in ENGINE_PROCESSES)
    final_line(figures)


if __name__ == "__main__":
    asyncio.run(main())
