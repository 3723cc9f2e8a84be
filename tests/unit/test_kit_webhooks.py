"""Kit's webhook deliveries (the signed envelope, the legacy link click) mapped onto lead events."""

from datetime import UTC, datetime
from itertools import count

import pytest

from domain.events import EventType
from domain.webhooks import PayloadError, kit_events, kit_link_click

RECEIVED = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
_ids = count()


def new_id() -> str:
    return f"e{next(_ids)}"


def subscriber(email: str = "Ada@Example-Corp.com", state: str = "cancelled") -> dict:
    return {
        "id": 987654,
        "first_name": "Ada",
        "email_address": email,
        "state": state,
        "created_at": "2026-11-29T14:32:10Z",
        "fields": {},
    }


def envelope(*events: dict) -> dict:
    return {"delivery_id": 42, "events": list(events)}


def event(kind: str, event_id: str = "9c2e1f3a-6b7d-4e8f-a1b2-c3d4e5f60718") -> dict:
    return {
        "id": event_id,
        "type": kind,
        "created": "2026-12-04T14:32:10Z",
        "data": {"subscriber": subscriber()},
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("subscriber.unsubscribed", EventType.EMAIL_UNSUBSCRIBED),
        ("subscriber.bounced", EventType.EMAIL_BOUNCED),
        ("subscriber.complained", EventType.EMAIL_SPAM_COMPLAINT),
    ],
)
def test_each_email_outcome_maps_under_kits_event_id(kind, expected):
    [mapped] = kit_events(envelope(event(kind)), RECEIVED, new_id)
    assert mapped.lead_event.type is expected
    assert mapped.source == "webhook:kit" and mapped.message_id == "9c2e1f3a-6b7d-4e8f-a1b2-c3d4e5f60718"
    assert mapped.email == "ada@example-corp.com"
    assert mapped.lead_event.occurred_at == datetime(2026, 12, 4, 14, 32, 10, tzinfo=UTC)
    assert mapped.lead_event.properties["subscriber_id"] == "987654"
    assert "ada" not in str(mapped.lead_event.properties).lower()


def test_a_batched_delivery_maps_every_event_and_ignores_other_types():
    mapped = kit_events(
        envelope(
            event("subscriber.bounced", "a"),
            event("subscriber.tag_added", "b"),
            event("subscriber.bounced", "c"),
        ),
        RECEIVED,
        new_id,
    )
    assert [m.message_id for m in mapped] == ["a", "c"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"delivery_id": 1}, "events"),
        ({"delivery_id": 1, "events": []}, "events"),
        ({"delivery_id": 1, "events": [event("subscriber.bounced")] * 101}, "events"),
        (envelope({**event("subscriber.bounced"), "id": None}), "events.0.id"),
        (envelope({**event("subscriber.bounced"), "created": "yesterday"}), "events.0.created"),
        (
            envelope({**event("subscriber.bounced"), "data": {"subscriber": subscriber("nobody")}}),
            "events.0.data.subscriber.email_address",
        ),
        (envelope({"id": "x", "data": {}}), "events.0.type"),
    ],
)
def test_a_payload_kit_would_not_send_names_its_field(payload, field):
    with pytest.raises(PayloadError) as raised:
        kit_events(payload, RECEIVED, new_id)
    assert raised.value.field == field


def test_a_legacy_link_click_counts_once_per_link_and_day():
    url = "https://example.com/pricing"
    [first] = kit_link_click({"subscriber": subscriber(state="active")}, url, RECEIVED, new_id)
    [later] = kit_link_click(
        {"subscriber": subscriber(state="active")}, url, RECEIVED.replace(hour=18), new_id
    )
    [other] = kit_link_click({"subscriber": subscriber(state="active")}, url + "/plans", RECEIVED, new_id)
    assert first.lead_event.type is EventType.EMAIL_CLICKED
    assert first.lead_event.properties["url"] == url
    assert first.message_id == later.message_id != other.message_id


@pytest.mark.parametrize("url", ["", "javascript:alert(1)", "https://x.example/" + "a" * 2050])
def test_a_link_click_needs_the_registered_http_link(url):
    with pytest.raises(PayloadError) as raised:
        kit_link_click({"subscriber": subscriber()}, url, RECEIVED, new_id)
    assert raised.value.field == "url"


def test_a_link_click_key_fits_the_store_and_does_not_carry_the_link():
    url = "https://example.com/pricing?ref=" + "x" * 2000
    [click] = kit_link_click({"subscriber": subscriber()}, url, RECEIVED, new_id)
    assert len(click.message_id) <= 255 and "example.com" not in click.message_id
