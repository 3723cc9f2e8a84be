"""Segment's HTTP Tracking API messages: what an unmodified Segment library sends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.events import (
    EventType,
    IncomingEvent,
    LeadEvent,
    corrected_timestamp,
    strip_pii,
    touch_from_context,
)
from domain.ids import email_hash

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
_ID_MAX = 255


def _as_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string or a number")
    text = str(value)
    if len(text) > _ID_MAX:
        raise ValueError(f"must be at most {_ID_MAX} characters")
    return text


class SegmentMessage(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: MessageType
    message_id: str | None = Field(None, alias="messageId")
    anonymous_id: str | None = Field(None, alias="anonymousId")
    user_id: str | None = Field(None, alias="userId")
    group_id: str | None = Field(None, alias="groupId")
    previous_id: str | None = Field(None, alias="previousId")
    event: str | None = Field(None, max_length=_ID_MAX)
    name: str | None = Field(None, max_length=_ID_MAX)
    category: str | None = Field(None, max_length=_ID_MAX)
    timestamp: datetime | None = None
    sent_at: datetime | None = Field(None, alias="sentAt")
    original_timestamp: datetime | None = Field(None, alias="originalTimestamp")
    context: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)

    _ids = field_validator("message_id", "anonymous_id", "user_id", "group_id", "previous_id", mode="before")(
        _as_id
    )

    @field_validator("timestamp", "sent_at", "original_timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("context", "properties", "traits", "integrations", mode="before")
    @classmethod
    def _object_or_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    def all_traits(self) -> dict[str, Any]:
        """Segment lets traits ride in `context.traits` on any call as well."""
        context_traits = self.context.get("traits")
        merged = dict(context_traits) if isinstance(context_traits, dict) else {}
        merged.update(self.traits)
        return merged


def _problems(message: SegmentMessage) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if message.type != "alias" and not (message.user_id or message.anonymous_id):
        problems.append(("userId", "either userId or anonymousId is required"))
    if message.type == "track" and not message.event:
        problems.append(("event", "is required for a track call"))
    if message.type == "group" and not message.group_id:
        problems.append(("groupId", "is required for a group call"))
    if message.type == "alias":
        if not message.previous_id:
            problems.append(("previousId", "is required for an alias call"))
        if not message.user_id:
            problems.append(("userId", "is required for an alias call"))
    return problems


def parse_message(raw: Any, loc: list[str | int]) -> tuple[SegmentMessage | None, list[dict[str, Any]]]:
    """Validates one message; errors come back FastAPI-style, each naming its field."""
    if not isinstance(raw, dict):
        return None, [{"loc": loc, "msg": "must be a JSON object", "type": "type_error"}]
    try:
        message = SegmentMessage.model_validate(raw)
    except ValidationError as exc:
        return None, [
            {
                "loc": [*loc, *[_camel(str(part)) for part in error["loc"]]],
                "msg": error["msg"],
                "type": error["type"],
            }
            for error in exc.errors(include_url=False)
        ]
    problems = _problems(message)
    if problems:
        return None, [{"loc": [*loc, field], "msg": msg, "type": "missing"} for field, msg in problems]
    return message, []


_CAMEL = {
    "message_id": "messageId",
    "anonymous_id": "anonymousId",
    "user_id": "userId",
    "group_id": "groupId",
    "previous_id": "previousId",
    "sent_at": "sentAt",
    "original_timestamp": "originalTimestamp",
}


def _camel(name: str) -> str:
    return _CAMEL.get(name, name)


# Segment's semantic events (Email and E-commerce specs) that journeys treat as their own types.
SPEC_EVENTS: dict[str, EventType] = {
    "email delivered": EventType.EMAIL_DELIVERED,
    "email opened": EventType.EMAIL_OPENED,
    "email link clicked": EventType.EMAIL_CLICKED,
    "unsubscribed": EventType.EMAIL_UNSUBSCRIBED,
    "email bounced": EventType.EMAIL_BOUNCED,
    "email marked as spam": EventType.EMAIL_SPAM_COMPLAINT,
    "order completed": EventType.PURCHASE,
    "form abandoned": EventType.FORM_ABANDONED,
}
_TYPES = {
    "identify": EventType.IDENTIFY,
    "page": EventType.PAGE,
    "screen": EventType.SCREEN,
    "group": EventType.GROUP,
    "alias": EventType.ALIAS,
}


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:255]
    return None


def profile_from_traits(traits: dict[str, Any]) -> dict[str, Any]:
    """Segment's reserved traits, mapped onto the profile's columns."""
    company = traits.get("company")
    if isinstance(company, dict):
        company = company.get("name")
    return {
        key: value
        for key, value in {
            "first_name": _text(traits.get("firstName") or traits.get("first_name")),
            "last_name": _text(traits.get("lastName") or traits.get("last_name")),
            "company": _text(company),
            "job_title": _text(traits.get("title") or traits.get("job_title")),
            "phone": _text(traits.get("phone")),
        }.items()
        if value is not None
    }


def to_incoming(
    message: SegmentMessage, raw: dict[str, Any], *, received_at: datetime, event_id: str, email: str | None
) -> IncomingEvent:
    """One Segment message as the store and the lead's journey take it. `email` is already validated."""
    occurred_at = corrected_timestamp(
        received_at,
        timestamp=message.timestamp,
        sent_at=message.sent_at,
        original_timestamp=message.original_timestamp,
    )
    if message.type == "track":
        kind = SPEC_EVENTS.get((message.event or "").strip().lower(), EventType.TRACK)
        name = message.event
        properties = strip_pii(message.properties)
    elif message.type in ("page", "screen"):
        kind, name, properties = _TYPES[message.type], message.name, strip_pii(message.properties)
    elif message.type == "group":
        kind, name = EventType.GROUP, None
        properties = {**strip_pii(message.traits), "group_id": message.group_id}
    else:
        kind, name, properties = _TYPES[message.type], None, strip_pii(message.traits)
    if message.category:
        properties["category"] = message.category
    traits = message.all_traits() if message.type == "identify" else {}
    return IncomingEvent(
        source="segment",
        message_id=message.message_id or f"generated-{event_id}",
        lead_event=LeadEvent(
            event_id=event_id,
            type=kind,
            source="segment",
            occurred_at=occurred_at,
            name=name,
            properties=properties,
            touch=touch_from_context(message.context, message.properties),
            email_hash=email_hash(email) if email else None,
        ),
        received_at=received_at,
        payload={**raw, "receivedAt": received_at.isoformat()},
        anonymous_id=message.anonymous_id,
        user_id=message.user_id,
        email=email,
        profile=profile_from_traits(traits),
        traits=traits,
        group_id=message.group_id if message.type == "group" else None,
        group_traits=message.traits if message.type == "group" else None,
        previous_id=message.previous_id if message.type == "alias" else None,
    )


def email_of(message: SegmentMessage) -> tuple[str | None, str | None]:
    """The email in the message's traits, normalized; or the reason it is not an email."""
    from email_validator import EmailNotValidError, validate_email

    raw = message.all_traits().get("email")
    if raw is None or raw == "":
        return None, None
    if not isinstance(raw, str):
        return None, "must be a string"
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower(), None
    except EmailNotValidError as exc:
        return None, str(exc)
