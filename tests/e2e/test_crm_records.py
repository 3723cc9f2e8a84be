"""What reps and managers do to a person's record in the CRM reaches the lead, nothing injected:
a call logged (the hand-off in flight is taken), the record given to another rep (the lead is
theirs), the deal lost (the lead goes back to marketing), duplicates merged (two leads are one),
the record deleted (the engine stops writing it). Salesforce reports each to the engine's poll
(field history, closed tasks, the recycle bin); HubSpot by webhook, and tasks and calls to its
CRM search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.helpers.e2e import (
    HUBSPOT_REP,
    SALESFORCE_DATA,
    get_until,
    hubspot_search,
    lead_state,
    make_mql,
    salesforce_session,
    soql,
    submit_form,
)

pytestmark = pytest.mark.e2e

SOBJECTS = f"{SALESFORCE_DATA}/sobjects"
HUBSPOT = "/hubspot/crm/v3/objects"
# The sandbox CRMs' Chloe Martin is the roster's `chloe` (config/roster.toml).
CHLOE = "chloe.martin@example.com"
CHLOE_HUBSPOT_OWNER = "71000003"


def journey_of(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body["journey"])


def settled_in_the_crm(identity: str) -> Callable[[dict[str, Any]], bool]:
    """The lead has its CRM record and the CRM has its latest score. (A push still in flight
    when a rep merges or deletes the record makes it again: the engine hears of it at its next
    poll or webhook, after the push; see docs/operations.md.)"""

    def settled(body: dict[str, Any]) -> bool:
        journey = journey_of(body)
        pushed = f"{journey['stage']}:{journey['score']}:{journey['score_band']}"
        return (
            bool(body["identities"].get(identity))
            and journey["fit"] is not None
            and journey["pushed"] == pushed
        )

    return settled


async def accepted_in_the_crm(api: httpx.AsyncClient, handoff_id: str, detail: str) -> dict[str, Any]:
    handoff = await get_until(api, f"/v1/handoffs/{handoff_id}", lambda h: h["status"] == "accepted", 45)
    assert any(detail in entry["what"] for entry in handoff["audit"]), handoff["audit"]
    return handoff


async def test_what_reps_do_in_salesforce_reaches_the_lead(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, on_salesforce: None
):
    lead, _ = await make_mql(api)
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["active_handoff"], timeout=45)
    handoff_id = journey_of(body)["active_handoff"]
    chloe = await salesforce_session(sandbox, CHLOE)
    [person] = await soql(sandbox, chloe, f"SELECT Id FROM Lead WHERE Email = '{lead.email}'")
    [chloe_user] = await soql(sandbox, chloe, f"SELECT Id FROM User WHERE Username = '{CHLOE}'")

    # A call logged on the lead: a rep is working it, so the hand-off is taken.
    logged = await sandbox.post(
        f"{SOBJECTS}/Task",
        headers=chloe,
        json={
            "WhoId": person["Id"],
            "Subject": "Discovery call",
            "TaskSubtype": "Call",
            "Status": "Completed",
            "CallType": "Outbound",
            "CallDurationInSeconds": 600,
        },
    )
    assert logged.status_code == 201, logged.text
    await accepted_in_the_crm(api, handoff_id, "call logged (salesforce)")
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["stage"] == "sql", timeout=60)

    # A manager gives the lead to Chloe: the lead is hers.
    manager = await salesforce_session(sandbox, "ada@journeys.example")
    moved = await sandbox.patch(
        f"{SOBJECTS}/Lead/{person['Id']}", headers=manager, json={"OwnerId": chloe_user["Id"]}
    )
    assert moved.status_code == 204, moved.text
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["owner"] == "chloe", timeout=60)
    assert journey_of(body)["owner_crm_id"] == chloe_user["Id"]

    # The deal is lost: the lead goes back to marketing, its score started over.
    [deal_id] = body["identities"]["salesforce_deal"]
    lost = await sandbox.patch(
        f"{SOBJECTS}/Opportunity/{deal_id}", headers=chloe, json={"StageName": "Closed Lost"}
    )
    assert lost.status_code == 204, lost.text
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["stage"] == "recycled", timeout=60)
    assert journey_of(body)["stage_history"][-1]["reason"] == "deal lost (salesforce)"

    # The same person came in again under another address; Chloe merges the duplicate into hers.
    twin = await submit_form(api, until=settled_in_the_crm("salesforce_contact"), timeout=60)
    [duplicate] = await soql(sandbox, chloe, f"SELECT Id FROM Lead WHERE Email = '{twin.email}'")
    merged = await sandbox.post(
        "/_salesforce/merge",
        json={
            "sobject": "Lead",
            "master_id": person["Id"],
            "merged_ids": [duplicate["Id"]],
            "username": CHLOE,
        },
    )
    assert merged.status_code == 200, merged.text
    gone = await get_until(api, f"/v1/leads/{twin.lead_id}", lambda b: b["merged_into"] == lead.lead_id, 60)
    assert gone["merged_into"] == lead.lead_id
    body = await lead_state(
        api,
        lead.lead_id,
        lambda b: (
            twin.email in str(b["identities"].get("email")) and settled_in_the_crm("salesforce_contact")(b)
        ),
        30,
    )
    assert body["identities"]["salesforce_contact"] == [person["Id"]], "the record merged away is unlinked"

    # Chloe deletes the record: the engine does not make it again.
    deleted = await sandbox.delete(f"{SOBJECTS}/Lead/{person['Id']}", headers=chloe)
    assert deleted.status_code == 204, deleted.text
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["crm_deleted"], timeout=60)
    assert journey_of(body)["crm_contact_id"] is None
    assert "salesforce_contact" not in body["identities"]


async def test_what_reps_do_in_hubspot_reaches_the_lead(api: httpx.AsyncClient, sandbox: httpx.AsyncClient):
    lead, _ = await make_mql(api)
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["active_handoff"], timeout=45)
    handoff_id = journey_of(body)["active_handoff"]
    [contact] = await hubspot_search(sandbox, "contacts", "email", lead.email)

    # A call logged on the contact: the hand-off is taken (read through HubSpot's CRM search).
    logged = await sandbox.post(
        f"{HUBSPOT}/calls",
        headers=HUBSPOT_REP,
        json={
            "properties": {
                "hs_timestamp": "2026-12-04T12:00:00Z",
                "hs_call_status": "COMPLETED",
                "hs_call_direction": "OUTBOUND",
                "hs_call_duration": "600000",
                "hubspot_owner_id": CHLOE_HUBSPOT_OWNER,
            },
            "associations": [
                {
                    "to": {"id": contact["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
                }
            ],
        },
    )
    assert logged.status_code == 201, logged.text
    await accepted_in_the_crm(api, handoff_id, "call logged (hubspot)")
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["stage"] == "sql", timeout=60)

    # The contact is given to Chloe in HubSpot (its webhook tells the engine).
    moved = await sandbox.patch(
        f"{HUBSPOT}/contacts/{contact['id']}",
        headers=HUBSPOT_REP,
        json={"properties": {"hubspot_owner_id": CHLOE_HUBSPOT_OWNER}},
    )
    assert moved.status_code == 200, moved.text
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["owner"] == "chloe", timeout=60)
    assert journey_of(body)["owner_crm_id"] == CHLOE_HUBSPOT_OWNER

    # The deal is lost.
    [deal_id] = body["identities"]["hubspot_deal"]
    lost = await sandbox.patch(
        f"{HUBSPOT}/deals/{deal_id}", headers=HUBSPOT_REP, json={"properties": {"dealstage": "closedlost"}}
    )
    assert lost.status_code == 200, lost.text
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["stage"] == "recycled", timeout=60)
    assert journey_of(body)["stage_history"][-1]["reason"] == "deal lost (hubspot)"

    # A duplicate merged into the contact: two leads are one.
    twin = await submit_form(api, until=settled_in_the_crm("hubspot_contact"), timeout=60)
    [duplicate] = await hubspot_search(sandbox, "contacts", "email", twin.email)
    merged = await sandbox.post(
        f"{HUBSPOT}/contacts/merge",
        headers=HUBSPOT_REP,
        json={"primaryObjectId": contact["id"], "objectIdToMerge": duplicate["id"]},
    )
    assert merged.status_code == 200, merged.text
    kept = str(merged.json()["id"])
    gone = await get_until(api, f"/v1/leads/{twin.lead_id}", lambda b: b["merged_into"] == lead.lead_id, 60)
    assert gone["merged_into"] == lead.lead_id
    body = await lead_state(
        api,
        lead.lead_id,
        lambda b: journey_of(b)["crm_contact_id"] == kept and settled_in_the_crm("hubspot_contact")(b),
        30,
    )
    assert body["identities"]["hubspot_contact"] == [kept], "the record merged away is unlinked"

    # The contact is deleted: the engine does not make it again.
    deleted = await sandbox.delete(f"{HUBSPOT}/contacts/{kept}", headers=HUBSPOT_REP)
    assert deleted.status_code == 204, deleted.text
    body = await lead_state(api, lead.lead_id, lambda b: journey_of(b)["crm_deleted"], timeout=60)
    assert "hubspot_contact" not in body["identities"]
