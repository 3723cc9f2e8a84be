"""Email engagement the platforms report, read incrementally: the poll cursor, and each platform's
events mapped onto the internal model.

A poller reads a platform's events in time order from its cursor. Platforms index events a little
after they happen, so each read starts `overlap` before the newest event already read; the events
of that overlap that were read before are known by id and skipped, and ingestion dedupes on the
platform's event id as well, so an event is counted once however often it is read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.events import EventType, IncomingEvent
from domain.ids import normalize_email
from domain.webhooks import PayloadError, inbound_event

NewId = Callable[[], str]

# Ids kept to skip what the overlap re-reads; beyond this the dedupe in ingestion still holds.
MAX_RECENT_IDS = 2000


def _newest(recent: dict[str, datetime]) -> dict[str, datetime]:
    """The ids read most recently, at most MAX_RECENT_IDS of them."""
    if len(recent) <= MAX_RECENT_IDS:
        return recent
    return dict(sorted(recent.items(), key=lambda item: item[1])[-MAX_RECENT_IDS:])


class PollCursor(BaseModel):
    """Where a platform's event poll stands: the newest event time read, and the ids read within
    the overlap before it (so a re-read of the overlap is skipped, not recorded again)."""

    since: datetime
    recent: dict[str, datetime] = Field(default_factory=dict)
    # A window read in pages by offset (HubSpot's events come newest first): while it is unfinished
    # its end and the next page are kept, and `since` moves only once the whole window is read, so
    # a poll stopped at its page limit never skips the older events still unread.
    window_to: datetime | None = None
    page: str | None = None

    def read_from(self, overlap: timedelta) -> datetime:
        return self.since - overlap

    def advance(self, events: list[tuple[str, datetime]], overlap: timedelta) -> tuple[PollCursor, set[str]]:
        """The cursor after reading `events` (id, time), and the ids among them that are new."""
        fresh = {event_id for event_id, _ in events if event_id not in self.recent}
        newest = max([self.since, *(at for _, at in events)])
        keep_from = newest - overlap
        recent = {i: at for i, at in self.recent.items() if at >= keep_from}
        recent.update({i: at for i, at in events if at >= keep_from})
        return PollCursor(since=newest, recent=_newest(recent)), fresh

    def in_window(
        self, events: list[tuple[str, datetime]], overlap: timedelta, window_to: datetime, page: str | None
    ) -> tuple[PollCursor, set[str]]:
        """The cursor after one page of the window ending `window_to`, `page` the next one (None:
        the window is read). The ids read are remembered at once; `since` waits for the window's end."""
        fresh = {event_id for event_id, _ in events if event_id not in self.recent}
        recent = {**self.recent, **dict(events)}
        if page is not None:
            return PollCursor(since=self.since, recent=_newest(recent), window_to=window_to, page=page), fresh
        # The window is read: the cursor moves to its newest event, as a read in time order does.
        done, _ = PollCursor(since=self.since).advance(list(recent.items()), overlap)
        return done, fresh


class PollResult(BaseModel):
    """One poll: the cursor to continue from, and what it read and recorded."""

    cursor: PollCursor
    read: int = 0
    recorded: int = 0
    duplicates: int = 0
    unknown_recipients: int = 0
    more: bool = False  # stopped at its page limit: poll again at once


class EngagementPollStatus(BaseModel):
    """What a poller has done, for ops (the `status` query): carried across continue-as-new."""

    cursor_since: datetime | None = None
    polls: int = 0
    failed_polls: int = 0
    read: int = 0
    recorded: int = 0
    duplicates: int = 0
    last_error: str | None = None


class EngagementPollInput(BaseModel):
    provider: Literal["klaviyo", "hubspot", "salesforce", "hubspot-crm"]
    cursor: PollCursor | None = None
    status: EngagementPollStatus | None = None
    interval_seconds: float = Field(10.0, gt=0)
    # Polls before the run continues as new (its history stays short).
    polls_per_run: int = Field(200, ge=1)


