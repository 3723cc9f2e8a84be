"""The HubSpot CRM client and the sandbox's HubSpot, checked against HubSpot's published OpenAPI
documents for CRM contacts, companies and deals v3 (cuts in `tests/specs/hubspot/`)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from platforms.hubspot import HubSpotClient
from platforms.ports import Company, Deal, EmailMessage, Person
from tests.helpers.specs import PublishedApi, recorded_sandbox

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
    async with recorded_sandbox(seed=13) as (http, recorded):
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


EMAIL_EVENTS = PublishedApi("hubspot/email-events-v1-transcribed.json")


async def test_email_events_reads_and_answers_are_in_hubspots_documented_shape(exchanges):
    client, recorded = exchanges
    http = client._http
    start = datetime.now(UTC) - timedelta(seconds=1)
    await client.upsert_person(Person(email="ada@example-corp.com"), idempotency_key="p-1")
    await client.send_email(
        EmailMessage(to="ada@example-corp.com", template_id="4401", variables={}), idempotency_key="s-1"
    )
    for action in ("open", "click", "bounce", "spam", "unsubscribe"):
        answer = await http.post("/_engagement", json={"email": "ada@example-corp.com", "action": action})
        assert answer.status_code == 200, answer.text
    page = await client.email_events_page(start=start, end=datetime.now(UTC) + timedelta(seconds=1))
    assert {e["type"] for e in page["events"]} == {
        "SENT",
        "DELIVERED",
        "OPEN",
        "CLICK",
        "BOUNCE",
        "SPAMREPORT",
        "STATUSCHANGE",
    }
    reads = [r for r in recorded.seen if r.request.url.path == f"{PREFIX}/email/public/v1/events"]
    assert {EMAIL_EVENTS.check(r, PREFIX, "application/json") for r in reads} == {"getEmailEvents"}
    documented = {
        p["name"] for p in EMAIL_EVENTS.operation("GET", "/email/public/v1/events")[1]["parameters"]
    }
    for read in reads:
        assert set(read.request.url.params) <= documented, "the client asks only what the API takes"


ACTIVITIES = PublishedApi("hubspot/tasks-v3-cut.json", "hubspot/calls-v3-cut.json")


async def test_the_reads_of_reps_tasks_and_calls_are_in_hubspots_published_shape(exchanges):
    """The poll's searches: every field as the published definition has it, except `sorts`, which
    it types as strings and HubSpot's own guides (and the client) send as objects."""
    client, recorded = exchanges
    contact = await client.upsert_person(Person(email="ada@example-corp.com"), idempotency_key="p-1")
    since = datetime.now(UTC) - timedelta(seconds=1)
    logged = await client._http.post(
        f"{PREFIX}/crm/v3/objects/calls",
        headers={"Authorization": "Bearer pat-rep"},
        json={
            "properties": {"hs_timestamp": "2026-12-04T12:00:00Z", "hs_call_status": "COMPLETED"},
            "associations": [
                {
                    "to": {"id": contact.id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
                }
            ],
        },
    )
    assert logged.status_code == 201, logged.text
    assert await client.completed_since("tasks", since) == []
    [call] = await client.completed_since("calls", since)
    assert await client.contacts_of("calls", str(call["id"])) == [contact.id]
    searches = [r for r in recorded.seen if r.request.url.path.endswith(("/tasks/search", "/calls/search"))]
    assert len(searches) == 2
    for search in searches:
        path = search.request.url.path.removeprefix(PREFIX)
        index, operation = ACTIVITIES.operation("POST", path)
        body = json.loads(search.request.content)
        assert body["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
        published = {**body, "sorts": ["hs_lastmodifieddate"], "after": ""}
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        ACTIVITIES.validate(index, schema, published, f"the client's search of {path}")
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        # HubSpot answers a requested property without a value as null, which the published
        # definition (strings only) leaves out: checked without those.
        found = search.json()
        for result in found["results"]:
            result["properties"] = {k: v for k, v in result["properties"].items() if v is not None}
        ACTIVITIES.validate(index, answer, found, f"the sandbox's answer to {path}")
