"""The HubSpot CRM client and the sandbox's HubSpot, checked against HubSpot's published OpenAPI
documents for CRM contacts, companies and deals v3 (cuts in `tests/specs/hubspot/`)."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from platforms.hubspot import HubSpotClient
from platforms.ports import Company, Deal, Person
from sandbox.app import create_app
from tests.helpers.specs import Exchanges, PublishedApi

# HubSpot's deals document spells the object type by its id.
API = PublishedApi(
    "hubspot/contacts-v3-cut.json",
    "hubspot/companies-v3-cut.json",
    "hubspot/deals-v3-cut.json",
    aliases={"/crm/v3/objects/deals/": "/crm/v3/objects/0-3/"},
)
PREFIX = "/hubspot"


@pytest.fixture
async def exchanges():
    recorded = Exchanges()
    transport = httpx.ASGITransport(app=create_app(seed=13))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox", event_hooks={"response": [recorded.record]}
    ) as http:
        yield HubSpotClient(http, base_url=f"http://sandbox{PREFIX}", token="pat-test"), recorded


async def test_crm_requests_and_answers_are_in_hubspots_published_shape(exchanges):
    client, recorded = exchanges
    person = Person(
        email="ada@example-corp.com",
        first_name="Ada",
        last_name="Lovelace",
        company="Example Corp",
        job_title="VP Engineering",
        lead_source="webinar",
    )
    await client.upsert_person(person, idempotency_key="k-1")
    await client.upsert_contact("ada@example-corp.com", {"lifecyclestage": "mql", "hs_lead_status": "NEW"})
    company = Company(domain="example-corp.com", name="Example Corp", industry="Software", employees=250)
    await client.upsert_company(company, idempotency_key="k-2")
    deal = Deal(key="handoff-1", name="Example Corp", stage="appointmentscheduled", amount=24000.5)
    await client.upsert_deal(deal.model_copy(update={"close_date": date(2027, 1, 31)}), idempotency_key="k-3")
    checked = {
        API.check(response, PREFIX, "application/json")
        for response in recorded.seen
        if response.request.url.path.startswith(f"{PREFIX}/crm/v3/objects/")
    }
    assert checked >= {
        "post-/crm/v3/objects/contacts/batch/upsert_upsert",
        "post-/crm/v3/objects/companies/batch/upsert_upsert",
        "post-/crm/v3/objects/0-3/batch/upsert_upsert",
    }, checked
