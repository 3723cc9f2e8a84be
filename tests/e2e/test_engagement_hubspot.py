"""HubSpot's side of the email loop, nothing injected: the worker sends the welcome email through
HubSpot's single-send API (the welcome template is a HubSpot email id), its recipient opens, clicks
and unsubscribes (`POST /_engagement`), HubSpot's Email Events API reports it, and the engine's
HubSpot poller reads it into the lead: attributed to the welcome step, scored, counted once,
suppressing later sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devstack.stack import DevStack
from domain.email_templates import load_email_templates
from tests.helpers.e2e import Body, get_until, next_send_refused, submit_form, wait_for_calls

pytestmark = pytest.mark.e2e

# The dev stack polls every 2 s; three intervals re-read the overlap at least twice.
SEVERAL_POLLS = 6.0


@pytest.fixture
async def on_hubspot_email(stack: DevStack) -> AsyncIterator[None]:
    """The worker sends email through HubSpot for the test, then goes back to the default platform."""
    await stack.restart_worker(kill=False, extra_env={"JOURNEYS_EMAIL_PROVIDER": "hubspot"})
    try:
        yield
    finally:
        await stack.restart_worker(kill=False)


async def engage(sandbox: httpx.AsyncClient, email: str, action: str) -> dict[str, Any]:
    response = await sandbox.post(
        "/_engagement", json={"email": email, "action": action, "provider": "hubspot"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def of_type(body: Body, kind: str) -> list[dict[str, Any]]:
    return [e for e in body["events"] if e["type"] == kind]


async def test_a_welcome_email_sent_through_hubspot_is_opened_clicked_and_unsubscribed_into_the_lead(
    stack: DevStack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, on_hubspot_email: None
):
    email_id = load_email_templates(stack.settings.email_templates_file).hubspot["welcome_1"]
    lead = await submit_form(api, until=lambda body: bool(body["journey"].get("enrollments")), timeout=40)
    await wait_for_calls(
        sandbox,
        lead.email,
        lambda calls: any(
            c["provider"] == "hubspot"
            and c["path"] == "/marketing/v4/email/single-send"
            and c["body"]["emailId"] == email_id
            for c in calls
        ),
        timeout=40,
    )
    before = (await api.get(f"/v1/leads/{lead.lead_id}")).json()["journey"]

    opened = await engage(sandbox, lead.email, "open")
    clicked = await engage(sandbox, lead.email, "click")
    body = await get_until(
        api,
        f"/v1/leads/{lead.lead_id}/events?limit=500",
        lambda b: bool(of_type(b, "email_opened")) and bool(of_type(b, "email_clicked")),
        timeout=30,
    )
    [open_event], [click_event] = of_type(body, "email_opened"), of_type(body, "email_clicked")
    assert open_event["source"] == click_event["source"] == "poll:hubspot"
    assert (open_event["message_id"], click_event["message_id"]) == (opened["event_id"], clicked["event_id"])
    assert click_event["properties"]["attributed_to"] == "sequence"
    assert (click_event["properties"]["sequence_id"], click_event["properties"]["step_id"]) == (
        "welcome_nurture",
        "welcome",
    )
    after = await get_until(
        api,
        f"/v1/leads/{lead.lead_id}",
        lambda b: b["journey"]["email_engagement"] >= before["email_engagement"] + 15,
    )

    # The poller re-reads its overlap every interval; each event stays counted once.
    await asyncio.sleep(SEVERAL_POLLS)
    again = (await api.get(f"/v1/leads/{lead.lead_id}/events?limit=500")).json()
    assert len(of_type(again, "email_opened")) == 1 and len(of_type(again, "email_clicked")) == 1
    assert (await api.get(f"/v1/leads/{lead.lead_id}")).json()["journey"]["email_engagement"] == after[
        "journey"
    ]["email_engagement"]

    await engage(sandbox, lead.email, "unsubscribe")
    await get_until(
        api, f"/v1/leads/{lead.lead_id}/events?limit=500", lambda b: bool(of_type(b, "email_unsubscribed"))
    )
    await next_send_refused(stack.database_url, lead.lead_id, "after-hubspot-unsubscribe")
