"""Each provider's payload, as that provider sends it, mapped onto the internal event model."""

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.events import EventType
from domain.webhooks import PayloadError, calendly_events, hubspot_events, resend_events, stripe_events

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
counter = itertools.count()


def new_id() -> str:
    return f"e{next(counter)}"


def stripe(kind: str, obj: dict) -> dict:
    return {
        "id": f"evt_{kind}",
        "object": "event",
        "type": kind,
        "created": int(NOW.timestamp()),
        "data": {"object": obj},
    }


def test_stripe_checkout_is_a_purchase_with_the_customer_linked():
    (event,) = stripe_events(
        stripe(
            "checkout.session.completed",
            {
                "id": "cs_1",
                "customer": "cus_9",
                "amount_total": 49900,
                "currency": "usd",
                "mode": "subscription",
                "subscription": "sub_1",
                "customer_details": {"email": "Ada@Example.com", "name": "Ada"},
            },
        ),
        NOW,
        new_id,
    )
    assert event.lead_event.type is EventType.PURCHASE
    assert event.email == "ada@example.com" and event.external_ids == {"stripe_customer": "cus_9"}
    assert (
        event.lead_event.properties["amount"] == 499.0
        and event.message_id == "evt_checkout.session.completed"
    )
    assert event.lead_event.occurred_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert "Ada" not in str(event.lead_event.model_dump()), "no PII in what the journey sees"


def test_stripe_subscription_events_resolve_by_customer_only():
    (started,) = stripe_events(
        stripe("customer.subscription.created", {"id": "sub_1", "customer": "cus_9"}), NOW, new_id
    )
    (ended,) = stripe_events(
        stripe("customer.subscription.deleted", {"id": "sub_1", "customer": "cus_9"}), NOW, new_id
    )
    assert started.lead_event.type is EventType.SUBSCRIPTION_STARTED and started.email is None
    assert ended.lead_event.type is EventType.SUBSCRIPTION_CANCELLED and ended.external_ids == {
        "stripe_customer": "cus_9"
    }
    (renewal,) = stripe_events(
        stripe(
            "invoice.paid",
            {"id": "in_1", "customer": "cus_9", "billing_reason": "subscription_cycle", "amount_paid": 100},
        ),
        NOW,
        new_id,
    )
    assert renewal.lead_event.type is EventType.SUBSCRIPTION_RENEWED


def test_stripe_events_we_do_not_use_are_ignored_and_malformed_ones_named():
    assert stripe_events(stripe("charge.refunded", {"id": "ch_1"}), NOW, new_id) == []
    with pytest.raises(PayloadError, match=r"data\.object"):
        stripe_events({"id": "evt", "type": "invoice.paid", "created": 1, "data": {}}, NOW, new_id)


def test_calendly_booking_and_cancellation():
    invitee = {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "uri": "https://api.calendly.com/scheduled_events/EV/invitees/IN",
        "scheduled_event": {
            "name": "Demo",
            "start_time": "2026-11-28T15:00:00Z",
            "end_time": "2026-11-28T15:30:00Z",
            "uri": "https://api.calendly.com/scheduled_events/EV",
        },
        "tracking": {"utm_source": "linkedin", "utm_campaign": "q4"},
    }
    (booked,) = calendly_events(
        {"event": "invitee.created", "created_at": "2026-11-27T10:00:00.000000Z", "payload": invitee},
        NOW,
        new_id,
    )
    assert booked.lead_event.type is EventType.MEETING_BOOKED and booked.lead_event.name == "Demo"
    assert booked.lead_event.touch.source == "linkedin"
    assert booked.lead_event.properties["meeting_start"] == "2026-11-28T15:00:00Z"
    (cancelled,) = calendly_events(
        {
            "event": "invitee.canceled",
            "created_at": "2026-11-27T11:00:00Z",
            "payload": {**invitee, "cancellation": {"canceled_by": "Ada", "reason": "clash"}},
        },
        NOW,
        new_id,
    )
    assert cancelled.lead_event.type is EventType.MEETING_CANCELLED
    assert cancelled.message_id != booked.message_id
    with pytest.raises(PayloadError, match=r"payload\.email"):
        calendly_events(
            {"event": "invitee.created", "created_at": "2026-11-27T10:00:00Z", "payload": {}}, NOW, new_id
        )


