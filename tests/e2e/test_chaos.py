"""Chaos: 150 leads (`CHAOS_LEADS`) through their journeys while the worker is killed (SIGKILL)
three times, the Temporal dev server is restarted once, and every platform answers 20% of calls
with a 5xx, some with 429 and `Retry-After`, and some only after the client has given up (before
or after acting).

Then, with the faults gone, the test waits for the journeys to finish their work and asserts:
- every journey completed: each form reached the CRM and the email platform, each click the CRM,
  each meeting the CRM, each purchase customer success, each MQL a rep or the team queue;
- no external write happened twice: in the sandbox's log, no key the clients made a write
  idempotent with created or sent more than one object;
- no event was lost: every event the API accepted is recorded once and was folded into its lead's
  workflow;
- every hand-off's SLA was met, or the hand-off escalated after it, or (the rep's click and the
  SLA's timer reaching the run together) it was accepted with the miss on its audit.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bench.workload import (
    Sender,
    WorkloadLead,
    expected_events,
    kind_for,
    new_lead,
    put_roster,
    run_lead,
)
from devstack.stack import DevStack
from store.db import create_engine
from tests.helpers.stack import stack_of_its_own

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# The load and the faults' rates are what the engine is held to (6 leads a second, a fifth of calls
# failing); the number of leads only sets how long the chaos lasts. 150 leads are sent in 25 s, long
# enough for every kill and the restart to land while leads still arrive (CHAOS_PLAN, as shares of
# the sending time), with 15 of each kind of journey. 160 to 275 calls are made while the faults
# are on (fewer on a busy box: two runs drew 32 and 55 5xx); 5% of calls are held past the client
# so that each fault kind is met (asserted below): no held answer at all is about a 1-in-3000
# chance at 160 calls, as it was with 300 leads at 1%. `CHAOS_LEADS=500` runs the longer chaos
# the earlier figures in docs/reliability.md come from.
LEADS = int(os.environ.get("CHAOS_LEADS", "150"))
RATE = 6.0  # leads per second
MIX = {"click": 0.1, "mql": 0.1, "meeting": 0.1, "purchase": 0.1}
# A kill early, one a third of the way, Temporal restarted past half-way, a kill late.
CHAOS_PLAN = [
    (round(share * LEADS / RATE, 1), what)
    for share, what in [(0.12, "kill"), (0.36, "kill"), (0.56, "temporal"), (0.84, "kill")]
]
SLA = timedelta(seconds=30)
STEP = timedelta(seconds=4)
# Events the sandbox's email platform reports of its own accord (each welcome email delivered).
PLATFORM_REPORTED = frozenset({"email_delivered"})
FAULTS = {"error_rate": 0.2, "rate_limit_rate": 0.05, "retry_after_seconds": 1, "timeout_rate": 0.05}
PROVIDERS = ("hubspot", "klaviyo", "slack", "google")
# After the last lead is sent (and the faults lifted), how long the journeys may take to catch up.
SETTLE_SECONDS = 360

EXPECTED_FLOWS = {
    "form": {"form_to_crm", "form_to_email"},
    "click": {"form_to_crm", "form_to_email", "click_to_crm"},
    "mql": {"form_to_crm", "form_to_email"},
    "meeting": {"form_to_crm", "form_to_email", "meeting_to_crm"},
    "purchase": {"form_to_crm", "form_to_email", "purchase_to_customer_success"},
}


@pytest.fixture(scope="module")
async def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevStack]:
    async with stack_of_its_own(tmp_path_factory, "chaos") as stack:
        yield stack


async def chaos(stack: DevStack, log: list[str], started: float) -> None:
    """Three worker kills and a Temporal restart while the leads arrive."""
    for at, what in CHAOS_PLAN:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        if what == "kill":
            await stack.restart_worker(kill=True)
        else:
            assert stack.temporal is not None
            await stack.temporal.stop()
            await asyncio.sleep(2)
            await stack.temporal.start(log_dir=stack.log_dir)
        log.append(f"{time.monotonic() - started:.0f}s {what}")


async def accept_some(
    api: httpx.AsyncClient, engine: Any, lead: WorkloadLead, accepted: list[str], asked: dict[str, datetime]
) -> None:
    """Every other MQL's rep accepts as soon as the DM arrives; the rest run the escalation chain.
    `asked` keeps when the rep first clicked: a click the chaos held up (a dead worker, Temporal
    restarting) still counts as the rep's answer at that time."""
    if lead.n % 2:
        return
    handoff_id = f"handoff-{lead.lead_id}-1"
    query = text("SELECT rep_id FROM handoffs WHERE handoff_id = :id AND notified_at IS NOT NULL")
    # Reps stop looking after a few minutes: by then the hand-off has reached the team queue.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        async with engine.connect() as connection:
            holder = (await connection.execute(query, {"id": handoff_id})).scalar()
        if holder:
            asked.setdefault(handoff_id, datetime.now(UTC))
            answer = await api.post(f"/v1/handoffs/{handoff_id}/accept", json={"rep_id": holder})
            if answer.status_code == 200:
                accepted.append(handoff_id)
                return
            if answer.status_code == 409 and ("already accepted" in answer.text or "queue" in answer.text):
                return
        await asyncio.sleep(1)


