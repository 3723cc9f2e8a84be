"""The one send gate, under the mixed workload: a fifth of the leads cannot be written to (no
marketing consent, unsubscribed, bounced), and the sandbox's log shows no email from any journey
to them after the reason stood: the welcome nurture, the journeys a purchase or the MQL line
start, an ops push through the connector steps. The rest get their mail, so the check can fail; each
refused lead's page says what was refused and why."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest

from bench.workload import KINDS, Sender, new_lead, run_lead
from devstack.stack import DevStack
from tests.helpers.e2e import demo_form, get_until, lead_state
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e


def engine_sends_to(calls: list[dict[str, Any]], email: str) -> list[dict[str, Any]]:
    """The engine's sequence emails to `email` (Klaviyo's send is an event its flow mails from)."""
    return [
        c
        for c in calls
        if c["provider"] == "klaviyo"
        and c["method"] == "POST"
        and c["path"] == "/api/events"
        and email in str(c["body"]).lower()
    ]


async def stop(sender: Sender, user: str, email: str, event: str) -> None:
    """An unsubscribe or a bounce, as a server-side source reports it (Segment's spec events)."""
    await sender.send("POST", "/v1/identify", json_body={"userId": user, "traits": {"email": email}})
    await sender.send(
        "POST", "/v1/track", json_body={"userId": user, "event": event, "messageId": f"{user}-{event}"}
    )


async def test_no_journey_writes_to_a_lead_the_gate_refuses(
    stack: DevStack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    # The workload's own roster is not put: the shared stack's roster stays the seed's.
    key = await api.post("/v1/admin/keys", json={"name": f"gate-{uuid.uuid4().hex[:6]}", "scope": "ingest"})
    sender = Sender(api, key.json()["key"])
    consented = [new_lead(n, KINDS[n % len(KINDS)], tag="gate") for n in range(16)]
    unconsented = [new_lead(100 + n, kind, tag="gate") for n, kind in enumerate(("form", "mql"))]
    bounced, unsubscribed = new_lead(200, "purchase", tag="gate"), new_lead(201, "form", tag="gate")

    # Bounced before it ever filled the form in: nothing may go, not even a customer's service mail.
    await stop(sender, bounced.user, bounced.email, "Email Bounced")
    await lead_state(api, bounced.lead_id, lambda b: b["events"].get("email_bounced") == 1)
    await asyncio.gather(*(run_lead(sender, lead) for lead in [*consented, bounced]))
    for lead in unconsented:
        await sender.send(
            "POST", "/v1/forms/demo/submissions", json_body=demo_form(lead.email, consent=False)
        )
    # Unsubscribed after its welcome email went out: nothing after that.
    await run_lead(sender, unsubscribed)
    await eventually(lambda: _has_sends(sandbox, unsubscribed.email), timeout=40, what="the welcome email")
    await stop(sender, unsubscribed.user, unsubscribed.email, "Unsubscribed")
    body = await lead_state(api, unsubscribed.lead_id, lambda b: b["events"].get("email_unsubscribed") == 1)
    stopped_at = datetime.now(UTC).isoformat()
    # Ops pushes a marketing email to each refused lead by hand: the gate stops those too.
    for lead in [*unconsented, bounced, unsubscribed]:
        pushed = await api.post(
            "/v1/journeys/connector_steps",
            json={
                "lead_id": lead.lead_id,
                "request_id": f"push-{lead.user}",
                "steps": [
                    {
                        "activity": "email.send",
                        "input": {"template_id": "promo_1", "purpose": "marketing"},
                    }
                ],
            },
        )
        assert pushed.status_code in (200, 201, 202), pushed.text

    # The consented leads that only read on got their welcome (a meeting booked, a purchase or
    # the MQL line may end or hold the welcome before it sends): the log is not empty for a
    # reason of its own.
    for email in [lead.email for lead in consented if lead.kind in ("form", "click")]:
        await eventually(partial(_has_sends, sandbox, email), timeout=60, what=email)
    # Each refused lead was asked for and refused, and its page says why.
    reasons: dict[str, set[str]] = {}
    for lead in [*unconsented, bounced, unsubscribed]:
        body = await get_until(api, f"/v1/leads/{lead.lead_id}", lambda b: len(b["sends_refused"]) >= 1, 60)
        reasons[lead.email] = {r["reason"].split(" at ")[0] for r in body["sends_refused"]}
    assert all(reasons[lead.email] == {"no marketing consent"} for lead in unconsented), reasons
    assert reasons[bounced.email] == {"bounced"}, reasons
    assert "unsubscribed" in reasons[unsubscribed.email], reasons

    calls = (await sandbox.get("/_calls")).json()["calls"]
    for lead in [*unconsented, bounced]:
        assert engine_sends_to(calls, lead.email) == [], lead.email
    late = [c for c in engine_sends_to(calls, unsubscribed.email) if c["time"] > stopped_at]
    assert late == [], "nothing after the unsubscribe"


async def _has_sends(sandbox: httpx.AsyncClient, email: str) -> bool:
    calls = (await sandbox.get("/_calls")).json()["calls"]
    return bool(engine_sends_to(calls, email))
