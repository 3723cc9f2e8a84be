"""Ingestion benchmark: events accepted per second and accept latency, beside the bare stack.

    .venv/bin/python -m bench.ingest [--single-rate 100] [--single-seconds 20] [--batch-events 20000]

Phases, all against one local stack started as `make dev` starts it:
  bare     raw signal-with-start from a bare Temporal SDK client to the same dev server (no worker)
  single   one event at a time, paced at --single-rate events/s: every other one POST /v1/track
           from a server (JSON, Bearer), the rest as Segment's browser library sends them
           (/v1/t and /v1/p, text/plain JSON, the write key in the body and as Basic auth, a
           browser key from its site's Origin, clients spread over 200 IPs)
  batch    POST /v1/batch with 100 events each, 4 in flight
  routing  how fast the recorded events reach their lead workflows (outbox drained)
The last line is one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import text
from temporalio.client import Client

from bench.common import (
    final_line,
    histogram,
    local_stack,
    percentile,
    progress,
    signal_with_start_all,
    summary_ms,
)
from devstack.stack import DevStack
from store.db import create_engine

TARGETS = {"batch_events_per_s": 1000, "single_p99_ms": 50, "routing_vs_bare": 0.7}


async def bare_signals(stack: DevStack, total: int, concurrency: int, leads: int) -> dict[str, Any]:
    client = await Client.connect(stack.settings.temporal_address)
    run = uuid.uuid4().hex[:6]
    started = time.perf_counter()
    latencies = await signal_with_start_all(
        client, "BareEntity", f"bare-{run}", total, lambda n: f"bare-{run}-{n % leads}", concurrency
    )
    elapsed = time.perf_counter() - started
    return {"signals_per_s": round(total / elapsed, 1), **summary_ms(latencies)}


def track(user: str, n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        # The id a browser's library also sends for this user: the warm-up links it.
        "anonymousId": f"anon-{user}",
        "event": "Feature Used",
        "messageId": f"{user}-{n}-{uuid.uuid4().hex[:6]}",
        "properties": {"feature": "reports", "n": n},
        "timestamp": datetime.now(UTC).isoformat(),
    }


BENCH_SITE = "https://www.bench-site.example"


def browser_request(key: str, user: str, n: int) -> dict[str, Any]:
    """A track or a page view as @segment/analytics-next posts it (its Segment.io plugin)."""
    now = datetime.now(UTC).isoformat()
    kind = "page" if n % 4 == 1 else "track"
    message: dict[str, Any] = {
        "type": kind,
        "userId": user,
        "anonymousId": f"anon-{user}",
        "messageId": f"ajs-next-{user}-{n}-{uuid.uuid4().hex[:8]}",
        "timestamp": now,
        "sentAt": now,
        "context": {
            "page": {"path": "/pricing", "url": f"{BENCH_SITE}/pricing", "title": "Pricing", "referrer": ""},
            "library": {"name": "analytics.js", "version": "next-1.84.3"},
        },
        "integrations": {},
        "writeKey": key,
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }
    if kind == "page":
        message |= {"name": "Pricing", "properties": {"path": "/pricing", "url": f"{BENCH_SITE}/pricing"}}
    else:
        message |= {"event": "Plan Compared", "properties": {"plan": "team", "n": n}}
    return {
        "url": f"/v1/{kind[0]}",
        "content": json.dumps(message),
        "headers": {
            "Content-Type": "text/plain",
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
            "Origin": BENCH_SITE,
            # uvicorn takes the client's address from a proxy on loopback: visitors from 200 IPs.
            "X-Forwarded-For": f"198.51.100.{n % 200}",
        },
    }


async def single_events(
    api: httpx.AsyncClient,
    rate: float,
    seconds: float,
    users: list[str],
    browser_key: str | None = None,
    browser_share: float = 0.5,
) -> dict[str, Any]:
    """Paced sends. Latency counts from each event's scheduled time, so a client falling behind
    shows as latency (no coordinated omission); in-flight requests are capped because httpx's
    pool slows down badly with hundreds waiting in it. With `browser_key`, `browser_share` of the
    events (spread evenly) come as a browser's."""
    latencies: list[float] = []
    from_browsers: list[float] = []
    server: list[float] = []
    failures = 0
    total = int(rate * seconds)
    started = time.perf_counter()
    in_flight = asyncio.Semaphore(32)

    def from_a_browser(n: int) -> bool:
        return browser_key is not None and int((n + 1) * browser_share) > int(n * browser_share)

    async def one(n: int) -> None:
        nonlocal failures
        user = users[n % len(users)]
        scheduled = started + n / rate
        async with in_flight:
            if browser_key is not None and from_a_browser(n):
                response = await api.post(**browser_request(browser_key, user, n))
            else:
                message = track(user, n)
                message.pop("type")
                response = await api.post("/v1/track", json=message)
        latencies.append(time.perf_counter() - scheduled)
        if from_a_browser(n):
            from_browsers.append(latencies[-1])
        # The API's own time (its Server-Timing header): apart from the client and the queue.
        timing = response.headers.get("Server-Timing", "")
        if "dur=" in timing:
            server.append(float(timing.split("dur=", 1)[1].split(",", 1)[0]) / 1000)
        if response.status_code != 200:
            failures += 1

    tasks = []
    for n in range(total):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
        if n and n % int(rate * 5) == 0:
            progress(f"  single: {n}/{total} sent")
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    progress(histogram(latencies))
    return {
        "events": total,
        "events_per_s": round(total / elapsed, 1),
        "failures": failures,
        **summary_ms(latencies),
        "server_p50_ms": round(percentile(server, 50) * 1000, 2),
        "server_p99_ms": round(percentile(server, 99) * 1000, 2),
        **{f"browser_{k}": v for k, v in summary_ms(from_browsers).items()},
    }