async def test_journeys_survive_crashes_restarts_and_platform_faults(chaos_stack: DevStack):
    stack = chaos_stack
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with (
        httpx.AsyncClient(base_url=stack.settings.api_url, headers=headers, timeout=30, limits=limits) as api,
        httpx.AsyncClient(base_url=stack.settings.sandbox_url, timeout=60) as sandbox,
    ):
        await put_roster(
            api, reps=10, sla=f"{SLA.total_seconds():g}s", step_timeout=f"{STEP.total_seconds():g}s"
        )
        ingest_key = (await api.post("/v1/admin/keys", json={"name": "chaos", "scope": "ingest"})).json()[
            "key"
        ]
        for provider in PROVIDERS:
            assert (await sandbox.put(f"/_faults/{provider}", json=FAULTS)).status_code == 200

        random.seed(7)
        leads = [new_lead(n, kind_for(n, MIX)) for n in range(LEADS)]
        sender = Sender(api, ingest_key)
        engine = create_engine(stack.database_url, pool_size=4)
        chaos_log: list[str] = []
        accepted: list[str] = []
        asked: dict[str, datetime] = {}
        started = time.monotonic()
        try:
            chaos_task = asyncio.create_task(chaos(stack, chaos_log, started))
            acceptors = []
            sends = []
            for lead in leads:
                await asyncio.sleep(max(0.0, started + lead.n / RATE - time.monotonic()))
                sends.append(asyncio.create_task(run_lead(sender, lead)))
                if lead.kind == "mql":
                    acceptors.append(asyncio.create_task(accept_some(api, engine, lead, accepted, asked)))
            await asyncio.gather(*sends)
            await chaos_task
            for provider in PROVIDERS:
                await sandbox.put(f"/_faults/{provider}", json={})

            missing = await wait_for_journeys(api, engine, leads)
            await asyncio.gather(*acceptors)
            assert not missing, (
                f"journeys not done {SETTLE_SECONDS}s after the chaos ({chaos_log}): {missing}"
            )

            await assert_no_event_lost(api, leads)
            misses = await assert_every_sla_met_or_escalated(
                api, engine, [lead for lead in leads if lead.kind == "mql"], asked
            )
            calls = await assert_no_write_twice(sandbox)
            elapsed = time.monotonic() - started
            # The product's own SLA report (this stack holds only this test's hand-offs).
            report = (await api.get("/v1/reports/sla", params={"window_hours": 1})).json()
            to_rep = report["seconds_from_mql"]["notified"]
        finally:
            await engine.dispose()
    # The faults did happen: clients were told to come back, and the platforms failed calls.
    assert sender.retried, "the API never asked a client to retry: the chaos missed the ingest path"
    assert len(chaos_log) == len(CHAOS_PLAN)
    faults = Counter(str(c["status"]) for c in calls if c.get("fault"))
    timeouts = Counter(c["timeout"] for c in calls if c.get("timeout"))
    print(
        f"\nchaos: {LEADS} leads done in {elapsed:.0f}s; {chaos_log}; platform calls {len(calls)}, "
        f"faults injected {dict(faults)}, answers held past the client {dict(timeouts)}; "
        f"client resends {dict(sender.retried)}; hand-offs accepted by reps {len(accepted)}, "
        f"accepted late before their escalation ran {len(misses)}; MQL to the rep's DM: "
        f"p50 {to_rep['p50']:.1f}s, p90 {to_rep['p90']:.1f}s, p99 {to_rep['p99']:.1f}s"
    )
    # Every kind of fault was met, however few leads: 5xx, 429, and answers held past the client
    # (before or after the platform acted).
    assert "429" in faults and {"500", "502", "503"} & set(faults), faults
    assert timeouts, "no answer was held past the client: the chaos missed client timeouts"