ENGAGEMENT_POLL_WORKFLOW = "EngagementPoll"
HUBSPOT_CRM_POLL = "hubspot-crm"
# Each polled platform's poll activity.
POLL_ACTIVITIES = {
    "klaviyo": "engagement.poll_klaviyo",
    "hubspot": "engagement.poll_hubspot",
    # Not email engagement, but the same durable poll: a CRM's changes (domain.crm_changes).
    "salesforce": "crm_changes.poll_salesforce",
    # HubSpot's CRM calls in by webhook, except for reps' tasks and calls, read through its search.
    HUBSPOT_CRM_POLL: "crm_changes.poll_hubspot",
}


def poller_workflow_id(provider: str) -> str:
    return f"engagement-poll-{provider}"


# --- Klaviyo: GET /api/events (https://developers.klaviyo.com/en/reference/get_events) ---------

# Klaviyo's own email metrics (the names it gives them in every account), as the internal types.
# Unsubscribes are "Unsubscribed from Email Marketing"; accounts from before 2023 still report
# "Unsubscribed" as well.
KLAVIYO_METRICS: dict[str, EventType] = {
    "Received Email": EventType.EMAIL_DELIVERED,
    "Opened Email": EventType.EMAIL_OPENED,
    "Clicked Email": EventType.EMAIL_CLICKED,
    "Bounced Email": EventType.EMAIL_BOUNCED,
    "Marked Email as Spam": EventType.EMAIL_SPAM_COMPLAINT,
    "Unsubscribed from Email Marketing": EventType.EMAIL_UNSUBSCRIBED,
    "Unsubscribed": EventType.EMAIL_UNSUBSCRIBED,
}
KLAVIYO_PROVIDER = "klaviyo"
POLL_CHANNEL = "poll"


def klaviyo_event_time(item: dict[str, Any]) -> datetime:
    attributes = item.get("attributes")
    if not isinstance(attributes, dict):
        raise PayloadError("data[].attributes", "an event has attributes")
    value = attributes.get("datetime")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    raise PayloadError("data[].attributes.datetime", "must be an ISO 8601 time with its offset")