def test_hubspot_deal_stage_changes_among_other_events():
    batch = [
        {
            "eventId": 1,
            "subscriptionType": "contact.creation",
            "objectId": 5,
            "occurredAt": int(NOW.timestamp() * 1000),
        },
        {
            "eventId": 2,
            "subscriptionType": "deal.propertyChange",
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
            "objectId": 777,
            "portalId": 62515,
            "occurredAt": int(NOW.timestamp() * 1000),
        },
    ]
    (event,) = hubspot_events(batch, NOW, new_id)
    assert (
        event.lead_event.type is EventType.DEAL_STAGE_CHANGED
        and event.lead_event.properties["stage"] == "closedwon"
    )
    assert event.external_ids == {"hubspot_deal": "777"} and event.message_id == "2"
    amount = {**batch[1], "eventId": 3, "propertyName": "amount", "propertyValue": "24000.50"}
    (changed,) = hubspot_events([amount], NOW, new_id)
    assert changed.lead_event.type is EventType.TRACK and changed.lead_event.name == "Deal Amount Changed"
    assert changed.lead_event.properties["amount"] == 24000.5
    assert changed.external_ids == {"hubspot_deal": "777"}
    with pytest.raises(PayloadError, match="propertyValue"):
        hubspot_events([{**amount, "propertyValue": "lots"}], NOW, new_id)
    with pytest.raises(PayloadError):
        hubspot_events({"not": "a list"}, NOW, new_id)


def test_resend_engagement():
    payload = {
        "type": "email.clicked",
        "created_at": "2026-11-27T10:00:00.000Z",
        "data": {
            "email_id": "e1",
            "to": ["Ada@Example.com"],
            "subject": "Welcome",
            "click": {"link": "https://x/pricing"},
        },
    }
    (event,) = resend_events(payload, NOW, new_id, message_id="msg_1")
    assert (
        event.lead_event.type is EventType.EMAIL_CLICKED
        and event.lead_event.properties["url"] == "https://x/pricing"
    )
    assert event.email == "ada@example.com" and event.message_id == "msg_1"
    assert resend_events({**payload, "type": "email.sent"}, NOW, new_id, message_id="m") == []


def test_a_rep_working_the_contact_in_hubspot_is_a_sales_acceptance():
    def change(prop: str, value: str, event_id: int) -> dict:
        return {
            "eventId": event_id,
            "subscriptionType": "contact.propertyChange",
            "objectId": 1201,
            "propertyName": prop,
            "propertyValue": value,
            "changeSource": "CRM_UI",
            "sourceId": "userId:42",
            "occurredAt": 1764237600000,
            "portalId": 62515,
        }

    batch = [
        change("hs_lead_status", "IN_PROGRESS", 1),
        change("hs_lead_status", "NEW", 2),
        change("lifecyclestage", "salesqualifiedlead", 3),
        change("firstname", "Ada", 4),
        change("hs_lead_status", "UNQUALIFIED", 5),
    ]
    events = hubspot_events(batch, NOW, new_id)
    assert [e.lead_event.type for e in events] == [EventType.SALES_ACCEPTED] * 2 + [
        EventType.SALES_DISQUALIFIED
    ]
    first = events[0]
    assert first.external_ids == {"hubspot_contact": "1201"} and first.message_id == "1"
    assert first.lead_event.name == "hs_lead_status=IN_PROGRESS"
    assert first.lead_event.properties["change_source"] == "CRM_UI"


