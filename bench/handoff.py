"""MQL -> rep notified, through the local stack, beside the bare stack.

    .venv/bin/python -m bench.handoff [--leads 1000] [--rate 1] [--bare 300]

Each lead is driven over the API as a real one would be: a demo form, a Segment identify with
firmographics, and a batch of behaviour (5 sessions, 3 downloads, 7 email clicks) that crosses the
MQL line. Reps work their DMs: `--accept-share` of the hand-offs (default 0.9) are accepted over the
API by the rep holding them, a uniform 20 s to 4 min after the DM; the rest run the whole escalation
chain (next rep, manager, team queue), as an unattended team's would (`--accept-share 0`: nobody
accepts, the worst case). The figure is the SLA log's `notified_at - mql_at` per hand-off: the
moment the lead's workflow moved it to MQL to the moment the rep's (or the queue's) Slack message
was posted. The bare stack is a plain SDK workflow making one activity call that posts to the same
sandbox Slack, started at the same rate: what Temporal alone costs for "something happened ->
Slack". The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BareSlack
from bench.bare_workflow import BareNotify
from bench.common import final_line, histogram, local_stack, percentile, progress
from bench.workload import put_roster
from devstack.stack import DevStack
from domain.ids import lead_id_for_email
from store.db import create_engine
from tests.helpers.e2e import behaviour, demo_form

TARGET_P99_S = 5.0


async def call(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request, sent again when the connection drops (the API closes idle keep-alive connections,
    and a request can race the close) or the API answers 503 or 429 (waiting its `Retry-After`),
    as a well-behaved client does; the API's idempotency makes a resend safe."""
    for attempt in range(10):
        try:
            answer = await api.request(method, path, **kwargs)
        except httpx.TransportError:
            if attempt == 9:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
            continue
        if answer.status_code not in (429, 503) or attempt == 9:
            return answer
        told = answer.headers.get("Retry-After", "1")
        await asyncio.sleep(float(told) if told.replace(".", "", 1).isdigit() else 1.0)
    raise AssertionError("unreachable")


async def work_the_dm(
    api: httpx.AsyncClient, engine: Any, email: str, accept_share: float, accepted: list[str]
) -> None:
    """The rep holding the hand-off accepts it 20 s to 4 min after the DM (or never). Who holds it
    is read from the SLA log in PostgreSQL every 2 s: a rep reads their Slack, not the workflow (a
    query per lead per second would itself load the worker it measures)."""
    if random.random() >= accept_share:
        return
    handoff_id = f"handoff-{lead_id_for_email(email)}-1"
    holder = None
    query = text("SELECT rep_id FROM handoffs WHERE handoff_id = :id AND notified_at IS NOT NULL")
    for _ in range(300):
        async with engine.connect() as connection:
            holder = (await connection.execute(query, {"id": handoff_id})).scalar()
        if holder:
            break
        await asyncio.sleep(2)
    if not holder:
        return
    await asyncio.sleep(random.uniform(20, 240))
    answer = await call(api, "POST", f"/v1/handoffs/{handoff_id}/accept", json={"rep_id": holder})
    if answer.status_code == 200:
        accepted.append(handoff_id)


async def drive(api: httpx.AsyncClient, email: str, failures: list[str]) -> None:
    user = f"bench-{uuid.uuid4().hex[:10]}"
    identify = {
        "userId": user,
        "traits": {"email": email, "industry": "Software", "employees": 420, "country": "DE"},
        "context": {"timezone": "Europe/Berlin"},
        "messageId": f"{user}-identify",
    }
    # Message ids and an idempotency key: a request resent after a dropped connection counts once.
    batch = [
        {**item, "messageId": f"{user}-{n}"} for n, item in enumerate(behaviour(user, datetime.now(UTC)))
    ]
    for method, path, body, headers in (
        ("POST", "/v1/forms/demo/submissions", demo_form(email), {"Idempotency-Key": f"{user}-form"}),
        ("POST", "/v1/identify", identify, {}),
        ("POST", "/v1/batch", {"batch": batch}, {}),
    ):
        response = await call(api, method, path, json=body, headers=headers)
        if response.status_code >= 300:
            failures.append(f"{path}: {response.status_code}")


async def steady(count: int, rate: float, make: Any) -> float:
    """Starts `make(n)` at `rate` per second; returns the seconds it took to start them all."""
    started = time.perf_counter()
    tasks = []
    for n in range(count):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make(n)))
        if n and n % 100 == 0:
            progress(f"  {n} started")
    await asyncio.gather(*tasks)
    return time.perf_counter() - started


