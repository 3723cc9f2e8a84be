"""The one internal event model every source maps onto, and the rules applied on the way in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class EventType(StrEnum):
    IDENTIFY = "identify"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"
    FORM_SUBMITTED = "form_submitted"
    FORM_ABANDONED = "form_abandoned"
    EMAIL_DELIVERED = "email_delivered"
    EMAIL_OPENED = "email_opened"
    EMAIL_CLICKED = "email_clicked"
    EMAIL_UNSUBSCRIBED = "email_unsubscribed"
    EMAIL_BOUNCED = "email_bounced"
    EMAIL_SPAM_COMPLAINT = "email_spam_complaint"
    MEETING_BOOKED = "meeting_booked"
    MEETING_CANCELLED = "meeting_cancelled"
    PURCHASE = "purchase"
    SUBSCRIPTION_STARTED = "subscription_started"
    SUBSCRIPTION_RENEWED = "subscription_renewed"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled"
    DEAL_STAGE_CHANGED = "deal_stage_changed"
    LEAD_AD_SUBMITTED = "lead_ad_submitted"
    # Sales took the lead in the CRM (a lead status or lifecycle stage set there).
    SALES_ACCEPTED = "sales_accepted"
    # Sales ruled the lead out in the CRM (its lead status set to unqualified there).
    SALES_DISQUALIFIED = "sales_disqualified"
    # The person's record changed owner in the CRM (a rep or a manager reassigned it).
    CRM_OWNER_CHANGED = "crm_owner_changed"
    # The CRM merged the person's record with others (duplicates): one record is left.
    CRM_RECORD_MERGED = "crm_record_merged"
    # The person's record was deleted in the CRM.
    CRM_RECORD_DELETED = "crm_record_deleted"
    # A rep worked the person in the CRM: a call logged, a task completed.
    SALES_ACTIVITY = "sales_activity"
    # The person confirmed the marketing consent a double opt-in form asked for.
    CONSENT_CONFIRMED = "consent_confirmed"


EMAIL_ENGAGEMENT = frozenset(
    {
        EventType.EMAIL_DELIVERED,
        EventType.EMAIL_OPENED,
        EventType.EMAIL_CLICKED,
        EventType.EMAIL_UNSUBSCRIBED,
        EventType.EMAIL_BOUNCED,
        EventType.EMAIL_SPAM_COMPLAINT,
    }
)
WEB_ACTIVITY = frozenset({EventType.PAGE, EventType.SCREEN})
# The CRM deal stages that mean the deal was won (HubSpot's `closedwon`, Salesforce's, ours).
WON_DEAL_STAGES = frozenset({"closedwon", "closed_won", "won"})
# ... and lost (`Closed Lost` in Salesforce is `closed_lost` once keyed).
LOST_DEAL_STAGES = frozenset({"closedlost", "closed_lost", "lost"})

# Keys whose values identify a person. They stay in PostgreSQL; what goes to Temporal is stripped.
PII_KEYS = frozenset(
    {
        "email",
        "name",
        "first_name",
        "firstname",
        "firstName",
        "last_name",
        "lastname",
        "lastName",
        "phone",
        "phone_number",
        "mobile",
        "address",
        "street",
        "ip",
        "birthday",
        "avatar",
        "username",
        "userAgent",
        "user_agent",
        "password",
    }
)


class Touch(BaseModel):
    """Where an event came from: campaign parameters, page, referrer."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    term: str | None = None
    referrer: str | None = None
    landing_page: str | None = None
    path: str | None = None

    def is_empty(self) -> bool:
        return not any(self.model_dump().values())


class LeadEvent(BaseModel):
    """A fact about a lead as its workflow sees it: ids, type, time, PII-free properties."""

    event_id: str
    type: EventType
    source: str
    occurred_at: datetime
    name: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    touch: Touch = Field(default_factory=Touch)
    # For form submissions: the row the activities read the contact details from.
    submission_id: str | None = None
    form_id: str | None = None
    consent: bool | None = None
    welcome_list: str | None = None
    # Set when the event revealed the lead's email: the workflow keeps its EmailHash up to date.
    email_hash: str | None = None


def strip_pii(values: dict[str, Any], *, depth: int = 0) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key in PII_KEYS:
            continue
        if isinstance(value, dict):
            if depth < 3:
                clean[key] = strip_pii(value, depth=depth + 1)
        elif isinstance(value, str | int | float | bool) or value is None:
            clean[key] = value
        elif isinstance(value, list):
            clean[key] = [v for v in value[:50] if isinstance(v, str | int | float | bool)]
    return clean


def corrected_timestamp(
    received_at: datetime,
    *,
    timestamp: datetime | None,
    sent_at: datetime | None,
    original_timestamp: datetime | None,
) -> datetime:
    """Segment's clock-skew correction: `timestamp = receivedAt - (sentAt - originalTimestamp)`.

    A device whose clock is off shifts both `sentAt` and the event's own time by the same amount,
    so their difference is true; anchored on the server's `receivedAt`, it gives the true time.
    Without `sentAt` there is nothing to correct with: the client's time is taken as it is.
    """
    client_time = original_timestamp or timestamp
    if client_time is None:
        return received_at
    if sent_at is None:
        return client_time
    delay = sent_at - client_time
    if delay < timedelta(0):
        delay = timedelta(0)
    return received_at - delay


def touch_from_context(context: dict[str, Any], properties: dict[str, Any] | None = None) -> Touch:
    campaign: dict[str, Any] = context["campaign"] if isinstance(context.get("campaign"), dict) else {}
    page: dict[str, Any] = context["page"] if isinstance(context.get("page"), dict) else {}
    properties = properties or {}

    def pick(mapping: dict[str, Any], *keys: str) -> str | None:
        for key in keys:
            value = mapping.get(key)
            if isinstance(value, str) and value:
                return value[:500]
        return None

    return Touch(
        source=pick(campaign, "source") or pick(properties, "utm_source"),
        medium=pick(campaign, "medium") or pick(properties, "utm_medium"),
        campaign=pick(campaign, "name", "campaign") or pick(properties, "utm_campaign"),
        content=pick(campaign, "content") or pick(properties, "utm_content"),
        term=pick(campaign, "term") or pick(properties, "utm_term"),
        referrer=pick(page, "referrer") or pick(properties, "referrer"),
        landing_page=pick(page, "url") or pick(properties, "url"),
        path=pick(page, "path") or pick(properties, "path"),
    )


@dataclass
class IncomingEvent:
    """An event on its way into the store: the journey's view plus what identity resolution needs."""

    source: str
    message_id: str
    lead_event: LeadEvent
    received_at: datetime
    payload: dict[str, Any]
    anonymous_id: str | None = None
    user_id: str | None = None
    email: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    consent: bool | None = None
    group_id: str | None = None
    group_traits: dict[str, Any] | None = None
    previous_id: str | None = None
    submission: dict[str, Any] | None = None
    # Ids the lead has on other platforms (a Stripe customer, a HubSpot deal): found by, and linked.
    external_ids: dict[str, str] = field(default_factory=dict)
    # Ids the platform no longer has (records merged away or deleted), as (kind, value): the event
    # belongs to the lead they were linked to (two such leads are one person and are merged), and
    # the links are removed once it is recorded.
    retired_ids: list[tuple[str, str]] = field(default_factory=list)
