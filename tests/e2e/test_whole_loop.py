"""The loop from visitor to customer, nothing injected: the outside world only does what it would.

On HubSpot and Klaviyo: the company is already in HubSpot with its firmographics (made through
HubSpot's API, as an import or a rep would); the lead fills in the demo form with the seed's
required fields (and the consent box); its browser reports its visits and downloads (Segment's
calls); it receives the welcome email through Klaviyo and clicks it (`POST /_engagement`, Klaviyo's
events API reports it); it crosses the seed's MQL line (email engagement >= 70, 3 pieces of
content, 5 sessions, ICP fit from the CRM's firmographics); the company's owner in HubSpot gets the
hand-off by Slack DM; the rep takes the lead in HubSpot (lead status In progress) and later moves
the deal to closed won there; HubSpot's webhooks bring both back, and the customer journey starts.

On Salesforce and Kit the same, the Salesforce changes read by the engine's poll of
`SystemModstamp`, Kit's clicks reported by its per-link webhooks.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devstack.stack import DevStack
from tests.helpers.e2e import (
    HUBSPOT_REP,
    SALESFORCE_DATA,
    browse_then_fill_in,
    get_until,
    hubspot_search,
    lead_state,
    salesforce_session,
    soql,
    wait_for_calls,
)
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

# The sandbox HubSpot's owner 71000003 is chloe.martin@example.com, the roster's `chloe`.
CHLOE_OWNER_ID = "71000003"


async def test_a_visitor_becomes_a_customer_with_only_what_the_platforms_and_the_browser_send(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    domain = f"loopco-{uuid.uuid4().hex[:8]}.com"
    email = f"dana@{domain}"
    anonymous_id = f"anon-{uuid.uuid4().hex[:12]}"
    company = await sandbox.post(
        "/hubspot/crm/v3/objects/companies",
        headers=HUBSPOT_REP,
        json={
            "properties": {
                "name": "LoopCo Software, Inc.",
                "domain": domain,
                "industry": "COMPUTER_SOFTWARE",
                "numberofemployees": "420",
                "country": "United States",
                "hubspot_owner_id": CHLOE_OWNER_ID,
            }
        },
    )
    assert company.status_code == 201, company.text

    # The visitor browses anonymously, then fills in the demo form on the same browser.
    lead_id = await browse_then_fill_in(api, anonymous_id, email, "LoopCo")
    await wait_for_calls(
        sandbox,
        email,
        lambda calls: any(
            c["provider"] == "klaviyo" and c["path"] == "/api/events" and "welcome_1" in str(c["body"])
            for c in calls
        ),
        timeout=40,
    )

    # Seven clicks on the welcome email, read from Klaviyo's events API: 70 points of engagement.
    for _ in range(7):
        clicked = await sandbox.post(
            "/_engagement", json={"email": email, "action": "click", "provider": "klaviyo"}
        )
        assert clicked.status_code == 200, clicked.text
    mql = await lead_state(api, lead_id, lambda b: b["journey"]["stage"] == "mql", timeout=60)
    journey = mql["journey"]
    assert journey["email_engagement"] >= 70 and journey["content_pieces"] >= 3
    assert journey["stage_history"][-1]["reason"].startswith("MQL rule: ")
    assert journey["fit"]["fit"] is True and {"industry", "employees", "country"} <= set(
        journey["fit"]["matched"]
    )

    # The company's owner gets the hand-off, by Slack DM.
    body = await lead_state(api, lead_id, lambda b: b["journey"]["active_handoff"] is not None, timeout=45)
    handoff_id = body["journey"]["active_handoff"]
    handoff = await get_until(api, f"/v1/handoffs/{handoff_id}", lambda h: bool(h.get("assignment")))
    assert handoff["assignment"]["rep_id"] == "chloe", handoff["assignment"]

    async def dm() -> dict[str, Any]:
        calls = (await sandbox.get("/_calls")).json()["calls"]
        posts = [
            c
            for c in calls
            if c["provider"] == "slack"
            and handoff_id in str(c["body"])
            and str(c["body"].get("channel", "")).startswith("D")
        ]
        assert posts, "no DM for the hand-off"
        return posts[0]

    await eventually(dm, timeout=30, what="the rep's DM")

    # The rep takes the lead in HubSpot: HubSpot's webhook makes it an SQL, and the engine's deal appears.
    [contact] = await hubspot_search(sandbox, "contacts", "email", email)
    taken = await sandbox.patch(
        f"/hubspot/crm/v3/objects/contacts/{contact['id']}",
        headers=HUBSPOT_REP,
        json={"properties": {"hs_lead_status": "IN_PROGRESS"}},
    )
    assert taken.status_code == 200, taken.text
    await lead_state(api, lead_id, lambda b: b["journey"]["stage"] == "sql", timeout=45)

    async def the_deal() -> dict[str, Any]:
        [deal] = await hubspot_search(sandbox, "deals", "journeys_deal_key", handoff_id)
        return deal

    deal = await eventually(the_deal, timeout=30, what="the hand-off's deal in HubSpot")
    won = await sandbox.patch(
        f"/hubspot/crm/v3/objects/deals/{deal['id']}",
        headers=HUBSPOT_REP,
        json={"properties": {"dealstage": "closedwon"}},
    )
    assert won.status_code == 200, won.text
    await lead_state(api, lead_id, lambda b: b["journey"]["stage"] == "customer", timeout=45)
    timeline = (await api.get(f"/v1/leads/{lead_id}/events?limit=500")).json()["events"]
    by_type = {(e["type"], e["source"]) for e in timeline}
    assert ("email_clicked", "poll:klaviyo") in by_type, "the clicks came from Klaviyo's events API"
    assert ("sales_accepted", "webhook:hubspot") in by_type and (
        "deal_stage_changed",
        "webhook:hubspot",
    ) in by_type


# -- Salesforce and Kit ------------------------------------------------------------------------------

SOBJECTS = f"{SALESFORCE_DATA}/sobjects"


@pytest.fixture
async def on_salesforce_and_kit(stack: DevStack) -> AsyncIterator[None]:
    """The worker runs on Salesforce and Kit for the test, then on the default platforms again."""
    env = {"JOURNEYS_CRM_PROVIDER": "salesforce", "JOURNEYS_EMAIL_PROVIDER": "kit"}
    await stack.restart_worker(kill=False, extra_env=env)
    try:
        yield
    finally:
        await stack.restart_worker(kill=False)


async def test_a_visitor_becomes_a_customer_on_salesforce_and_kit_with_nothing_injected(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, on_salesforce_and_kit: None
):
    domain = f"sfloop-{uuid.uuid4().hex[:8]}.com"
    email = f"lee@{domain}"
    anonymous_id = f"anon-{uuid.uuid4().hex[:12]}"
    chloe = await salesforce_session(sandbox, "chloe.martin@example.com")
    [chloe_user] = await soql(
        sandbox, chloe, "SELECT Id FROM User WHERE Username = 'chloe.martin@example.com'"
    )
    account = await sandbox.post(
        f"{SOBJECTS}/Account",
        headers=chloe,
        json={
            "Name": "SF Loop Software GmbH",
            "Website": f"https://www.{domain}/",
            "Industry": "Software",
            "NumberOfEmployees": 420,
            "BillingCountry": "United States",
            "OwnerId": chloe_user["Id"],
        },
    )
    assert account.status_code == 201, account.text

    lead_id = await browse_then_fill_in(api, anonymous_id, email, "SF Loop")
    await wait_for_calls(
        sandbox,
        email,
        lambda calls: any(
            c["provider"] == "kit" and "/v4/sequences/" in c["path"] and c["status"] == 201 for c in calls
        ),
        timeout=40,
    )

    # Seven links of the welcome email clicked: Kit reports each through its link's webhook.
    for _ in range(7):
        clicked = await sandbox.post(
            "/_engagement", json={"email": email, "action": "click", "provider": "kit"}
        )
        assert clicked.status_code == 200 and [d["status"] for d in clicked.json()["deliveries"]] == [200], (
            clicked.text
        )
    mql = await lead_state(api, lead_id, lambda b: b["journey"]["stage"] == "mql", timeout=60)
    assert mql["journey"]["fit"]["fit"] is True and mql["journey"]["email_engagement"] >= 70

    body = await lead_state(api, lead_id, lambda b: b["journey"]["active_handoff"] is not None, timeout=45)
    handoff_id = body["journey"]["active_handoff"]
    handoff = await get_until(api, f"/v1/handoffs/{handoff_id}", lambda h: bool(h.get("assignment")))
    assert handoff["assignment"]["rep_id"] == "chloe", "the account's owner in Salesforce"

    # Chloe works the lead in Salesforce; the engine's poll of Salesforce's changes makes it an SQL.
    [person] = await soql(sandbox, chloe, f"SELECT Id FROM Lead WHERE Email = '{email}'")
    worked = await sandbox.patch(
        f"{SOBJECTS}/Lead/{person['Id']}", headers=chloe, json={"Status": "Working - Contacted"}
    )
    assert worked.status_code == 204, worked.text
    await lead_state(api, lead_id, lambda b: b["journey"]["stage"] == "sql", timeout=45)

    async def the_opportunity() -> dict[str, Any]:
        [opportunity] = await soql(
            sandbox, chloe, f"SELECT Id FROM Opportunity WHERE Journeys_Deal_Key__c = '{handoff_id}'"
        )
        return opportunity

    opportunity = await eventually(
        the_opportunity, timeout=30, what="the hand-off's opportunity in Salesforce"
    )
    won = await sandbox.patch(
        f"{SOBJECTS}/Opportunity/{opportunity['Id']}", headers=chloe, json={"StageName": "Closed Won"}
    )
    assert won.status_code == 204, won.text
    await lead_state(api, lead_id, lambda b: b["journey"]["stage"] == "customer", timeout=45)
    timeline = (await api.get(f"/v1/leads/{lead_id}/events?limit=500")).json()["events"]
    by_type = {(e["type"], e["source"]) for e in timeline}
    assert ("email_clicked", "webhook:kit") in by_type
    assert ("sales_accepted", "poll:salesforce") in by_type and (
        "deal_stage_changed",
        "poll:salesforce",
    ) in by_type
