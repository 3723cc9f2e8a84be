"""The mixed workload through the local stack, beside the bare stack, in one run.

    .venv/bin/python -m bench.mixed [--rate 4] [--seconds 120] [--anon-rate 4] [--open 10000]

Phases:
- **bare**: raw signal-with-starts from a bare SDK client (the stack's signal ceiling); bare
  workflows posting one Slack message each at the workload's lead rate (what "something
  happened -> a platform write" costs Temporal alone); and a bare SDK worker (a child process)
  holding `--open` workflows that wait for a signal, for its memory.
- **mixed**: `--rate` leads a second for `--seconds`: forms, email clicks, leads crossing the MQL
  line, Calendly bookings and Stripe purchases (see `MIX`), with anonymous visitors reading
  pages at `--anon-rate`. Events per second accepted by the API and routed into journeys; p50 and
  p99 of each of the seed's data flows, timed by the engine itself from the event's receipt to
  the platform write that completes it (`data_flows`, and the hand-off's SLA log for score change
  -> sales alert); the worker's and the API's memory, sampled every second.
- **open**: `--open` product sign-ups (a Segment `track` from a known user id, no email yet:
  a lead journey each, with no platform to call), left waiting for their next event; the
  worker's memory with all of them open, beside the bare worker's. (Anonymous visitors' page
  views are kept in PostgreSQL and start no journey until the visitor is identified.)

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import text
from temporalio.client import Client

from bench.common import final_line, histogram, local_stack, percentile, progress, signal_with_start_all
from bench.handoff import bare as bare_notify
from bench.ingest import bare_signals, drain, settle
from bench.workload import (
    Sender,
    anonymous_visit,
    expected_events,
    kind_for,
    new_lead,
    run_lead,
    workload_client,
)
from devstack.stack import DevStack
from domain.lead import LEAD_WORKFLOW_TYPE
from store.db import create_engine

MIX = {"click": 0.15, "mql": 0.05, "meeting": 0.1, "purchase": 0.1}
# The targets: every flow's p99 at least 30 x inside the seed's target.
FLOW_TARGETS_S = {
    "form_to_email": 1.0,
    "form_to_crm": 1.0,
    "click_to_crm": 2.0,
    "score_to_sales_alert": 5.0,
    "meeting_to_crm": 2.0,
    "purchase_to_customer_success": 2.0,
}
WORKER_RSS_TARGET_MB = 500


def rss_mb(pid: int | None) -> float:
    try:
        return psutil.Process(pid).memory_info().rss / 2**20 if pid else float("nan")
    except psutil.NoSuchProcess:
        return float("nan")


class MemorySampler:
    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        self.samples: dict[str, list[float]] = {"worker": [], "api": []}
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for name in self.samples:
                self.samples[name].append(rss_mb(self.stack.children[name].pid))
            await asyncio.sleep(1)

    def __enter__(self) -> MemorySampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def peak(self, name: str) -> float:
        return round(max(self.samples[name], default=float("nan")), 1)


async def bare_memory(stack: DevStack, count: int) -> float:
    """A bare SDK worker (a child process) holding `count` workflows that wait for a signal."""
    queue = f"bare-open-{uuid.uuid4().hex[:6]}"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bare_worker",
        stack.settings.temporal_address,
        queue,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        await child.stdout.readline()
        client = await Client.connect(stack.settings.temporal_address)
        progress(f"bare: a bare worker holding {count} waiting workflows ...")
        await signal_with_start_all(client, "BareWaiting", queue, count, lambda n: f"{queue}-{n}", 32)
        await asyncio.sleep(5)
        await settle(stack)
        return round(rss_mb(child.pid), 1)
    finally:
        child.kill()
        await child.wait()


async def mixed(
    stack: DevStack, api: httpx.AsyncClient, sender: Sender, args: argparse.Namespace
) -> dict[str, Any]:
    count = int(args.rate * args.seconds)
    leads = [new_lead(n, kind_for(n, MIX), tag="mixed") for n in range(count)]
    visitors = int(args.anon_rate * args.seconds)
    progress(
        f"mixed: {count} leads at {args.rate:g}/s and {visitors} anonymous visitors over {args.seconds:g}s"
    )
    anonymous_pages = 0
    with MemorySampler(stack) as memory:
        started = time.perf_counter()
        tasks: list[asyncio.Task[Any]] = []

        async def visitor(n: int) -> None:
            nonlocal anonymous_pages
            anonymous_pages += await anonymous_visit(sender, f"anon-mixed-{uuid.uuid4().hex[:10]}")

        schedule = sorted(
            [(n / args.rate, "lead", n) for n in range(count)]
            + [(n / args.anon_rate, "visitor", n) for n in range(visitors)]
        )
        for at, what, n in schedule:
            await asyncio.sleep(max(0.0, started + at - time.perf_counter()))
            tasks.append(asyncio.create_task(run_lead(sender, leads[n]) if what == "lead" else visitor(n)))
            if what == "lead" and n and n % 100 == 0:
                progress(f"  {n} leads sent")
        await asyncio.gather(*tasks)
        sent_seconds = time.perf_counter() - started
        events = sum(expected_events(lead) for lead in leads) + anonymous_pages
        routed = await drain(stack, started, events)
        flows = await flow_latencies(stack, leads)
    return {
        "leads": count,
        "events": events,
        "events_accepted_per_s": round(events / sent_seconds, 1),
        "events_routed_per_s": routed["events_routed_per_s"],
        "request_p99_ms": round(percentile(sender.latencies, 99) * 1000, 1),
        "flows": flows,
        "worker_rss_mb_peak": memory.peak("worker"),
        "api_rss_mb_peak": memory.peak("api"),
    }


async def flow_latencies(stack: DevStack, leads: list[Any], timeout: float = 300) -> dict[str, Any]:
    """Each flow's latency as the engine timed it, once every lead's flows are done (or timeout)."""
    ids = [lead.lead_id for lead in leads]
    expected = {
        "form_to_email": len(leads),
        "form_to_crm": len(leads),
        "click_to_crm": sum(lead.kind == "click" for lead in leads),
        "meeting_to_crm": sum(lead.kind == "meeting" for lead in leads),
        "purchase_to_customer_success": sum(lead.kind == "purchase" for lead in leads),
        "score_to_sales_alert": sum(lead.kind == "mql" for lead in leads),
    }
    flows_query = text(
        "SELECT flow, extract(epoch FROM done_at - started_at) FROM data_flows WHERE lead_id = ANY(:ids)"
    )
    alerts_query = text(
        "SELECT extract(epoch FROM notified_at - mql_at) FROM handoffs "
        "WHERE lead_id = ANY(:ids) AND notified_at IS NOT NULL"
    )
    engine = create_engine(stack.database_url, pool_size=1)
    deadline = time.monotonic() + timeout
    try:
        while True:
            seen: dict[str, list[float]] = {name: [] for name in expected}
            async with engine.connect() as connection:
                for flow, seconds in (await connection.execute(flows_query, {"ids": ids})).all():
                    seen.setdefault(flow, []).append(float(seconds))
                seen["score_to_sales_alert"] = [
                    float(r[0]) for r in (await connection.execute(alerts_query, {"ids": ids})).all()
                ]
            short = {name: n - len(seen[name]) for name, n in expected.items() if len(seen[name]) < n}
            if not short or time.monotonic() > deadline:
                break
            progress(f"  flows still running: {short}")
            await asyncio.sleep(2)
    finally:
        await engine.dispose()
    report: dict[str, Any] = {}
    for name, values in seen.items():
        target = FLOW_TARGETS_S.get(name)
        p99 = percentile(values, 99)
        report[name] = {
            "n": len(values),
            "expected": expected.get(name, len(values)),
            "p50_s": round(percentile(values, 50), 3),
            "p99_s": round(p99, 3),
            "target_p99_s": target,
            "meets": bool(target and values and len(values) >= expected.get(name, 0) and p99 <= target),
        }
        progress(f"{name} (n={len(values)}):")
        progress(histogram(values, buckets_ms=(100, 250, 500, 1000, 2000, 5000)))
    return report


async def open_journeys(stack: DevStack, sender: Sender, count: int) -> dict[str, Any]:
    progress(f"open: {count} product sign-ups (known users, no email yet), each a journey left waiting ...")
    started = time.perf_counter()
    gate = asyncio.Semaphore(8)
    run = uuid.uuid4().hex[:6]

    async def batch(b: int) -> None:
        async with gate:
            messages = [
                {
                    "type": "track",
                    "userId": f"open-{run}-{b}-{n}",
                    "event": "Signed Up",
                    "properties": {"plan": "trial"},
                    "messageId": f"open-{run}-{b}-{n}",
                }
                for n in range(100)
            ]
            await sender.send("POST", "/v1/batch", json_body={"batch": messages})

    await asyncio.gather(*(batch(b) for b in range(count // 100)))
    accepted_per_s = count / (time.perf_counter() - started)
    routed = await drain(stack, started, count)
    client = await Client.connect(stack.settings.temporal_address)
    query = f"WorkflowType = '{LEAD_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    await settle(stack)
    running = (await client.count_workflows(query)).count
    return {
        "journeys_open": running,
        "worker_rss_mb": round(rss_mb(stack.children["worker"].pid), 1),
        "accepted_per_s": round(accepted_per_s, 1),
        "routed_per_s": routed["events_routed_per_s"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    # Two leads a second is what this two-core box sustains with every journey on it (at four, the
    # journeys side falls behind and flows wait tens of seconds: docs/performance.md).
    parser.add_argument("--rate", type=float, default=2.0, help="leads per second")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--anon-rate", type=float, default=4.0, help="anonymous visitors per second")
    parser.add_argument("--open", type=int, default=10_000, help="journeys held open for the memory figure")
    parser.add_argument("--data-dir", type=Path, default=Path("bench/results/mixed-stack"))
    args = parser.parse_args()
    async with local_stack(args.data_dir) as stack:
        async with workload_client(stack, "mixed") as (api, sender):
            progress("bare: raw signal-with-starts ...")
            signals = await bare_signals(stack, total=3000, concurrency=32, leads=1000)
            bare_flow = await bare_notify(stack, int(min(args.rate * 30, 200)), args.rate)
            await settle(stack)
            measured = await mixed(stack, api, sender, args)
            await settle(stack)
            opened = await open_journeys(stack, sender, args.open)
            bare_rss = await bare_memory(stack, args.open)
    flows = measured["flows"]
    bare_p99 = percentile(bare_flow, 99)
    figures: dict[str, Any] = {
        "bench": "mixed",
        "rate_leads_per_s": args.rate,
        "seconds": args.seconds,
        "events_accepted_per_s": measured["events_accepted_per_s"],
        "events_routed_per_s": measured["events_routed_per_s"],
        "bare_signals_per_s": signals["signals_per_s"],
        "flows": {name: {k: v for k, v in f.items() if k != "expected"} for name, f in flows.items()},
        "bare_flow_p50_s": round(percentile(bare_flow, 50), 3),
        "bare_flow_p99_s": round(bare_p99, 3),
        "form_to_email_p99_vs_bare": round(flows["form_to_email"]["p99_s"] / max(bare_p99, 1e-6), 1),
        "worker_rss_mb_peak_mixed": measured["worker_rss_mb_peak"],
        "api_rss_mb_peak_mixed": measured["api_rss_mb_peak"],
        "open_events_accepted_per_s": opened["accepted_per_s"],
        "open_new_journeys_routed_per_s": opened["routed_per_s"],
        "open_routed_vs_bare": round(opened["routed_per_s"] / signals["signals_per_s"], 2),
        "journeys_open": opened["journeys_open"],
        "worker_rss_mb_open": opened["worker_rss_mb"],
        "bare_worker_rss_mb_open": bare_rss,
        "worker_rss_vs_bare": round(opened["worker_rss_mb"] / max(bare_rss, 1e-6), 2),
        "request_retries": dict(sender.retried),
    }
    figures["meets_targets"] = (
        all(f["meets"] for f in flows.values())
        and opened["journeys_open"] >= args.open
        and opened["worker_rss_mb"] <= WORKER_RSS_TARGET_MB
    )
    final_line(figures)


if __name__ == "__main__":
    asyncio.run(main())
