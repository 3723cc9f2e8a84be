"""Kit's side of the email loop, nothing injected: `dev` connected the sandbox's Kit to the API
through Kit's own webhook APIs (it made the secret), the worker sends the welcome email through
Kit (the welcome template is a Kit sequence), its recipient clicks and unsubscribes
(`POST /_engagement`), and Kit's webhooks (the link's legacy click hook, the signed endpoint)
bring both to the lead: attributed to the welcome step, scored, suppressing later sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devstack.stack import DevStack
from domain.email_templates import load_email_templates
from tests.helpers.e2e import Body, get_until, next_send_refused, submit_form, wait_for_calls

pytestmark = pytest.mark.e2e


@pytest.fixture
async def on_kit(stack: DevStack) -> AsyncIterator[None]:
    """The worker sends email through Kit for the test, then goes back to the default platform."""
    await stack.restart_worker(kill=False, extra_env={"JOURNEYS_EMAIL_PROVIDER": "kit"})
    try:
        yield
    finally:
        await stack.restart_worker(kill=False)


def welcome_sequence(stack: DevStack) -> str:
    target = load_email_templates(stack.settings.email_templates_file).kit["welcome_1"]
    return target.removeprefix("sequence:")


async def engage(sandbox: httpx.AsyncClient, email: str, action: str) -> dict[str, Any]:
    response = await sandbox.post("/_engagement", json={"email": email, "action": action, "provider": "kit"})
    assert response.status_code == 200, response.text
    reported = dict(response.json())
    assert [d["status"] for d in reported["deliveries"]] == [200], "Kit's webhook reached the API"
    return reported


def of_type(body: Body, kind: str) -> list[dict[str, Any]]:
    return [e for e in body["events"] if e["type"] == kind]


async def test_a_welcome_email_sent_through_kit_is_clicked_and_unsubscribed_and_both_reach_the_lead(
    stack: DevStack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, on_kit: None
):
    sequence = welcome_sequence(stack)
    lead = await submit_form(api, until=lambda body: bool(body["journey"].get("enrollments")), timeout=40)
    await wait_for_calls(
        sandbox,
        lead.email,
        lambda calls: any(
            c["provider"] == "kit"
            and c["path"] == f"/v4/sequences/{sequence}/subscribers"
            and c["status"] == 201
            for c in calls
        ),
        timeout=40,
    )
    before = (await api.get(f"/v1/leads/{lead.lead_id}")).json()["journey"]

    await engage(sandbox, lead.email, "click")
    body = await get_until(
        api,
        f"/v1/leads/{lead.lead_id}/events?limit=500",
        lambda b: bool(of_type(b, "email_clicked")),
    )
    [click] = of_type(body, "email_clicked")
    assert click["source"] == "webhook:kit"
    assert click["properties"]["attributed_to"] == "sequence"
    assert (click["properties"]["sequence_id"], click["properties"]["step_id"]) == (
        "welcome_nurture",
        "welcome",
    )
    await get_until(
        api,
        f"/v1/leads/{lead.lead_id}",
        lambda b: b["journey"]["email_engagement"] >= before["email_engagement"] + 10,
    )

    unsubscribed = await engage(sandbox, lead.email, "unsubscribe")
    body = await get_until(
        api,
        f"/v1/leads/{lead.lead_id}/events?limit=500",
        lambda b: bool(of_type(b, "email_unsubscribed")),
    )
    [unsubscribe] = of_type(body, "email_unsubscribed")
    assert unsubscribe["source"] == "webhook:kit" and unsubscribe["message_id"] == unsubscribed["event_id"]
    await next_send_refused(stack.database_url, lead.lead_id, "after-kit-unsubscribe")
