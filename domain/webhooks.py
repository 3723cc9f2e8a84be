"""Platform webhooks, each payload as its provider sends it, mapped onto the internal event model."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from domain.events import EventType, IncomingEvent, LeadEvent, Touch, strip_pii
from domain.ids import email_hash, normalize_email


class PayloadError(Exception):
    """The payload is not what the provider sends; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


NewId = Callable[[], str]


def _email(value: Any) -> str | None:
    if isinstance(value, str) and "@" in value and len(value) <= 320:
        return normalize_email(value)
    return None


def _unix(value: Any, field: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise PayloadError(field, "must be a unix timestamp")


def _unix_ms(value: Any, field: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _unix(value / 1000, field)
    raise PayloadError(field, "must be a unix timestamp in milliseconds")


def _object_id(value: Any, field: str) -> str:
    """A HubSpot object id: a number (sent as a JSON number, sometimes as a string of digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise PayloadError(field, "must be the object's numeric id")


def _minor_units(value: Any, field: str) -> float:
    """Stripe's amounts: an integer in the currency's smallest unit (cents), or absent."""
    if value is None:
        return 0.0
    if isinstance(value, int) and not isinstance(value, bool):
        return value / 100
    raise PayloadError(field, "an amount is an integer in the smallest currency unit")


def _iso(value: Any, field: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PayloadError(field, "must be an ISO 8601 time")


def _text(value: Any) -> str | None:
    """A string field, or None when the provider sent anything else."""
    return value if isinstance(value, str) else None


def _optional_time(value: Any, field: str) -> str | None:
    """A time the journey will read later, checked now: absent, or ISO 8601 (kept as sent)."""
    if value is None:
        return None
    _iso(value, field)
    return str(value)


def _sub(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(field, "must be an object")
    return value


def inbound_event(
    *,
    provider: str,
    message_id: str,
    kind: EventType,
    occurred_at: datetime,
    received_at: datetime,
    payload: dict[str, Any],
    new_id: NewId,
    email: str | None = None,
    name: str | None = None,
    properties: dict[str, Any] | None = None,
    external_ids: dict[str, str] | None = None,
    touch: Touch | None = None,
    channel: str = "webhook",
    retired_ids: list[tuple[str, str]] | None = None,
) -> IncomingEvent:
    """One platform event as the store records it: `{channel}:{provider}` and the platform's own
    id (`message_id`) are its dedupe key, so a redelivery or a re-read is recorded once."""
    return IncomingEvent(
        source=f"{channel}:{provider}",
        message_id=message_id,
        lead_event=LeadEvent(
            event_id=new_id(),
            type=kind,
            source=provider,
            occurred_at=occurred_at,
            name=name,
            properties=strip_pii(properties or {}),
            touch=touch or Touch(),
            email_hash=email_hash(email) if email else None,
        ),
        received_at=received_at,
        payload=payload,
        email=email,
        external_ids={k: v for k, v in (external_ids or {}).items() if v},
        retired_ids=list(retired_ids or []),
    )


# --- Stripe: https://docs.stripe.com/api/events ------------------------------------------------


def stripe_events(payload: dict[str, Any], received_at: datetime, new_id: NewId) -> list[IncomingEvent]:
    event_id = payload.get("id")
    kind = payload.get("type")
    if not isinstance(event_id, str) or not isinstance(kind, str):
        raise PayloadError("id", "a Stripe event has an `id` and a `type`")
    obj = _object(_object(payload.get("data"), "data").get("object"), "data.object")
    occurred_at = _unix(payload.get("created"), "created")
    common: dict[str, Any] = {
        "provider": "stripe",
        "message_id": event_id,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "payload": payload,
        "new_id": new_id,
    }
    customer = obj.get("customer") if isinstance(obj.get("customer"), str) else None
    if kind == "checkout.session.completed":
        details = _sub(obj, "customer_details")
        email = _email(details.get("email")) or _email(obj.get("customer_email"))
        return [
            inbound_event(
                **common,
                kind=EventType.PURCHASE,
                name="Checkout completed",
                email=email,
                properties={
                    "amount": _minor_units(obj.get("amount_total"), "data.object.amount_total"),
                    "currency": obj.get("currency"),
                    "mode": obj.get("mode"),
                    "subscription": obj.get("subscription"),
                    "checkout_session": obj.get("id"),
                },
                external_ids={"stripe_customer": customer or ""},
            )
        ]
    if kind == "invoice.paid":
        renewal = obj.get("billing_reason") == "subscription_cycle"
        return [
            inbound_event(
                **common,
                kind=EventType.SUBSCRIPTION_RENEWED if renewal else EventType.PURCHASE,
                name="Invoice paid",
                email=_email(obj.get("customer_email")),
                properties={
                    "amount": _minor_units(obj.get("amount_paid"), "data.object.amount_paid"),
                    "currency": obj.get("currency"),
                    "invoice": obj.get("id"),
                    "billing_reason": obj.get("billing_reason"),
                },
                external_ids={"stripe_customer": customer or ""},
            )
        ]
    lifecycle = {
        "customer.subscription.created": EventType.SUBSCRIPTION_STARTED,
        "customer.subscription.deleted": EventType.SUBSCRIPTION_CANCELLED,
    }
    if kind in lifecycle:
        return [
            inbound_event(
                **common,
                kind=lifecycle[kind],
                name=kind,
                properties={"subscription": obj.get("id"), "status": obj.get("status")},
                external_ids={"stripe_customer": customer or ""},
            )
        ]
    return []


# --- Calendly: https://developer.calendly.com/api-docs (webhook payloads) -----------------------


def calendly_events(payload: dict[str, Any], received_at: datetime, new_id: NewId) -> list[IncomingEvent]:
    kind = payload.get("event")
    invitee = _object(payload.get("payload"), "payload")
    types = {"invitee.created": EventType.MEETING_BOOKED, "invitee.canceled": EventType.MEETING_CANCELLED}
    if not isinstance(kind, str) or kind not in types:
        return []
    email = _email(invitee.get("email"))
    if email is None:
        raise PayloadError("payload.email", "an invitee has an email")
    scheduled = _sub(invitee, "scheduled_event")
    tracking = _sub(invitee, "tracking")
    uri = invitee.get("uri")
    if not isinstance(uri, str):
        raise PayloadError("payload.uri", "an invitee has a uri")
    return [
        inbound_event(
            provider="calendly",
            message_id=f"{kind}:{uri}",
            kind=types[kind],
            occurred_at=_iso(payload.get("created_at"), "created_at"),
            received_at=received_at,
            payload=payload,
            new_id=new_id,
            email=email,
            name=scheduled.get("name") if isinstance(scheduled.get("name"), str) else None,
            properties={
                "meeting_start": _optional_time(
                    scheduled.get("start_time"), "payload.scheduled_event.start_time"
                ),
                "meeting_end": _optional_time(scheduled.get("end_time"), "payload.scheduled_event.end_time"),
                "scheduled_event": _text(scheduled.get("uri")),
                "invitee": uri,
                "canceled_by": _text(_sub(invitee, "cancellation").get("canceled_by")),
            },
            touch=Touch(
                source=_text(tracking.get("utm_source")),
                medium=_text(tracking.get("utm_medium")),
                campaign=_text(tracking.get("utm_campaign")),
            ),
        )
    ]


# --- HubSpot: https://developers.hubspot.com/docs/api/webhooks ---------------------------------


DEAL_AMOUNT_EVENT = "Deal Amount Changed"


def _number(value: Any, where: str) -> float:
    try:
        number = float(str(value)) if isinstance(value, int | float | str) else float("nan")
    except ValueError:
        number = float("nan")
    if not math.isfinite(number):
        raise PayloadError(where, f"an amount is a number, not {str(value)[:40]!r}")
    return number


# The developer platform's generic format names the object by its type id, not in the
# subscription type: `object.propertyChange` with `objectTypeId` "0-1" is a contact's change.
HUBSPOT_OBJECT_TYPES = {"0-1": "contact", "0-2": "company", "0-3": "deal"}


def hubspot_subscription(item: dict[str, Any]) -> str | None:
    """The classic subscription type of an event in either format (`contact.propertyChange`
    whether it came so or as `object.propertyChange` for object type 0-1)."""
    kind = item.get("subscriptionType")
    if not isinstance(kind, str):
        return None
    scope, _, action = kind.partition(".")
    if scope == "object":
        named = HUBSPOT_OBJECT_TYPES.get(str(item.get("objectTypeId")))
        return f"{named}.{action}" if named else None
    return kind


# How HubSpot marks a change an app made through the API: its `changeSource`, with the app's id as
# `sourceId`.
HUBSPOT_APP_SOURCES = {"INTEGRATION", "API"}


def hubspot_change_is_ours(item: dict[str, Any], own_app_id: str | None) -> bool:
    """A change the engine itself wrote (a lifecycle stage, a deal stage): HubSpot reports it back
    like any other, and applying it again would answer our own write (an SQL we pushed read as a
    rep's acceptance, a deal stage we set read as the rep moving it)."""
    return (
        own_app_id is not None
        and item.get("changeSource") in HUBSPOT_APP_SOURCES
        and str(item.get("sourceId")) == own_app_id
    )


def hubspot_events(
    payload: Any, received_at: datetime, new_id: NewId, *, own_app_id: str | None = None
) -> list[IncomingEvent]:
    """The events of a HubSpot delivery the engine follows; changes the engine's own app made
    (`own_app_id`) are recognized and left out."""
    if not isinstance(payload, list):
        raise PayloadError("body", "HubSpot sends a JSON array of events")
    events: list[IncomingEvent] = []
    for index, item in enumerate(payload):
        item = _object(item, f"[{index}]")
        if hubspot_change_is_ours(item, own_app_id):
            continue
        accepted = _hubspot_acceptance(item, index, received_at, new_id) or _hubspot_record_change(
            item, index, received_at, new_id
        )
        if accepted is not None:
            events.append(accepted)
            continue
        prop = item.get("propertyName")
        if hubspot_subscription(item) != "deal.propertyChange" or prop not in ("dealstage", "amount"):
            continue
        deal = _object_id(item.get("objectId"), f"[{index}].objectId")
        if not isinstance(item.get("eventId"), int | str):
            raise PayloadError(f"[{index}].eventId", "a deal change names its eventId")
        value = item.get("propertyValue")
        if prop == "amount":
            # The deal's value, for pipeline and revenue (a deal won without a purchase event).
            kind, name = EventType.TRACK, DEAL_AMOUNT_EVENT
            changed: dict[str, Any] = {"amount": _number(value, f"[{index}].propertyValue")}
        else:
            kind, name = EventType.DEAL_STAGE_CHANGED, str(value)
            changed = {"stage": value, "change_source": item.get("changeSource")}
        events.append(
            inbound_event(
                provider="hubspot",
                message_id=str(item["eventId"]),
                kind=kind,
                occurred_at=_unix_ms(item.get("occurredAt"), f"[{index}].occurredAt"),
                received_at=received_at,
                payload=item,
                new_id=new_id,
                name=name,
                properties={"deal_id": deal, **changed, "portal_id": item.get("portalId")},
                external_ids={"hubspot_deal": deal},
            )
        )
    return events


# A rep working the lead in HubSpot: its lead status, or its lifecycle stage moved to SQL.
HUBSPOT_ACCEPTING = {
    "hs_lead_status": {"IN_PROGRESS", "CONNECTED", "OPEN_DEAL"},
    "lifecyclestage": {"salesqualifiedlead", "opportunity"},
}


# A rep ruling the lead out in HubSpot: its lead status.
HUBSPOT_DISQUALIFYING = {"hs_lead_status": {"UNQUALIFIED", "BAD_TIMING"}}


def _hubspot_acceptance(
    item: dict[str, Any], index: int, received_at: datetime, new_id: NewId
) -> IncomingEvent | None:
    """A rep's decision on the contact: taken (accepted) or ruled out (disqualified)."""
    if hubspot_subscription(item) != "contact.propertyChange":
        return None
    name, value = str(item.get("propertyName")), str(item.get("propertyValue"))
    if value in HUBSPOT_ACCEPTING.get(name, ()):
        kind = EventType.SALES_ACCEPTED
    elif value in HUBSPOT_DISQUALIFYING.get(name, ()):
        kind = EventType.SALES_DISQUALIFIED
    else:
        return None
    contact = _object_id(item.get("objectId"), f"[{index}].objectId")
    if not isinstance(item.get("eventId"), int | str):
        raise PayloadError(f"[{index}].eventId", "a contact change names its eventId")
    return inbound_event(
        provider="hubspot",
        message_id=str(item["eventId"]),
        kind=kind,
        occurred_at=_unix_ms(item.get("occurredAt"), f"[{index}].occurredAt"),
        received_at=received_at,
        payload=item,
        new_id=new_id,
        name=f"{item.get('propertyName')}={item.get('propertyValue')}",
        properties={
            "contact_id": contact,
            "property": item.get("propertyName"),
            "value": item.get("propertyValue"),
            "change_source": item.get("changeSource"),
            "source_id": item.get("sourceId"),
        },
        external_ids={"hubspot_contact": contact},
    )


HUBSPOT_CONTACT = "hubspot_contact"


def _hubspot_record_change(
    item: dict[str, Any], index: int, received_at: datetime, new_id: NewId
) -> IncomingEvent | None:
    """What happened to the contact record itself: its owner changed, it was merged with
    duplicates (`newObjectId` is the record left; the primary's old id and the `mergedObjectIds`
    are gone), or deleted (for a privacy request too)."""
    kind = hubspot_subscription(item)
    if kind == "contact.propertyChange" and item.get("propertyName") == "hubspot_owner_id":
        contact = _object_id(item.get("objectId"), f"[{index}].objectId")
        owner = _text(item.get("propertyValue")) or None  # cleared: nobody owns it now
        event_type, name = EventType.CRM_OWNER_CHANGED, f"hubspot_owner_id={owner or ''}"
        properties: dict[str, Any] = {"contact_id": contact, "crm_owner_id": owner}
        external, retired = {HUBSPOT_CONTACT: contact}, []
    elif kind == "contact.merge":
        primary = item.get("newObjectId") or item.get("primaryObjectId")
        contact = _object_id(primary, f"[{index}].newObjectId")
        merged = item.get("mergedObjectIds")
        if not isinstance(merged, list) or not merged:
            raise PayloadError(f"[{index}].mergedObjectIds", "a merge names the records merged")
        gone = [_object_id(value, f"[{index}].mergedObjectIds.{n}") for n, value in enumerate(merged)]
        # A merge makes a new record (`newObjectId`): the primary's old id is gone too, and its
        # lead, first, is the one the merged records' leads join.
        old_primary = item.get("primaryObjectId")
        if old_primary is not None:
            gone.insert(0, _object_id(old_primary, f"[{index}].primaryObjectId"))
        gone = list(dict.fromkeys(g for g in gone if g != contact))
        event_type, name = EventType.CRM_RECORD_MERGED, "contact.merge"
        properties = {"contact_id": contact, "merged_ids": gone}
        external, retired = {HUBSPOT_CONTACT: contact}, [(HUBSPOT_CONTACT, g) for g in gone]
    elif kind in ("contact.deletion", "contact.privacyDeletion"):
        contact = _object_id(item.get("objectId"), f"[{index}].objectId")
        event_type, name = EventType.CRM_RECORD_DELETED, str(kind)
        properties = {"contact_id": contact, "privacy": kind == "contact.privacyDeletion"}
        external, retired = {}, [(HUBSPOT_CONTACT, contact)]
    else:
        return None
    if not isinstance(item.get("eventId"), int | str):
        raise PayloadError(f"[{index}].eventId", "a contact change names its eventId")
    return inbound_event(
        provider="hubspot",
        message_id=str(item["eventId"]),
        kind=event_type,
        occurred_at=_unix_ms(item.get("occurredAt"), f"[{index}].occurredAt"),
        received_at=received_at,
        payload=item,
        new_id=new_id,
        name=name,
        properties={
            **properties,
            "change_source": item.get("changeSource"),
            "source_id": item.get("sourceId"),
        },
        external_ids=external,
        retired_ids=retired,
    )


# --- Resend (Standard Webhooks via Svix): https://resend.com/docs/dashboard/webhooks ------------

RESEND_TYPES = {
    "email.delivered": EventType.EMAIL_DELIVERED,
    "email.opened": EventType.EMAIL_OPENED,
    "email.clicked": EventType.EMAIL_CLICKED,
    "email.bounced": EventType.EMAIL_BOUNCED,
    "email.complained": EventType.EMAIL_SPAM_COMPLAINT,
}
# Resend has no unsubscribe event: a contact who unsubscribes (through the link in a broadcast, or
# set so through its API) arrives as `contact.updated` with `data.unsubscribed: true`.
RESEND_CONTACT_UPDATED = "contact.updated"


def resend_events(
    payload: dict[str, Any], received_at: datetime, new_id: NewId, *, message_id: str
) -> list[IncomingEvent]:
    kind = payload.get("type")
    if kind == RESEND_CONTACT_UPDATED:
        return _resend_unsubscribe(payload, received_at, new_id, message_id=message_id)
    if not isinstance(kind, str) or kind not in RESEND_TYPES:
        return []
    data = _object(payload.get("data"), "data")
    to = data.get("to")
    recipients: list[Any] = to if isinstance(to, list) else [data.get("email")]
    email = next((e for e in (_email(r) for r in recipients) if e), None)
    if email is None:
        raise PayloadError("data.to", "an email event names its recipient")
    click = _sub(data, "click")
    return [
        inbound_event(
            provider="resend",
            message_id=message_id,
            kind=RESEND_TYPES[kind],
            occurred_at=_iso(payload.get("created_at"), "created_at"),
            received_at=received_at,
            payload=payload,
            new_id=new_id,
            email=email,
            name=data.get("subject") if isinstance(data.get("subject"), str) else None,
            properties={
                "email_id": _text(data.get("email_id")),
                "url": _text(click.get("link")),
                "bounce_type": _text(_sub(data, "bounce").get("type")),
                "tags": _sub(data, "tags") or None,
            },
        )
    ]


def _resend_unsubscribe(
    payload: dict[str, Any], received_at: datetime, new_id: NewId, *, message_id: str
) -> list[IncomingEvent]:
    data = _object(payload.get("data"), "data")
    unsubscribed = data.get("unsubscribed")
    if not isinstance(unsubscribed, bool):
        raise PayloadError("data.unsubscribed", "a contact update says whether the contact is unsubscribed")
    if not unsubscribed:
        return []  # a name changed, or a resubscribe: consent comes back only through our own forms
    email = _email(data.get("email"))
    if email is None:
        raise PayloadError("data.email", "a contact update names the contact's email")
    return [
        inbound_event(
            provider="resend",
            message_id=message_id,
            kind=EventType.EMAIL_UNSUBSCRIBED,
            occurred_at=_iso(data.get("updated_at") or payload.get("created_at"), "data.updated_at"),
            received_at=received_at,
            payload=payload,
            new_id=new_id,
            email=email,
            name=None,
            properties={"contact_id": _text(data.get("id")), "audience_id": _text(data.get("audience_id"))},
        )
    ]


# --- Kit: https://developers.kit.com/webhooks/overview ------------------------------------------
# Webhook endpoints (`/v4/webhook_endpoints`) deliver signed envelopes of 1 to 100 events of one
# type; each event has a UUID that stays the same across Kit's retries. Of the email outcomes,
# unsubscribes, hard bounces and complaints are available today (opens and clicks are planned);
# clicks come only through the legacy unsigned `/v4/webhooks` (one per link, `subscriber.link_click`).

KIT_TYPES = {
    "subscriber.unsubscribed": EventType.EMAIL_UNSUBSCRIBED,
    "subscriber.bounced": EventType.EMAIL_BOUNCED,
    "subscriber.complained": EventType.EMAIL_SPAM_COMPLAINT,
}
KIT_MAX_EVENTS = 100


def _kit_subscriber(data: dict[str, Any], field: str) -> tuple[str, str | None]:
    """The subscriber's email and Kit id (None when Kit sent none)."""
    subscriber = _object(data.get("subscriber"), field)
    email = _email(subscriber.get("email_address"))
    if email is None:
        raise PayloadError(f"{field}.email_address", "a subscriber event names the subscriber's email")
    subscriber_id = subscriber.get("id")
    return email, str(subscriber_id) if subscriber_id not in (None, "") else None


def kit_events(payload: dict[str, Any], received_at: datetime, new_id: NewId) -> list[IncomingEvent]:
    """A Kit delivery envelope `{delivery_id, events: [...]}`; event types other than the email
    outcomes are not the engine's and are ignored."""
    events = payload.get("events")
    if not isinstance(events, list) or not 1 <= len(events) <= KIT_MAX_EVENTS:
        raise PayloadError("events", f"a delivery carries 1 to {KIT_MAX_EVENTS} events")
    mapped = []
    for index, item in enumerate(events):
        where = f"events.{index}"
        event = _object(item, where)
        kind = event.get("type")
        if not isinstance(kind, str):
            raise PayloadError(f"{where}.type", "every event has a type")
        if kind not in KIT_TYPES:
            continue
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise PayloadError(f"{where}.id", "every event has its id")
        data = _object(event.get("data"), f"{where}.data")
        email, subscriber_id = _kit_subscriber(data, f"{where}.data.subscriber")
        mapped.append(
            inbound_event(
                provider="kit",
                message_id=event_id,
                kind=KIT_TYPES[kind],
                occurred_at=_iso(event.get("created"), f"{where}.created"),
                received_at=received_at,
                payload=event,
                new_id=new_id,
                email=email,
                properties={
                    "subscriber_id": subscriber_id,
                    "state": _text(_sub(data, "subscriber").get("state")),
                    "delivery_id": payload.get("delivery_id"),
                },
            )
        )
    return mapped


def kit_link_click(
    payload: dict[str, Any], url: str, received_at: datetime, new_id: NewId
) -> list[IncomingEvent]:
    """A legacy `subscriber.link_click` webhook: `{"subscriber": {...}}`, with no event id and no
    time. The link is the one the webhook was registered for (passed back in its URL). Its key is
    the subscriber, the link and the day, so a click counts once per link and day (Kit's legacy
    webhooks are not retried; this only keeps a repeated delivery from counting twice). The link
    is hashed into the key: a URL can be longer than a key and can carry personal data."""
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise PayloadError("url", "the link the webhook was registered for, an http(s) URL")
    email, kit_id = _kit_subscriber(payload, "subscriber")
    subscriber_id = kit_id or email_hash(email)
    link = hashlib.sha256(url.encode()).hexdigest()[:32]
    return [
        inbound_event(
            provider="kit",
            message_id=f"link_click:{subscriber_id}:{link}:{received_at.date().isoformat()}",
            kind=EventType.EMAIL_CLICKED,
            occurred_at=received_at,
            received_at=received_at,
            payload=payload,
            new_id=new_id,
            email=email,
            properties={"url": url, "subscriber_id": subscriber_id},
        )
    ]


# --- Meta Lead Ads: https://developers.facebook.com/docs/marketing-api/guides/lead-ads --------


def facebook_leadgen_ids(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The `leadgen` changes in a Page webhook: each names a lead to read from the Graph API."""
    if payload.get("object") != "page":
        return []
    changes: list[dict[str, Any]] = []
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("entry", "a Page webhook carries a list of entries")
    for index, entry in enumerate(entries):
        listed = _object(entry, f"entry[{index}]").get("changes")
        if not isinstance(listed, list):
            raise PayloadError(f"entry[{index}].changes", "an entry carries a list of changes")
        for change in listed:
            if isinstance(change, dict) and change.get("field") == "leadgen":
                value = _object(change.get("value"), f"entry[{index}].changes.value")
                if not isinstance(value.get("leadgen_id"), str | int) or isinstance(
                    value.get("leadgen_id"), bool
                ):
                    raise PayloadError(f"entry[{index}].changes.value.leadgen_id", "is required")
                changes.append(value)
    return changes


def facebook_lead_event(
    change: dict[str, Any], lead: dict[str, Any], received_at: datetime, new_id: NewId
) -> IncomingEvent:
    answers: dict[str, str] = {}
    for field in lead.get("field_data") or []:
        values = field.get("values") if isinstance(field, dict) else None
        if isinstance(values, list) and values and isinstance(field.get("name"), str):
            answers[field["name"].lower()] = str(values[0])
    email = _email(answers.get("email") or answers.get("work_email"))
    if email is None:
        raise PayloadError("field_data.email", "the lead form has no email answer")
    first, last = answers.get("first_name"), answers.get("last_name")
    if not first and answers.get("full_name"):
        first, _, last = answers["full_name"].partition(" ")
    profile = {
        "first_name": first or None,
        "last_name": last or None,
        "company": answers.get("company_name") or answers.get("company"),
        "job_title": answers.get("job_title"),
        "phone": answers.get("phone_number") or answers.get("phone"),
        "lead_source": "facebook_lead_ad",
    }
    created = lead.get("created_time")
    occurred_at = (
        _iso(created.replace("+0000", "+00:00"), "created_time") if isinstance(created, str) else received_at
    )
    event = inbound_event(
        provider="facebook",
        message_id=str(change["leadgen_id"]),
        kind=EventType.LEAD_AD_SUBMITTED,
        occurred_at=occurred_at,
        received_at=received_at,
        payload={"change": change, "lead": lead},
        new_id=new_id,
        email=email,
        name="Facebook lead ad",
        properties={
            "form_id": str(change.get("form_id") or lead.get("form_id") or ""),
            "ad_id": str(change.get("ad_id") or lead.get("ad_id") or ""),
            "page_id": str(change.get("page_id") or ""),
            "campaign_id": lead.get("campaign_id"),
            "is_organic": lead.get("is_organic"),
        },
        touch=Touch(source="facebook", medium="paid_social", campaign=lead.get("campaign_id")),
    )
    event.profile = {k: v for k, v in profile.items() if v}
    return event


# --- LinkedIn Lead Sync: https://learn.microsoft.com/linkedin/marketing/lead-sync/leadsync ----

LINKEDIN_FIELDS = {
    "EMAIL": "email",
    "WORK_EMAIL": "email",
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
    "PHONE_NUMBER": "phone",
    "WORK_PHONE_NUMBER": "phone",
}


def linkedin_notification(payload: dict[str, Any]) -> tuple[str, str] | None:
    """(form response id, form id) of a CREATED lead notification; None for anything else."""
    if payload.get("type") != "LEAD_ACTION" or payload.get("leadAction") != "CREATED":
        return None
    response_urn = payload.get("leadGenFormResponse")
    form_urn = payload.get("leadGenForm")
    if not isinstance(response_urn, str) or not response_urn.startswith("urn:li:leadGenFormResponse:"):
        raise PayloadError("leadGenFormResponse", "must be a urn:li:leadGenFormResponse URN")
    if not isinstance(form_urn, str) or "urn:li:leadGenForm:" not in form_urn:
        raise PayloadError("leadGenForm", "must name a urn:li:leadGenForm")
    form_id = form_urn.split("urn:li:leadGenForm:", 1)[1].split(",", 1)[0].rstrip(")")
    return response_urn.removeprefix("urn:li:leadGenFormResponse:"), form_id


def linkedin_lead_event(
    payload: dict[str, Any],
    response: dict[str, Any],
    form: dict[str, Any],
    received_at: datetime,
    new_id: NewId,
) -> IncomingEvent:
    fields: dict[Any, str] = {}
    for question in _sub(form, "content").get("questions") or []:
        if isinstance(question, dict) and question.get("predefinedField") in LINKEDIN_FIELDS:
            fields[question.get("questionId")] = LINKEDIN_FIELDS[question["predefinedField"]]
    answers: dict[str, str] = {}
    for answer in _sub(response, "formResponse").get("answers") or []:
        if not isinstance(answer, dict) or answer.get("questionId") not in fields:
            continue
        text = _sub(_sub(answer, "answerDetails"), "textQuestionAnswer").get("answer")
        if isinstance(text, str) and text.strip():
            answers[fields[answer["questionId"]]] = text.strip()
    email = _email(answers.pop("email", None))
    if email is None:
        raise PayloadError("formResponse.answers", "the lead form has no email answer")
    response_id = str(response.get("id") or payload.get("leadGenFormResponse"))
    submitted = response.get("submittedAt") or payload.get("occurredAt") or 0
    campaign = _sub(_sub(response, "leadMetadata"), "sponsoredLeadMetadata").get("campaign")
    event = inbound_event(
        provider="linkedin",
        message_id=response_id,
        kind=EventType.LEAD_AD_SUBMITTED,
        occurred_at=_unix(submitted / 1000, "submittedAt"),
        received_at=received_at,
        payload={"notification": payload, "response": response},
        new_id=new_id,
        email=email,
        name="LinkedIn lead gen form",
        properties={
            "form_id": str(form.get("id") or ""),
            "lead_type": payload.get("leadType"),
            "test_lead": bool(response.get("testLead")),
            "campaign": campaign,
        },
        external_ids={"linkedin_lead": response_id},
        touch=Touch(
            source="linkedin", medium="paid_social", campaign=campaign if isinstance(campaign, str) else None
        ),
    )
    event.profile = {**answers, "lead_source": "linkedin_lead_gen"}
    return event
