"""A lead's company data without asking the lead, nothing injected: the company already exists in
the CRM with its firmographics (made through the CRM's own API, as a rep or an import would), the
lead fills in the demo form with only the seed's required fields, and the engine matches it to
that company by its email's domain, reads the firmographics, and assesses its ICP fit from them."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.helpers.e2e import get_until, lead_state, make_mql

pytestmark = pytest.mark.e2e

HUBSPOT = {"Authorization": "Bearer pat-rep-import"}


async def test_a_lead_with_only_the_required_fields_gets_its_crm_companys_firmographics_and_fits(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    domain = f"fitco-{uuid.uuid4().hex[:8]}.com"
    company = await sandbox.post(
        "/hubspot/crm/v3/objects/companies",
        headers=HUBSPOT,
        json={
            "properties": {
                "name": "FitCo Software, Inc.",
                "domain": domain,
                "industry": "COMPUTER_SOFTWARE",
                "numberofemployees": "420",
                "country": "United States",
                "hubspot_owner_id": "71000001",
            }
        },
    )
    assert company.status_code == 201, company.text
    form = {
        "email": f"dana@{domain}",
        "company": "FitCo",
        "job_title": "VP Engineering",
        "lead_source": "webinar",
    }
    submitted = await api.post("/v1/forms/demo/submissions", json=form)
    assert submitted.status_code == 202, submitted.text
    lead_id = submitted.json()["lead_id"]

    body = await get_until(
        api,
        f"/v1/leads/{lead_id}",
        lambda b: bool(b.get("account")) and b["journey"].get("fit") is not None,
        timeout=30,
    )
    account = body["account"]
    assert account["account_id"] == f"hubspot:{company.json()['id']}"
    traits = account["traits"]
    assert (traits["industry"], traits["employees"], traits["country"]) == ("computer software", 420, "US")
    assert traits["owner_id"] == "71000001" and traits["source"] == "crm"
    match = body["profile"]["traits"]["account_match"]
    assert (match["by"], match["reason"]) == ("domain", f"email domain {domain}")
    fit = body["journey"]["fit"]
    assert fit["fit"] is True, fit
    assert {"industry", "employees", "country", "seniority"} <= set(fit["matched"])


async def test_the_crm_owner_of_the_leads_company_gets_its_hand_off(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
):
    # Owner 71000003 in the sandbox's HubSpot is chloe.martin@example.com, the roster's `chloe`.
    domain = f"ownedco-{uuid.uuid4().hex[:8]}.com"
    company = await sandbox.post(
        "/hubspot/crm/v3/objects/companies",
        headers=HUBSPOT,
        json={"properties": {"name": "OwnedCo", "domain": domain, "hubspot_owner_id": "71000003"}},
    )
    assert company.status_code == 201, company.text
    lead, _ = await make_mql(api, f"sam@{domain}")
    body = await lead_state(
        api, lead.lead_id, lambda s: s["journey"]["active_handoff"] is not None, timeout=45
    )
    handoff = await get_until(
        api, f"/v1/handoffs/{body['journey']['active_handoff']}", lambda h: bool(h.get("assignment"))
    )
    assert handoff["assignment"]["rep_id"] == "chloe", handoff["assignment"]
    assert "account owner" in handoff["assignment"]["reason"]
    assert (await api.get(f"/v1/leads/{lead.lead_id}")).json()["account"]["traits"]["owner_id"] == "71000003"