async def wait_for_journeys(api: httpx.AsyncClient, engine: Any, leads: list[WorkloadLead]) -> dict[str, Any]:
    flows_query = text("SELECT lead_id, flow FROM data_flows WHERE lead_id = ANY(:ids)")
    handoffs_query = text(
        "SELECT lead_id FROM handoffs WHERE lead_id = ANY(:ids) AND notified_at IS NOT NULL"
    )
    ids = [lead.lead_id for lead in leads]
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        async with engine.connect() as connection:
            flows: dict[str, set[str]] = {}
            for lead_id, flow in (await connection.execute(flows_query, {"ids": ids})).all():
                flows.setdefault(lead_id, set()).add(flow)
            notified = {row[0] for row in (await connection.execute(handoffs_query, {"ids": ids})).all()}
        missing: dict[str, Any] = {}
        for lead in leads:
            lacking = EXPECTED_FLOWS[lead.kind] - flows.get(lead.lead_id, set())
            if lead.kind == "mql" and lead.lead_id not in notified:
                lacking = lacking | {"score_to_sales_alert"}
            if lacking:
                missing[f"{lead.kind} {lead.lead_id}"] = sorted(lacking)
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(2)


async def assert_no_event_lost(api: httpx.AsyncClient, leads: list[WorkloadLead]) -> None:
    """Recorded once each (PostgreSQL's count equals what the API accepted), and each folded into
    the lead's workflow (its counters equal PostgreSQL's)."""
    problems = []
    for lead in leads:
        deadline = time.monotonic() + 60
        while True:
            body = (await api.get(f"/v1/leads/{lead.lead_id}")).json()
            # What the workload sent; the email platform's delivery reports come on top.
            recorded = sum(n for kind, n in body["events"].items() if kind not in PLATFORM_REPORTED)
            folded = (body.get("journey") or {}).get("activity", {}).get("events_by_type", {})
            if recorded == expected_events(lead) and folded == body["events"]:
                break
            if time.monotonic() > deadline:
                problems.append(
                    f"{lead.kind} {lead.lead_id}: accepted {dict(lead.accepted)}, "
                    f"recorded {body['events']}, folded {folded}"
                )
                break
            await asyncio.sleep(0.5)
    assert not problems, problems[:10]


async def assert_every_sla_met_or_escalated(
    api: httpx.AsyncClient, engine: Any, mqls: list[WorkloadLead], asked: dict[str, datetime]
) -> list[str]:
    """Returns the hand-offs accepted past their SLA before the escalation could run."""
    problems: list[str] = []
    misses: list[str] = []
    # A hand-off notified late in the run may still be on its way along the chain.
    deadline = time.monotonic() + (SLA + 3 * STEP).total_seconds() + 30
    for lead in mqls:
        handoff_id = f"handoff-{lead.lead_id}-1"
        while True:
            state = (await api.get(f"/v1/handoffs/{handoff_id}")).json()
            if state["status"] in ("accepted", "queued") or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        async with engine.connect() as connection:
            mql_at = (
                await connection.execute(
                    text("SELECT mql_at FROM handoffs WHERE handoff_id = :id"), {"id": handoff_id}
                )
            ).scalar()
        accepted_at = state.get("accepted_at")
        escalations = [e for e in state["audit"] if "escalat" in e["what"].lower()]
        # In time if the workflow took the acceptance within the SLA, or the rep clicked within
        # it and the chaos held the click up (the hand-off then accepted, not escalated: right).
        clicked = asked.get(handoff_id)
        in_time = accepted_at is not None and (
            datetime.fromisoformat(accepted_at) - mql_at <= SLA
            or (clicked is not None and clicked - mql_at <= SLA)
        )
        late_escalations = [e for e in escalations if datetime.fromisoformat(e["at"]) - mql_at >= SLA]
        queued_at_once = any("no rep available" in e["what"] for e in state["audit"])
        # The rep's click and the SLA's timer reached the run together: taken, the miss on record.
        missed = [e for e in state["audit"] if e["what"].startswith("SLA missed by")]
        if missed:
            misses.append(handoff_id)
        if not in_time and not late_escalations and not queued_at_once and not missed:
            problems.append(f"{handoff_id}: status {state['status']}, audit {state['audit']}")
        if accepted_at is None and state["status"] != "queued":
            problems.append(f"{handoff_id}: neither accepted nor in the team queue: {state['status']}")
    assert not problems, problems[:10]
    return misses


async def assert_no_write_twice(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    calls = (await sandbox.get("/_calls")).json()["calls"]
    writes = [
        c
        for c in calls
        if not c.get("fault") and c.get("status", 500) < 300 and c.get("effect") in ("created", "sent")
    ]
    assert writes, "no writes reached the platforms"
    unkeyed = Counter((c["provider"], c["path"]) for c in writes if not c.get("idempotency_key"))
    assert not unkeyed, f"writes the log cannot tie to a key: {unkeyed}"
    by_key = Counter((c["provider"], c.get("object_type"), c["idempotency_key"]) for c in writes)
    twice = {key: n for key, n in by_key.items() if n > 1}
    assert not twice, f"written more than once: {list(twice.items())[:10]}"
    return calls
