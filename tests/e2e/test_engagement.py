"""Email engagement the platforms report, nothing injected: the welcome email goes out through the
sandbox's Klaviyo, its recipient acts on it (`POST /_engagement`), Klaviyo's events API reports it,
and the engine's poller reads it into the lead: attributed to the step that sent it, scored,
suppressing, counted once, and not lost while the worker is down."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from devstack.stack import DevStack
from tests.helpers.e2e import Body, get_until, next_send_refused, submit_form, wait_for_calls
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

# The dev stack polls Klaviyo every 2 s; three intervals re-read every event at least once.
SEVERAL_POLLS = 6.0


def welcome_sent(calls: list[dict[str, Any]]) -> bool:
    """The welcome step's event reached Klaviyo (the flow that sends its email)."""
    return any(
        c["provider"] == "klaviyo" and c["path"] == "/api/events" and "welcome_1" in str(c["body"])
        for c in calls
    )


async def engage(sandbox: httpx.AsyncClient, email: str, action: str) -> dict[str, Any]:
    response = await sandbox.post(
        "/_engagement", json={"email": email, "action": action, "provider": "klaviyo"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def timeline(api: httpx.AsyncClient, lead_id: str, kinds: set[str], timeout: float = 20.0) -> Body:
    return await get_until(
        api,
        f"/v1/leads/{lead_id}/events?limit=500",
        lambda body: kinds <= {e["type"] for e in body["events"]},
        timeout=timeout,
    )


def of_type(body: Body, kind: str) -> list[dict[str, Any]]:
    return [e for e in body["events"] if e["type"] == kind]


async def test_a_welcome_email_opened_and_clicked_in_klaviyo_scores_the_lead_and_names_its_step(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    lead = await submit_form(api, until=lambda body: bool(body["journey"].get("enrollments")))
    await wait_for_calls(sandbox, lead.email, welcome_sent)
    before = (await api.get(f"/v1/leads/{lead.lead_id}")).json()["journey"]
    opened = await engage(sandbox, lead.email, "open")
    clicked = await engage(sandbox, lead.email, "click")

    body = await timeline(api, lead.lead_id, {"email_opened", "email_clicked"})
    [open_event], [click_event] = of_type(body, "email_opened"), of_type(body, "email_clicked")
    assert click_event["source"] == open_event["source"] == "poll:klaviyo", "its source: how it came in"
    assert click_event["message_id"] == clicked["event_id"] and open_event["message_id"] == opened["event_id"]
    assert click_event["properties"]["attributed_to"] == "sequence"
    assert click_event["properties"]["sequence_id"] == "welcome_nurture"
    assert click_event["properties"]["step_id"] == "welcome"
    assert click_event["properties"]["template_id"] == "welcome_1"
    assert click_event["properties"]["url"].startswith("https://www.example.com/pricing")

    after = await get_until(
        api,
        f"/v1/leads/{lead.lead_id}",
        lambda b: b["journey"]["email_engagement"] >= before["email_engagement"] + 15,
    )
    assert after["journey"]["score"] >= before["score"] + 15, "an open (5) and a click (10) score"

    # The poller re-reads its overlap every interval; each event stays counted once.
    await asyncio.sleep(SEVERAL_POLLS)
    again = (await api.get(f"/v1/leads/{lead.lead_id}/events?limit=500")).json()
    assert len(of_type(again, "email_clicked")) == 1 and len(of_type(again, "email_opened")) == 1
    assert (await api.get(f"/v1/leads/{lead.lead_id}")).json()["journey"]["email_engagement"] == after[
        "journey"
    ]["email_engagement"]


async def test_a_campaign_the_marketer_sent_from_klaviyo_counts_as_the_platforms(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    lead = await submit_form(api, until=lambda body: bool(body["journey"].get("enrollments")))
    await wait_for_calls(sandbox, lead.email, welcome_sent)
    before = (await api.get(f"/v1/leads/{lead.lead_id}")).json()["journey"]
    # After the engine's welcome email, a newsletter from Klaviyo's own UI: the newest message.
    campaign = await sandbox.post("/_campaign", json={"email": lead.email})
    assert campaign.status_code == 200, campaign.text
    clicked = await engage(sandbox, lead.email, "click")
    assert clicked["campaign"] == "Sandbox campaign"

    body = await timeline(api, lead.lead_id, {"email_clicked"})
    [click_event] = of_type(body, "email_clicked")
    assert click_event["message_id"] == clicked["event_id"]
    assert click_event["properties"]["attributed_to"] == "platform", "not the welcome step's"
    assert "sequence_id" not in click_event["properties"]
    await get_until(
        api,
        f"/v1/leads/{lead.lead_id}",
        lambda b: b["journey"]["email_engagement"] >= before["email_engagement"] + 10,
    )


async def test_an_unsubscribe_in_klaviyo_suppresses_every_later_send(
    stack: DevStack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    lead = await submit_form(api, until=lambda body: bool(body["journey"].get("enrollments")))
    await wait_for_calls(sandbox, lead.email, welcome_sent)
    await engage(sandbox, lead.email, "unsubscribe")
    await timeline(api, lead.lead_id, {"email_unsubscribed"})
    await next_send_refused(stack.database_url, lead.lead_id, "after-klaviyo-unsubscribe")


async def test_engagement_while_the_worker_is_down_arrives_once_it_is_back(
    stack: DevStack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    lead = await submit_form(api, until=lambda body: bool(body["journey"].get("enrollments")))
    await wait_for_calls(sandbox, lead.email, welcome_sent)
    first = await engage(sandbox, lead.email, "open")
    await timeline(api, lead.lead_id, {"email_opened"})
    async with stack.worker_down(kill=True):
        clicked = await engage(sandbox, lead.email, "click")
        await asyncio.sleep(3)
    body = await timeline(api, lead.lead_id, {"email_clicked"}, timeout=45)
    assert [e["message_id"] for e in of_type(body, "email_clicked")] == [clicked["event_id"]]

    async def still_once() -> None:
        events = (await api.get(f"/v1/leads/{lead.lead_id}/events?limit=500")).json()
        assert [e["message_id"] for e in of_type(events, "email_opened")] == [first["event_id"]]

    # The restarted poller resumes from its cursor (the open, before the crash, is not read as new).
    await asyncio.sleep(SEVERAL_POLLS)
    await eventually(still_once, timeout=5, what="the open counted once")
