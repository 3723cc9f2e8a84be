"""Email engagement read from Klaviyo's events API: the poll cursor, the mapping of Klaviyo's own
metrics, and the sandbox playing the recipient (`POST /_engagement`), read through the client."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from domain import api_versions
from domain.engagement import PollCursor, klaviyo_engagement
from domain.events import EventType
from domain.ids import email_hash
from domain.webhooks import PayloadError
from platforms.klaviyo import KlaviyoClient
from platforms.ports import EmailMessage, Person
from sandbox.app import create_app

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
OVERLAP = timedelta(minutes=2)
ids = itertools.count()


def new_id() -> str:
    return f"e{next(ids)}"


@pytest.mark.parametrize(
    ("recent", "read", "fresh", "since", "kept"),
    [
        # Nothing read: the cursor stays.
        ({}, [], set(), T0, set()),
        # New events move the cursor to the newest; all are fresh and kept within the overlap.
        (
            {},
            [("a", T0 + timedelta(seconds=5)), ("b", T0 + timedelta(seconds=9))],
            {"a", "b"},
            T0 + timedelta(seconds=9),
            {"a", "b"},
        ),
        # The overlap re-read: "a" was read before and is not fresh again.
        (
            {"a": T0},
            [("a", T0), ("c", T0 + timedelta(seconds=1))],
            {"c"},
            T0 + timedelta(seconds=1),
            {"a", "c"},
        ),
        # A late-indexed event older than the cursor, inside the overlap, is fresh; the cursor stays.
        ({"a": T0}, [("late", T0 - timedelta(seconds=30))], {"late"}, T0, {"a", "late"}),
        # Ids older than the overlap before the newest are forgotten.
        (
            {"old": T0 - timedelta(minutes=1)},
            [("n", T0 + timedelta(minutes=5))],
            {"n"},
            T0 + timedelta(minutes=5),
            {"n"},
        ),
    ],
)
def test_the_cursor_skips_what_the_overlap_re_reads(recent, read, fresh, since, kept):
    cursor, new = PollCursor(since=T0, recent=recent).advance(read, OVERLAP)
    assert new == fresh
    assert cursor.since == since
    assert set(cursor.recent) == kept


def test_a_re_read_from_the_overlap_start_is_all_known():
    events = [(f"x{n}", T0 + timedelta(seconds=n)) for n in range(50)]
    cursor, first = PollCursor(since=T0).advance(events, OVERLAP)
    assert len(first) == 50
    again = [e for e in events if e[1] >= cursor.read_from(OVERLAP)]
    _, second = cursor.advance(again, OVERLAP)
    assert second == set()


def page(*events, metrics=None, profiles=None):
    metrics = metrics or {
        "M1": "Opened Email",
        "M2": "Clicked Email",
        "M3": "Placed Order",
        "M4": "Unsubscribed",
    }
    profiles = profiles or {"P1": "ada@example-corp.com", "P2": None}
    return {
        "data": [
            {
                "type": "event",
                "id": event_id,
                "attributes": {"datetime": at, "event_properties": properties, "timestamp": 0},
                "relationships": {
                    "metric": {"data": {"type": "metric", "id": metric}},
                    "profile": {"data": {"type": "profile", "id": profile}},
                },
            }
            for event_id, metric, profile, at, properties in events
        ],
        "included": [{"type": "metric", "id": i, "attributes": {"name": n}} for i, n in metrics.items()]
        + [{"type": "profile", "id": i, "attributes": {"email": e}} for i, e in profiles.items()],
    }


def test_klaviyos_email_metrics_map_to_engagement_and_the_rest_is_left_out():
    events, no_email = klaviyo_engagement(
        page(
            (
                "ev1",
                "M1",
                "P1",
                "2026-12-04T09:00:01+00:00",
                {"Subject": "Welcome", "$message": "Wm1", "$flow": "F1"},
            ),
            (
                "ev2",
                "M2",
                "P1",
                "2026-12-04T09:00:02+00:00",
                {"URL": "https://x.example/p", "Campaign Name": "Dec"},
            ),
            ("ev3", "M3", "P1", "2026-12-04T09:00:03+00:00", {"value": 10}),
            ("ev4", "M1", "P2", "2026-12-04T09:00:04+00:00", {}),
            ("ev5", "M4", "P1", "2026-12-04T09:00:05+00:00", {}),
        ),
        T0,
        new_id,
    )
    assert [(e.message_id, e.lead_event.type) for e in events] == [
        ("ev1", EventType.EMAIL_OPENED),
        ("ev2", EventType.EMAIL_CLICKED),
        ("ev5", EventType.EMAIL_UNSUBSCRIBED),
    ]
    assert no_email == 1  # a profile without an email is not a lead here
    opened, clicked, _ = events
    assert opened.source == "poll:klaviyo" and opened.lead_event.source == "klaviyo"
    assert opened.email == "ada@example-corp.com"
    assert opened.lead_event.email_hash == email_hash("ada@example-corp.com")
    assert opened.lead_event.name == "Welcome"
    assert opened.lead_event.properties["message"] == "Wm1" and opened.lead_event.properties["flow"] == "F1"
    assert clicked.lead_event.properties["url"] == "https://x.example/p"
    assert clicked.lead_event.properties["campaign"] == "Dec"
    assert opened.lead_event.occurred_at == datetime(2026, 12, 4, 9, 0, 1, tzinfo=UTC)
    assert "ada@" not in str(opened.lead_event.model_dump())


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"data": "nope"}, "data"),
        (page(("ev1", "M1", "P1", "yesterday", {})), "data[].attributes.datetime"),
        (page(("ev1", "M1", "P1", "2026-12-04T09:00:01", {})), "data[].attributes.datetime"),
        ({"data": [{"type": "event"}]}, "data[].id"),
    ],
)
def test_a_page_not_in_klaviyos_shape_names_the_field(bad, field):
    with pytest.raises(PayloadError) as refused:
        klaviyo_engagement(bad, T0, new_id)
    assert refused.value.field == field


@pytest.fixture
async def sandbox():
    transport = httpx.ASGITransport(app=create_app(seed=5))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        client = KlaviyoClient(
            http,
            base_url="http://sandbox/klaviyo",
            api_key="pk_test",
            revision=api_versions.default("klaviyo_revision"),
        )
        yield http, client


async def read_all(client: KlaviyoClient, since: datetime) -> list:
    """Every engagement event from `since`, following the pages."""
    found, next_url = [], None
    while True:
        got = await (client.events_page(next_url=next_url) if next_url else client.events_page(since=since))
        events, _ = klaviyo_engagement(got, T0, new_id)
        found += events
        next_url = (got.get("links") or {}).get("next")
        if not next_url:
            return found


async def test_the_sandbox_recipient_acts_on_the_latest_message_klaviyo_sent(sandbox):
    http, client = sandbox
    start = datetime.now(UTC) - timedelta(seconds=1)
    message = EmailMessage(
        to="ada@example-corp.com",
        template_id="t-welcome-1",
        variables={},
        subject="Welcome",
        sequence_id="welcome",
    )
    await client.send_email(message, idempotency_key="send-1")
    for action in ("open", "click"):
        answer = await http.post("/_engagement", json={"email": "ada@example-corp.com", "action": action})
        assert answer.status_code == 200, answer.text
        assert answer.json()["provider"] == "klaviyo"
    events = await read_all(client, start)
    kinds = [e.lead_event.type for e in events]
    assert kinds == [EventType.EMAIL_DELIVERED, EventType.EMAIL_OPENED, EventType.EMAIL_CLICKED]
    messages = {e.lead_event.properties["message"] for e in events}
    assert len(messages) == 1 and None not in messages  # all three are the one message
    assert events[0].lead_event.name == "Welcome"
    assert events[2].lead_event.properties["url"]
    # Read from the newest event's time on, only what is at or after it comes back.
    later = await read_all(client, events[-1].lead_event.occurred_at)
    assert [e.message_id for e in later] == [events[-1].message_id]


async def test_an_unsubscribe_changes_the_profile_and_later_sends_are_skipped(sandbox):
    http, client = sandbox
    start = datetime.now(UTC) - timedelta(seconds=1)
    await client.send_email(
        EmailMessage(to="grace@example-corp.com", template_id="t1", variables={}), idempotency_key="s-1"
    )
    answer = await http.post(
        "/_engagement", json={"email": "grace@example-corp.com", "action": "unsubscribe"}
    )
    assert answer.json()["metric"] == "Unsubscribed from Email Marketing"
    await client.send_email(
        EmailMessage(to="grace@example-corp.com", template_id="t2", variables={}), idempotency_key="s-2"
    )
    kinds = [e.lead_event.type for e in await read_all(client, start)]
    assert kinds == [EventType.EMAIL_DELIVERED, EventType.EMAIL_UNSUBSCRIBED]
    profile = await client.find_profile("grace@example-corp.com")
    assert profile is not None and profile.consent == "UNSUBSCRIBED"


async def test_engagement_without_any_send_is_with_a_campaign_and_unknown_addresses_are_refused(sandbox):
    http, client = sandbox
    start = datetime.now(UTC) - timedelta(seconds=1)
    await client.upsert_profile(Person(email="hedy@example-corp.com"), idempotency_key="p-1")
    opened = await http.post("/_engagement", json={"email": "hedy@example-corp.com", "action": "open"})
    assert opened.status_code == 200, opened.text
    events = await read_all(client, start)
    assert [e.lead_event.type for e in events] == [EventType.EMAIL_DELIVERED, EventType.EMAIL_OPENED]
    assert {e.lead_event.properties["campaign"] for e in events} == {"Sandbox campaign"}
    missing = await http.post("/_engagement", json={"email": "nobody@example-corp.com", "action": "open"})
    assert missing.status_code == 404 and "nobody@example-corp.com" in missing.text
    wrong = await http.post("/_engagement", json={"email": "a@b.co", "action": "open", "provider": "pigeon"})
    assert wrong.status_code == 422 and "provider" in wrong.text
    bad = await http.post("/_engagement", json={"email": "a@b.co", "action": "dance"})
    assert bad.status_code == 422