async def batches(
    api: httpx.AsyncClient, total: int, size: int, concurrency: int, users: list[str]
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    failures = 0
    done = 0

    async def one(b: int) -> None:
        nonlocal failures, done
        body = {"batch": [track(users[(b * size + i) % len(users)], b * size + i) for i in range(size)]}
        async with gate:
            sent = time.perf_counter()
            response = await api.post("/v1/batch", json=body)
            latencies.append(time.perf_counter() - sent)
        if response.status_code != 200:
            failures += 1
        done += size
        if done % (size * 40) == 0:
            progress(f"  batch: {done}/{total} events accepted")

    started = time.perf_counter()
    await asyncio.gather(*(one(b) for b in range(total // size)))
    elapsed = time.perf_counter() - started
    return {
        "events": total,
        "batch_size": size,
        "events_per_s": round(total / elapsed, 1),
        "failures": failures,
        **{f"batch_{k}": v for k, v in summary_ms(latencies).items()},
    }


async def drain(stack: DevStack, since: float, events: int, timeout: float = 600) -> dict[str, Any]:
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        while True:
            async with engine.connect() as connection:
                pending = (
                    await connection.execute(text("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"))
                ).scalar_one()
            if pending == 0:
                break
            if time.perf_counter() - since > timeout:
                break
            progress(f"  routing: {pending} outbox rows pending")
            await asyncio.sleep(1)
    finally:
        await engine.dispose()
    elapsed = time.perf_counter() - since
    return {
        "events_routed_per_s": round(events / elapsed, 1),
        "drain_seconds": round(elapsed, 2),
        "pending_left": pending,
    }


async def settle(stack: DevStack, *, idle_percent: float = 10.0, timeout: float = 120) -> None:
    """Waits until Temporal, the router and the worker have worked off the previous phase, so a
    phase measures its own load, not the tail of the one before."""
    processes = [
        psutil.Process(p.pid) for name, p in stack.children.items() if name in ("worker", "router") and p.pid
    ]
    if stack.temporal is not None and stack.temporal.process is not None and stack.temporal.process.pid:
        processes.append(psutil.Process(stack.temporal.process.pid))
    for process in processes:
        process.cpu_percent()
    quiet = 0
    deadline = time.perf_counter() + timeout
    while quiet < 2 and time.perf_counter() < deadline:
        await asyncio.sleep(1)
        busy = sum(process.cpu_percent() for process in processes)
        quiet = quiet + 1 if busy < idle_percent else 0
        progress(f"  settling: journeys side at {busy:.0f}% CPU")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--single-rate", type=float, default=100)
    parser.add_argument("--single-seconds", type=float, default=20)
    parser.add_argument("--batch-events", type=int, default=20_000)
    parser.add_argument("--bare-signals", type=int, default=3_000)
    parser.add_argument("--leads", type=int, default=1_000)
    parser.add_argument(
        "--browser-share", type=float, default=0.5, help="of the single events, sent as a browser's (0 to 1)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path("bench/results/ingest-stack"))
    args = parser.parse_args()

    async with local_stack(args.data_dir) as stack:
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        users = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(args.leads)]
        async with httpx.AsyncClient(
            base_url=stack.settings.api_url, headers=headers, limits=limits, timeout=60
        ) as api:
            progress(
                f"bare: {args.bare_signals} signal-with-starts over {args.leads} workflow ids, 32 in flight"
            )
            bare = await bare_signals(stack, args.bare_signals, 32, args.leads)
            progress(f"  {bare}")
            progress(f"warm-up: {args.leads} leads seen once (batches), then routed")
            await batches(api, args.leads, 100, 4, users)
            await drain(stack, time.perf_counter(), 0)
            await settle(stack)
            made = await api.post(
                "/v1/admin/keys",
                json={
                    "name": "bench site",
                    "scope": "browser",
                    "origins": [BENCH_SITE],
                    "rate_per_second": 10_000,
                },
            )
            made.raise_for_status()
            progress(
                f"single: {args.single_rate:g} events/s for {args.single_seconds:g} s, known leads, "
                f"{args.browser_share:.0%} of them from browsers (/v1/t, /v1/p)"
            )
            single = await single_events(
                api,
                args.single_rate,
                args.single_seconds,
                users,
                browser_key=made.json()["key"],
                browser_share=args.browser_share,
            )
            progress(f"  {single}")
            await drain(stack, time.perf_counter(), 0)
            await settle(stack)
            progress(f"batch: {args.batch_events} events in batches of 100, 4 in flight")
            started = time.perf_counter()
            batch = await batches(api, args.batch_events, 100, 4, users)
            progress(f"  {batch}")
            routing = await drain(stack, started, args.batch_events)
            progress(f"  {routing}")

    figures = {
        "bench": "ingest",
        "bare_signal_with_start_per_s": bare["signals_per_s"],
        "bare_p50_ms": bare["p50_ms"],
        "bare_p99_ms": bare["p99_ms"],
        "single_events_per_s": single["events_per_s"],
        "single_p50_ms": single["p50_ms"],
        "single_p99_ms": single["p99_ms"],
        "single_server_p50_ms": single["server_p50_ms"],
        "single_server_p99_ms": single["server_p99_ms"],
        "single_failures": single["failures"],
        "single_browser_share": args.browser_share,
        "single_browser_p50_ms": single["browser_p50_ms"],
        "single_browser_p99_ms": single["browser_p99_ms"],
        "batch_events_per_s": batch["events_per_s"],
        "batch_p99_ms": batch["batch_p99_ms"],
        "batch_failures": batch["failures"],
        "routed_events_per_s": routing["events_routed_per_s"],
        "routing_vs_bare": round(routing["events_routed_per_s"] / bare["signals_per_s"], 2),
        "batch_accept_vs_bare": round(batch["events_per_s"] / bare["signals_per_s"], 2),
        "targets": TARGETS,
    }
    figures["meets_targets"] = (
        figures["batch_events_per_s"] >= TARGETS["batch_events_per_s"]
        and figures["single_p99_ms"] <= TARGETS["single_p99_ms"]
        and figures["routing_vs_bare"] >= TARGETS["routing_vs_bare"]
    )
    final_line(figures)


if __name__ == "__main__":
    asyncio.run(main())