def _included(page: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    items = page.get("included") or []
    return {
        str(item.get("id")): item
        for item in items
        if isinstance(item, dict) and item.get("type") == kind and item.get("id") is not None
    }


def _related_id(item: dict[str, Any], name: str) -> str | None:
    data = ((item.get("relationships") or {}).get(name) or {}).get("data")
    return str(data["id"]) if isinstance(data, dict) and data.get("id") is not None else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def klaviyo_engagement(
    page: dict[str, Any], received_at: datetime, new_id: NewId
) -> tuple[list[IncomingEvent], int]:
    """The email engagement in one page of `GET /api/events?include=metric,profile`, and how many
    engagement events named no profile with an email (a phone-only profile: not a lead here).

    Other metrics (orders, our own sequence-email triggers) are not engagement and are left out."""
    data = page.get("data")
    if not isinstance(data, list):
        raise PayloadError("data", "an events page is a list")
    metrics = _included(page, "metric")
    profiles = _included(page, "profile")
    events: list[IncomingEvent] = []
    no_email = 0
    for item in data:
        if not isinstance(item, dict) or not item.get("id"):
            raise PayloadError("data[].id", "every event has its id")
        metric_id = _related_id(item, "metric")
        metric = metrics.get(metric_id or "", {})
        name = (metric.get("attributes") or {}).get("name")
        kind = KLAVIYO_METRICS.get(name) if isinstance(name, str) else None
        if kind is None:
            continue
        profile = profiles.get(_related_id(item, "profile") or "", {})
        email = _text((profile.get("attributes") or {}).get("email"))
        if email is None or "@" not in email:
            no_email += 1
            continue
        attributes = item["attributes"]
        properties = attributes.get("event_properties")
        properties = properties if isinstance(properties, dict) else {}
        events.append(
            inbound_event(
                provider=KLAVIYO_PROVIDER,
                channel=POLL_CHANNEL,
                message_id=str(item["id"]),
                kind=kind,
                occurred_at=klaviyo_event_time(item),
                received_at=received_at,
                payload={"type": "event", "id": item["id"], "metric": name},
                new_id=new_id,
                email=email,
                name=_text(properties.get("Subject")),
                properties={
                    "metric": name,
                    "message": _text(properties.get("$message")),
                    "flow": _text(properties.get("$flow")),
                    "campaign": _text(properties.get("Campaign Name")),
                    "url": _text(properties.get("URL")),
                    "bounce_type": _text(properties.get("Bounce Type")),
                },
                external_ids={"klaviyo_profile": str(profile.get("id") or "")},
            )
        )
    return events, no_email


# --- HubSpot: GET /email/public/v1/events (the legacy Email Events API, still the only read of
# marketing email events per recipient; developers.hubspot.com/docs/api-reference/legacy/
# email-analytics-v1/guide) ------------------------------------------------------------------

HUBSPOT_PROVIDER = "hubspot"
# Event types that are engagement. BOUNCE counts only as a hard bounce (HubSpot stops mailing the
# address); STATUSCHANGE only when it unsubscribes the recipient.
HUBSPOT_TYPES: dict[str, EventType] = {
    "DELIVERED": EventType.EMAIL_DELIVERED,
    "OPEN": EventType.EMAIL_OPENED,
    "CLICK": EventType.EMAIL_CLICKED,
    "BOUNCE": EventType.EMAIL_BOUNCED,
    "SPAMREPORT": EventType.EMAIL_SPAM_COMPLAINT,
    "STATUSCHANGE": EventType.EMAIL_UNSUBSCRIBED,
}
HARD_BOUNCE = "HARD_BOUNCE"
# The app HubSpot names on a bulk marketing email sent from its own UI: engagement with it is the
# platform's (the engine sends through the single-send API).
HUBSPOT_BULK_APP = "Batch"


def hubspot_event_time(item: dict[str, Any]) -> datetime:
    created = item.get("created")
    if isinstance(created, bool) or not isinstance(created, int) or created <= 0:
        raise PayloadError("events[].created", "milliseconds since the epoch")
    return datetime.fromtimestamp(created / 1000, tz=UTC)


def _unsubscribes(item: dict[str, Any]) -> bool:
    if item.get("portalSubscriptionStatus") == "UNSUBSCRIBED":
        return True
    subscriptions = item.get("subscriptions")
    return isinstance(subscriptions, list) and any(
        isinstance(s, dict) and s.get("status") == "UNSUBSCRIBED" for s in subscriptions
    )


def hubspot_email_engagement(
    page: dict[str, Any], received_at: datetime, new_id: NewId
) -> tuple[list[IncomingEvent], list[tuple[str, datetime]]]:
    """The engagement in one page of `GET /email/public/v1/events`, and every event's (id, time)
    in it (for the cursor, engagement or not)."""
    items = page.get("events")
    if not isinstance(items, list):
        raise PayloadError("events", "an events page carries a list of events")
    read: list[tuple[str, datetime]] = []
    mapped: list[IncomingEvent] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise PayloadError(f"events.{index}.id", "every event has its id")
        at = hubspot_event_time(item)
        read.append((item["id"], at))
        kind = HUBSPOT_TYPES.get(str(item.get("type")))
        if kind is None:
            continue
        if item["type"] == "BOUNCE" and item.get("category") != HARD_BOUNCE:
            continue
        if item["type"] == "STATUSCHANGE" and not _unsubscribes(item):
            continue
        recipient = _text(item.get("recipient"))
        if recipient is None or "@" not in recipient:
            raise PayloadError(f"events.{index}.recipient", "an email event names its recipient")
        email = normalize_email(recipient)
        campaign = item.get("emailCampaignId")
        bulk = item.get("appName") == HUBSPOT_BULK_APP
        mapped.append(
            inbound_event(
                provider=HUBSPOT_PROVIDER,
                channel=POLL_CHANNEL,
                message_id=item["id"],
                kind=kind,
                occurred_at=at,
                received_at=received_at,
                payload={"type": item["type"], "id": item["id"], "emailCampaignId": campaign},
                new_id=new_id,
                email=email,
                properties={
                    key: value
                    for key, value in {
                        "hubspot_type": item["type"],
                        "email_campaign_id": str(campaign) if campaign is not None else None,
                        # A bulk email from HubSpot's UI: a marketer's campaign, not the engine's send.
                        "campaign": str(campaign) if bulk and campaign is not None else None,
                        "url": _text(item.get("url")),
                        "bounce_type": "hard" if item["type"] == "BOUNCE" else None,
                        "sent_by": _text((item.get("sentBy") or {}).get("id")),
                    }.items()
                    if value is not None
                },
            )
        )
    return mapped, read