def test_hubspots_generic_format_is_read_as_the_classic_one():
    # The developer platform's webhooks name the object by its type id (0-1 contact, 0-3 deal).
    common = {"occurredAt": 1764237600000, "portalId": 62515, "appId": 1160452, "attemptNumber": 0}
    batch = [
        {
            **common,
            "eventId": 11,
            "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-3",
            "objectId": 777,
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
            "changeSource": "CRM_UI",
        },
        {
            **common,
            "eventId": 12,
            "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-1",
            "objectId": 1201,
            "propertyName": "hs_lead_status",
            "propertyValue": "IN_PROGRESS",
            "changeSource": "CRM_UI",
        },
        {  # a ticket's change: not ours to follow
            **common,
            "eventId": 13,
            "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-5",
            "objectId": 9,
            "propertyName": "hs_pipeline_stage",
            "propertyValue": "4",
        },
    ]
    deal, contact = hubspot_events(batch, NOW, new_id)
    assert deal.lead_event.type is EventType.DEAL_STAGE_CHANGED and deal.external_ids == {
        "hubspot_deal": "777"
    }
    assert contact.lead_event.type is EventType.SALES_ACCEPTED
    assert contact.external_ids == {"hubspot_contact": "1201"} and contact.message_id == "12"
    classic = hubspot_events([{**batch[0], "subscriptionType": "deal.propertyChange"}], NOW, new_id)
    assert [e.lead_event.properties["stage"] for e in classic] == ["closedwon"]


def test_resend_reports_an_unsubscribe_as_a_contact_update():
    payload: dict[str, Any] = {
        "type": "contact.updated",
        "created_at": "2026-11-27T10:05:00.000Z",
        "data": {
            "id": "e169aa45-1ecf-4183-9955-b1499d5701d3",
            "audience_id": "78261eea-8f8b-4381-83c6-79fa7120f1cf",
            "created_at": "2026-10-10T15:11:46.000Z",
            "updated_at": "2026-11-27T10:04:59.000Z",
            "email": "Ada@Example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "unsubscribed": True,
        },
    }
    (event,) = resend_events(payload, NOW, new_id, message_id="msg_9")
    assert event.lead_event.type is EventType.EMAIL_UNSUBSCRIBED
    assert event.email == "ada@example.com" and event.message_id == "msg_9"
    assert event.lead_event.occurred_at.isoformat().startswith("2026-11-27T10:04:59")
    assert "Ada" not in str(event.lead_event.properties), "no name outside the codec"
    renamed = {**payload, "data": {**payload["data"], "unsubscribed": False}}
    assert resend_events(renamed, NOW, new_id, message_id="msg_10") == []
    with pytest.raises(PayloadError, match=r"data\.unsubscribed"):
        resend_events({**payload, "data": {"email": "a@b.co"}}, NOW, new_id, message_id="m")
    assert resend_events({**payload, "type": "contact.unsubscribed"}, NOW, new_id, message_id="m") == []


def test_a_change_the_engines_own_hubspot_app_made_is_not_applied_again():
    def stage(source: str, source_id: str, event_id: int) -> dict[str, Any]:
        return {
            "eventId": event_id,
            "subscriptionType": "contact.propertyChange",
            "objectId": 1201,
            "propertyName": "lifecyclestage",
            "propertyValue": "salesqualifiedlead",
            "changeSource": source,
            "sourceId": source_id,
            "occurredAt": 1764237600000,
        }

    batch = [
        stage("INTEGRATION", "1160452", 1),  # our own SQL push, echoed back
        stage("INTEGRATION", "9393361", 2),  # another app's: a change like a person's
        stage("CRM_UI", "userId:42", 3),  # a rep in HubSpot
    ]
    kept = hubspot_events(batch, NOW, new_id, own_app_id="1160452")
    assert [e.message_id for e in kept] == ["2", "3"]
    assert len(hubspot_events(batch, NOW, new_id)) == 3, "without our app id nothing can be told apart"
