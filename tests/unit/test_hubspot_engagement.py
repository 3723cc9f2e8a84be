"""HubSpot's marketing email events: the sandbox's HubSpot records them for every email it sends
and every action its recipient takes, the client reads them from the legacy Email Events API, the
mapper keeps the engagement, and the poll reads a window page by page without ever skipping the
older events of a window it had to stop in (HubSpot serves events newest first)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

import platforms.hubspot as hubspot_module
from activities.engagement import EngagementActivities
from domain.engagement import PollCursor, hubspot_email_engagement
from domain.events import EventType, IncomingEvent
from domain.webhooks import PayloadError
from platforms.hubspot import HubSpotClient
from platforms.ports import EmailMessage, Person
from sandbox.app import create_app
from tests.helpers.ingest import RecordingIngest

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
_ids = itertools.count()


def new_id() -> str:
    return f"e{next(_ids)}"


def event(kind: str, event_id: str = "ev-1", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "created": int(T0.timestamp() * 1000),
        "type": kind,
        "recipient": "Ada@Example-Corp.com",
        "portalId": 62515,
        "appId": 113,
        "appName": "Single send",
        "emailCampaignId": 30210001,
        "sentBy": {"id": "sent-1", "created": int(T0.timestamp() * 1000) - 5},
        **extra,
    }


def mapped(*events: dict[str, Any]) -> list[IncomingEvent]:
    found, _ = hubspot_email_engagement({"hasMore": False, "events": list(events)}, T0, new_id)
    return found


@pytest.mark.parametrize(
    ("item", "kind"),
    [
        (event("DELIVERED"), EventType.EMAIL_DELIVERED),
        (event("OPEN"), EventType.EMAIL_OPENED),
        (event("CLICK", url="https://www.example.com/pricing"), EventType.EMAIL_CLICKED),
        (event("BOUNCE", category="HARD_BOUNCE"), EventType.EMAIL_BOUNCED),
        (event("SPAMREPORT"), EventType.EMAIL_SPAM_COMPLAINT),
        (event("STATUSCHANGE", portalSubscriptionStatus="UNSUBSCRIBED"), EventType.EMAIL_UNSUBSCRIBED),
        (
            event("STATUSCHANGE", subscriptions=[{"id": "1001", "status": "UNSUBSCRIBED"}]),
            EventType.EMAIL_UNSUBSCRIBED,
        ),
    ],
)
def test_each_engagement_type_maps_under_hubspots_event_id(item, kind):
    [found] = mapped(item)
    assert found.lead_event.type is kind and found.source == "poll:hubspot" and found.message_id == "ev-1"
    assert found.email == "ada@example-corp.com"
    assert found.lead_event.occurred_at == T0
    assert found.lead_event.properties["email_campaign_id"] == "30210001"
    assert "campaign" not in found.lead_event.properties, "a single send is the engine's, not a campaign"


@pytest.mark.parametrize(
    "item",
    [
        event("SENT"),
        event("PROCESSED"),
        event("DEFERRED"),
        event("BOUNCE", category="SOFT_BOUNCE"),
        event("STATUSCHANGE", portalSubscriptionStatus="SUBSCRIBED", subscriptions=[]),
        event("FORWARD"),
    ],
)
def test_what_is_not_engagement_is_left_out_but_moves_the_cursor(item):
    found, read = hubspot_email_engagement({"events": [item]}, T0, new_id)
    assert found == [] and read == [("ev-1", T0)]


def test_a_bulk_email_from_hubspots_ui_is_a_campaign_of_the_platform():
    [found] = mapped(event("CLICK", appName="Batch", appId=0))
    assert found.lead_event.properties["campaign"] == "30210001"


@pytest.mark.parametrize(
    ("page", "field"),
    [
        ({"hasMore": False}, "events"),
        ({"events": [{"type": "OPEN"}]}, "events.0.id"),
        ({"events": [event("OPEN", created="yesterday")]}, "events[].created"),
        ({"events": [event("OPEN", recipient=None)]}, "events.0.recipient"),
    ],
)
def test_a_page_not_in_hubspots_shape_names_the_field(page, field):
    with pytest.raises(PayloadError) as raised:
        hubspot_email_engagement(page, T0, new_id)
    assert raised.value.field == field


def test_an_unfinished_window_keeps_since_and_a_finished_one_moves_it():
    cursor = PollCursor(since=T0)
    later = T0 + timedelta(minutes=5)
    first, fresh = cursor.in_window([("b", later)], timedelta(minutes=2), later, page="p2")
    assert fresh == {"b"} and first.since == T0 and first.window_to == later and first.page == "p2"
    done, fresh = first.in_window([("a", T0 + timedelta(minutes=1))], timedelta(minutes=2), later, None)
    assert fresh == {"a"} and done.since == later and done.window_to is None and done.page is None
    assert set(done.recent) == {"b"}, "only the ids within the overlap before the newest are kept"
    again, fresh = done.in_window([("b", later)], timedelta(minutes=2), later + timedelta(minutes=1), None)
    assert fresh == set() and again.since == later


# -- against the sandbox's HubSpot, in process ---------------------------------------------------


@pytest.fixture
async def hubspot() -> AsyncIterator[tuple[httpx.AsyncClient, HubSpotClient]]:
    transport = httpx.ASGITransport(app=create_app(seed=7))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield (
            http,
            HubSpotClient(
                http, base_url="http://sandbox/hubspot", token="pat-sandbox", templates={"welcome_1": 210029}
            ),
        )


async def read_window(client: HubSpotClient, start: datetime) -> list[dict[str, Any]]:
    found, offset = [], None
    end = datetime.now(UTC) + timedelta(seconds=1)
    while True:
        page = await client.email_events_page(start=start, end=end, offset=offset)
        found += page["events"]
        if not page["hasMore"]:
            return found
        offset = page["offset"]


async def welcome(http: httpx.AsyncClient, client: HubSpotClient, email: str) -> None:
    await client.upsert_profile(Person(email=email, first_name="Ada"), idempotency_key=f"c-{email}")
    sent = await client.send_email(
        EmailMessage(to=email, template_id="welcome_1", subject="Welcome", variables={}),
        idempotency_key=f"send-{email}",
    )
    assert sent.created


async def test_the_recipient_acts_on_the_latest_email_and_hubspot_reports_it_newest_first(hubspot):
    http, client = hubspot
    start = datetime.now(UTC) - timedelta(seconds=1)
    await welcome(http, client, "ada@example-corp.com")
    for action in ("open", "click"):
        answer = await http.post("/_engagement", json={"email": "ada@example-corp.com", "action": action})
        assert answer.status_code == 200 and answer.json()["provider"] == "hubspot", answer.text
    events = await read_window(client, start)
    assert [e["type"] for e in events] == ["CLICK", "OPEN", "DELIVERED", "SENT"]
    assert len({e["emailCampaignId"] for e in events}) == 1
    assert {e["sentBy"]["id"] for e in events} == {events[-1]["id"]}, "every event names the send"
    kinds = [e.lead_event.type for e in mapped(*events)]
    assert kinds == [EventType.EMAIL_CLICKED, EventType.EMAIL_OPENED, EventType.EMAIL_DELIVERED]


async def test_an_unsubscribe_is_a_status_change_and_later_marketing_sends_are_refused(hubspot):
    http, client = hubspot
    start = datetime.now(UTC) - timedelta(seconds=1)
    await welcome(http, client, "grace@example-corp.com")
    answer = await http.post(
        "/_engagement", json={"email": "grace@example-corp.com", "action": "unsubscribe"}
    )
    assert answer.json()["type"] == "STATUSCHANGE"
    [change] = [e for e in await read_window(client, start) if e["type"] == "STATUSCHANGE"]
    assert change["portalSubscriptionStatus"] == "UNSUBSCRIBED"
    with pytest.raises(Exception, match="PREVIOUSLY_UNSUBSCRIBED_PORTAL"):
        await client.send_email(
            EmailMessage(to="grace@example-corp.com", template_id="welcome_1", variables={}),
            idempotency_key="send-again",
        )


async def test_a_hard_bounce_stops_later_marketing_sends(hubspot):
    http, client = hubspot
    await welcome(http, client, "hedy@example-corp.com")
    answer = await http.post("/_engagement", json={"email": "hedy@example-corp.com", "action": "bounce"})
    assert answer.json()["type"] == "BOUNCE"
    with pytest.raises(Exception, match="PREVIOUSLY_BOUNCED"):
        await client.send_email(
            EmailMessage(to="hedy@example-corp.com", template_id="welcome_1", variables={}),
            idempotency_key="send-again",
        )


async def test_a_campaign_from_hubspots_ui_is_a_bulk_email(hubspot):
    http, client = hubspot
    start = datetime.now(UTC) - timedelta(seconds=1)
    await client.upsert_profile(Person(email="kat@example-corp.com"), idempotency_key="c-kat")
    answer = await http.post("/_engagement", json={"email": "kat@example-corp.com", "action": "click"})
    assert answer.status_code == 200 and answer.json()["campaign"] is not None
    [click] = mapped(*[e for e in await read_window(client, start) if e["type"] == "CLICK"])
    assert click.lead_event.properties["campaign"] == str(answer.json()["campaign"])


async def test_the_events_read_pages_by_offset_and_filters_by_time(hubspot, monkeypatch):
    http, client = hubspot
    monkeypatch.setattr(hubspot_module, "EMAIL_EVENTS_PAGE_SIZE", 2)
    start = datetime.now(UTC) - timedelta(seconds=1)
    await welcome(http, client, "lin@example-corp.com")
    for action in ("open", "click", "open"):
        await http.post("/_engagement", json={"email": "lin@example-corp.com", "action": action})
    events = await read_window(client, start)
    assert len(events) == 5 and len({e["id"] for e in events}) == 5
    none = await client.email_events_page(start=start - timedelta(hours=2), end=start - timedelta(hours=1))
    assert none == {"hasMore": False, "offset": None, "events": []}
    bad = await http.get(
        "/hubspot/email/public/v1/events", params={"limit": "5000"}, headers={"Authorization": "Bearer x"}
    )
    assert bad.status_code == 400


# -- the poll activity: its window, its pages, its cursor ----------------------------------------


class NoAttribution:
    async def attribute(self, events: list[IncomingEvent]) -> None:
        return None


async def test_a_poll_stopped_in_a_window_continues_it_and_counts_every_event_once(hubspot, monkeypatch):
    http, client = hubspot
    monkeypatch.setattr(hubspot_module, "EMAIL_EVENTS_PAGE_SIZE", 2)
    start = datetime.now(UTC) - timedelta(seconds=1)
    await welcome(http, client, "ada@example-corp.com")
    for action in ("open", "click", "open", "click"):
        await http.post("/_engagement", json={"email": "ada@example-corp.com", "action": action})
    ingest = RecordingIngest()
    polls = EngagementActivities(ingest, NoAttribution(), hubspot=client, max_pages=1)  # type: ignore[arg-type]
    env = ActivityEnvironment()

    cursor = PollCursor(since=start)
    results = []
    for _ in range(5):
        result = await env.run(polls.poll_hubspot, cursor)
        results.append(result)
        cursor = result.cursor
        if not result.more:
            break
    assert [r.more for r in results] == [True, True, False], "six events (SENT too), two a page"
    assert cursor.page is None and cursor.window_to is None and cursor.since > start
    kinds = sorted(e.lead_event.type.value for e in ingest.recorded)
    assert kinds == ["email_clicked", "email_clicked", "email_delivered", "email_opened", "email_opened"]
    again = await env.run(polls.poll_hubspot, cursor)
    assert again.recorded == 0 and len(ingest.recorded) == 5, "the overlap's re-read is known"