async def product(stack: DevStack, leads: int, rate: float, accept_share: float) -> dict[str, Any]:
    emails = [f"bench.{uuid.uuid4().hex[:10]}@example-corp.com" for _ in range(leads)]
    failures: list[str] = []
    accepted: list[str] = []
    reps_at_work: list[asyncio.Task[None]] = []
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=stack.settings.api_url, headers=headers, limits=limits, timeout=60
    ) as api:
        await put_roster(api, reps=10)
        progress(f"journeys: {leads} leads over the API at {rate:g}/s, each crossing the MQL line")

        engine = create_engine(stack.database_url, pool_size=5)

        async def lead_and_rep(n: int) -> None:
            await drive(api, emails[n], failures)
            reps_at_work.append(
                asyncio.create_task(work_the_dm(api, engine, emails[n], accept_share, accepted))
            )

        await steady(leads, rate, lead_and_rep)
        progress("waiting for the reps' last acceptances ...")
        await asyncio.gather(*reps_at_work)
    lead_ids = [lead_id_for_email(e) for e in emails]
    query = text(
        "SELECT extract(epoch FROM notified_at - mql_at), extract(epoch FROM assigned_at - mql_at) "
        "FROM handoffs WHERE lead_id = ANY(:ids) AND notified_at IS NOT NULL"
    )
    deadline = time.monotonic() + 600
    try:
        while True:
            async with engine.connect() as connection:
                rows = (await connection.execute(query, {"ids": lead_ids})).all()
            progress(f"  {len(rows)} of {leads} hand-offs notified")
            if len(rows) >= leads or time.monotonic() > deadline:
                break
            await asyncio.sleep(5)
    finally:
        await engine.dispose()
    notified = [float(r[0]) for r in rows]
    assigned = [float(r[1]) for r in rows if r[1] is not None]
    calls = await platform_calls(stack)
    return {
        "notified": notified,
        "assigned": assigned,
        "failures": failures,
        "calls": calls,
        "accepted": len(accepted),
    }


async def platform_calls(stack: DevStack) -> dict[str, int]:
    """Calls the sandbox saw per provider and status class: where the work and the limits go."""
    async with httpx.AsyncClient(base_url=stack.settings.sandbox_url, timeout=60) as sandbox:
        calls = (await sandbox.get("/_calls")).json()["calls"]
    counts: dict[str, int] = {}
    for call in calls:
        path = re.sub(r"/[^/]*\d[^/]*", "/{id}", call["path"])
        key = f"{call['provider']} {call['method']} {path} {call['status'] // 100}xx"
        counts[key] = counts.get(key, 0) + 1
    for key, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        progress(f"  {count:7d}  {key}")
    return counts


async def bare(stack: DevStack, count: int, rate: float) -> list[float]:
    client = await Client.connect(stack.settings.temporal_address)
    queue = f"bare-handoff-{uuid.uuid4().hex[:6]}"
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=20) as http:
        slack = BareSlack(http, stack.settings.sandbox_url)
        async with Worker(client, task_queue=queue, workflows=[BareNotify], activities=[slack.post]):

            async def one(n: int) -> None:
                started = time.perf_counter()
                await client.execute_workflow(
                    BareNotify.run, f"bare {n}", id=f"bare-notify-{queue}-{n}", task_queue=queue
                )
                latencies.append(time.perf_counter() - started)

            progress(f"bare: {count} workflows, one Slack post each, at {rate:g}/s")
            await steady(count, rate, one)
    return latencies


def spread(values: list[float]) -> dict[str, float]:
    return {f"p{q}_s": round(percentile(values, q), 3) for q in (50, 90, 99)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1.0, help="MQLs per second")
    parser.add_argument("--bare", type=int, default=300, help="bare-stack workflows, at the same rate")
    parser.add_argument("--accept-share", type=float, default=0.9, help="hand-offs the reps accept")
    parser.add_argument("--data-dir", type=Path, default=Path("bench/results/handoff-stack"))
    args = parser.parse_args()
    async with local_stack(args.data_dir) as stack:
        bare_latencies = await bare(stack, args.bare, args.rate)
        measured = await product(stack, args.leads, args.rate, args.accept_share)
    notified = measured["notified"]
    progress("MQL -> rep notified (journeys):")
    progress(histogram(notified, buckets_ms=(250, 500, 1000, 2000, 5000, 10000, 30000)))
    progress("start -> Slack posted (bare stack):")
    progress(histogram(bare_latencies, buckets_ms=(25, 50, 100, 250, 500, 1000, 5000)))
    figures = {
        "bench": "handoff",
        "leads": args.leads,
        "rate_per_s": args.rate,
        "notified": len(notified),
        "accepted_by_reps": measured["accepted"],
        "mql_to_notified": spread(notified),
        "mql_to_assigned": spread(measured["assigned"]),
        "bare_to_slack": spread(bare_latencies),
        "p99_vs_bare": round(percentile(notified, 99) / max(percentile(bare_latencies, 99), 1e-6), 1),
        "request_failures": len(measured["failures"]),
        "platform_calls_per_lead": round(sum(measured["calls"].values()) / max(args.leads, 1), 1),
        "target_p99_s": TARGET_P99_S,
    }
    figures["meets_target"] = len(notified) == args.leads and percentile(notified, 99) <= TARGET_P99_S
    final_line(figures)


if __name__ == "__main__":
    asyncio.run(main())
