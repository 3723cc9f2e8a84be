"""HubSpot telling the engine what changed: the engine points its app's webhooks at itself through
HubSpot's Webhooks API (checked against HubSpot's published v3 definition), and a change made
through the sandbox HubSpot's CRM API comes to a real HTTP receiver as HubSpot sends it: batched,
signed v3 with the app's secret, in the shape the engine's mapper reads; the engine's own writes
come marked as the app's, and the mapper leaves them out."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from itertools import count

import httpx
import pytest

from cli.hubspot import receiver_url
from domain.events import EventType
from domain.signatures import verify_hubspot_v3
from domain.webhooks import hubspot_events
from platforms.hubspot import WEBHOOK_SUBSCRIPTIONS, HubSpotClient
from platforms.ports import Deal, Person
from sandbox.hubspot_webhooks import SEED_APPS
from tests.helpers.receiver import Receiver, receiver
from tests.helpers.specs import Exchanges, PublishedApi, recorded_sandbox
from tests.helpers.waiting import eventually

APP_ID = "1160452"
SECRET = str(SEED_APPS[APP_ID]["client_secret"])
API = PublishedApi("hubspot/webhooks-v3-cut.json")
_ids = count()


def new_id() -> str:
    return f"e{next(_ids)}"


@pytest.fixture
def engine() -> Iterator[Receiver]:
    with receiver() as box:
        yield box


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[httpx.AsyncClient, Exchanges]]:
    async with recorded_sandbox(seed=31) as exchanged:
        yield exchanged


def client(http: httpx.AsyncClient, token: str = "sandbox-hubspot-token") -> HubSpotClient:
    return HubSpotClient(http, base_url="http://sandbox/hubspot", token=token)


async def connected(http: httpx.AsyncClient, engine: Receiver) -> str:
    target = receiver_url(engine.url, "jrn_ingest_k")
    ids = await client(http).connect_webhooks(APP_ID, target_url=target, subscriptions=WEBHOOK_SUBSCRIPTIONS)
    assert len(set(ids)) == len(WEBHOOK_SUBSCRIPTIONS)
    return target


async def deliveries(engine: Receiver, n: int) -> list:
    async def arrived() -> list:
        assert len(engine.received) >= n, engine.received
        return engine.received

    return await eventually(arrived, timeout=10, what=f"{n} webhook deliveries")


async def test_connecting_is_in_hubspots_published_shape_and_safe_to_repeat(sandbox, engine):
    http, recorded = sandbox
    await connected(http, engine)
    again = await client(http).connect_webhooks(
        APP_ID, target_url=receiver_url(engine.url, "jrn_ingest_k"), subscriptions=WEBHOOK_SUBSCRIPTIONS
    )
    listed = (
        await http.get(f"/hubspot/webhooks/v3/{APP_ID}/subscriptions", headers={"Authorization": "Bearer d"})
    ).json()
    assert sorted(int(r["id"]) for r in listed["results"]) == sorted(again), "no second subscription"
    checked = {
        API.check(r, "/hubspot", "application/json")
        for r in recorded.seen
        if "/webhooks/v3/" in r.request.url.path
    }
    assert checked == {
        "put-/webhooks/v3/{appId}/settings_configure",
        "get-/webhooks/v3/{appId}/subscriptions_getAll",
        "post-/webhooks/v3/{appId}/subscriptions_create",
    }


async def test_a_reps_deal_stage_change_is_delivered_signed_and_maps_to_the_engines_event(sandbox, engine):
    http, _ = sandbox
    target = await connected(http, engine)
    deal = await client(http).upsert_deal(
        Deal(key="handoff-1", name="Example", stage="appointmentscheduled"), idempotency_key="d-1"
    )
    rep = {"Authorization": "Bearer pat-rep-in-the-ui"}
    moved = await http.patch(
        f"/hubspot/crm/v3/objects/deals/{deal.id}",
        headers=rep,
        json={"properties": {"dealstage": "closedwon"}},
    )
    assert moved.status_code == 200, moved.text
    [delivery] = await deliveries(engine, 1)
    verify_hubspot_v3(
        delivery.headers["x-hubspot-signature-v3"],
        delivery.headers["x-hubspot-request-timestamp"],
        method="POST",
        uri=target,
        body=delivery.body,
        client_secret=SECRET,
        now=time.time(),
    )
    [event] = json.loads(delivery.body)
    assert (event["subscriptionType"], event["propertyName"], event["propertyValue"]) == (
        "deal.propertyChange",
        "dealstage",
        "closedwon",
    )
    assert event["changeSource"] == "CRM_UI" and event["objectId"] == int(deal.id)
    [mapped] = hubspot_events(json.loads(delivery.body), datetime.now(UTC), new_id, own_app_id=APP_ID)
    assert (
        mapped.lead_event.type is EventType.DEAL_STAGE_CHANGED
        and mapped.lead_event.properties["stage"] == "closedwon"
    )


async def test_the_engines_own_writes_come_back_as_the_apps_and_are_left_out(sandbox, engine):
    http, _ = sandbox
    await connected(http, engine)
    hubspot = client(http)
    await hubspot.upsert_person(
        Person(email="ada@example-corp.com", lifecycle_stage="lead"), idempotency_key="p-1"
    )
    await hubspot.upsert_person(
        Person(email="ada@example-corp.com", lifecycle_stage="salesqualifiedlead"), idempotency_key="p-2"
    )
    [delivery] = await deliveries(engine, 1)
    [event] = json.loads(delivery.body)
    assert (event["changeSource"], event["sourceId"]) == ("INTEGRATION", APP_ID)
    assert hubspot_events(json.loads(delivery.body), datetime.now(UTC), new_id, own_app_id=APP_ID) == []


async def test_a_rep_working_the_contact_is_an_acceptance_and_an_unsubscribed_change_sends_nothing(
    sandbox, engine
):
    http, _ = sandbox
    await connected(http, engine)
    made = await client(http).upsert_person(Person(email="grace@example-corp.com"), idempotency_key="p-1")
    rep = {"Authorization": "Bearer pat-rep-in-the-ui"}
    await http.patch(
        f"/hubspot/crm/v3/objects/contacts/{made.id}", headers=rep, json={"properties": {"jobtitle": "CTO"}}
    )
    await http.patch(
        f"/hubspot/crm/v3/objects/contacts/{made.id}",
        headers=rep,
        json={"properties": {"hs_lead_status": "IN_PROGRESS"}},
    )
    [delivery] = await deliveries(engine, 1)
    [mapped] = hubspot_events(json.loads(delivery.body), datetime.now(UTC), new_id, own_app_id=APP_ID)
    assert mapped.lead_event.type is EventType.SALES_ACCEPTED
    assert len(engine.received) == 1, "the job title is not subscribed to"
