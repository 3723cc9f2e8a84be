"""A rep ruling a lead out in the CRM works as the API's disqualify does, nothing injected: the
rep sets the lead status in HubSpot (its webhook tells the engine) or in Salesforce (the engine's
poll of its changes reads it); the lead is disqualified and its hand-off in flight ends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers.e2e import get_until, lead_state, make_mql, salesforce_session

pytestmark = pytest.mark.e2e

REP = {"Authorization": "Bearer pat-rep-in-the-hubspot-ui"}


async def disqualified_and_closed(api: httpx.AsyncClient, lead_id: str, handoff_id: str) -> dict[str, Any]:
    body = await lead_state(api, lead_id, lambda b: b["journey"]["stage"] == "disqualified", timeout=45)
    await get_until(api, f"/v1/handoffs/{handoff_id}", lambda h: h["status"] not in ("waiting", "queued"))
    return body


async def test_a_rep_ruling_the_lead_out_in_hubspot_disqualifies_it(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    lead, _ = await make_mql(api)
    body = await lead_state(
        api, lead.lead_id, lambda b: b["journey"]["active_handoff"] is not None, timeout=45
    )
    handoff_id = body["journey"]["active_handoff"]
    search = {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": lead.email}]}]
    }
    [contact] = (
        await sandbox.post("/hubspot/crm/v3/objects/contacts/search", headers=REP, json=search)
    ).json()["results"]
    ruled = await sandbox.patch(
        f"/hubspot/crm/v3/objects/contacts/{contact['id']}",
        headers=REP,
        json={"properties": {"hs_lead_status": "UNQUALIFIED"}},
    )
    assert ruled.status_code == 200, ruled.text
    body = await disqualified_and_closed(api, lead.lead_id, handoff_id)
    assert body["journey"]["stage_history"][-1]["reason"] == "hs_lead_status=UNQUALIFIED (hubspot)"


async def test_a_rep_closing_the_lead_unconverted_in_salesforce_disqualifies_it(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, on_salesforce: None
):
    lead, _ = await make_mql(api)
    body = await lead_state(
        api, lead.lead_id, lambda b: b["journey"]["active_handoff"] is not None, timeout=45
    )
    handoff_id = body["journey"]["active_handoff"]
    rep = await salesforce_session(sandbox, "ada@journeys.example")
    found = await sandbox.get(
        "/salesforce/services/data/v62.0/query",
        params={"q": f"SELECT Id FROM Lead WHERE Email = '{lead.email}'"},
        headers=rep,
    )
    [person] = found.json()["records"]
    ruled = await sandbox.patch(
        f"/salesforce/services/data/v62.0/sobjects/Lead/{person['Id']}",
        headers=rep,
        json={"Status": "Closed - Not Converted"},
    )
    assert ruled.status_code == 204, ruled.text
    body = await disqualified_and_closed(api, lead.lead_id, handoff_id)
    assert body["journey"]["stage_history"][-1]["reason"] == "Status=Closed - Not Converted (salesforce)"
