"""CRM changes read incrementally (Salesforce has no webhooks of its own for them): the engine
reads the field history of the tracked fields since its cursor (`LeadHistory`, `ContactHistory`,
`OpportunityFieldHistory`: each change with its new value and who made it) and maps what a rep
did: working the person (its Lead Status), ruling it out, a deal's stage and amount. The engine's
own writes are in the history too, made as its integration user (`CreatedById`), and are left out.

History rows rather than the records themselves: a record read as it is now can hide a rep's
change behind the engine's next write to it (`LastModifiedById` is then the engine's), and its
`SystemModstamp` has a second's resolution. A history row is one change, its id the event's key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.events import EventType, IncomingEvent
from domain.webhooks import DEAL_AMOUNT_EVENT, PayloadError, inbound_event

NewId = Callable[[], str]
SALESFORCE_PROVIDER = "salesforce"
POLL_CHANNEL = "poll"
# Lead Status values that mean a rep is working the person (a new org's picklist) ...
SALESFORCE_ACCEPTING = frozenset({"Working - Contacted"})
# ... and ruling the person out.
SALESFORCE_DISQUALIFYING = frozenset({"Closed - Not Converted"})
# Each history object and the field naming the record it is about.
HISTORY = {"Lead": ("LeadHistory", "LeadId"), "Contact": ("ContactHistory", "ContactId")}
DEAL_HISTORY = ("OpportunityFieldHistory", "OpportunityId")


def salesforce_time(row: dict[str, Any]) -> datetime:
    value = row.get("CreatedDate")
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PayloadError("records[].CreatedDate", "a Salesforce datetime with its offset")
    return parsed


def stage_key(stage: str) -> str:
    """A Salesforce stage as the engine compares stages: `Closed Won` -> `closed_won`."""
    return "_".join(stage.strip().lower().replace("/", " ").split())


def _mapped(
    history: str, field: str, value: Any, record_id: str
) -> tuple[EventType, str, dict[str, Any]] | None:
    if history == DEAL_HISTORY[0]:
        if field == "StageName" and isinstance(value, str) and value:
            key = stage_key(value)
            return (
                EventType.DEAL_STAGE_CHANGED,
                key,
                {"deal_id": record_id, "stage": key, "stage_label": value},
            )
        if field == "Amount" and isinstance(value, int | float) and not isinstance(value, bool):
            return EventType.TRACK, DEAL_AMOUNT_EVENT, {"deal_id": record_id, "amount": float(value)}
        return None
    if field == "Status" and value in SALESFORCE_ACCEPTING:
        kind = EventType.SALES_ACCEPTED
    elif field == "Status" and value in SALESFORCE_DISQUALIFYING:
        kind = EventType.SALES_DISQUALIFIED
    else:
        return None
    return kind, f"Status={value}", {"property": "Status", "value": value}


def salesforce_changes(
    history: str,
    parent: str,
    rows: list[dict[str, Any]],
    *,
    own_user_id: str | None,
    received_at: datetime,
    new_id: NewId,
) -> tuple[list[IncomingEvent], list[tuple[str, datetime]]]:
    """The rep-made changes among the `history` rows (`parent` names their record), and every
    row's (id, time) for the cursor."""
    events: list[IncomingEvent] = []
    read: list[tuple[str, datetime]] = []
    for index, row in enumerate(rows):
        row_id, record_id = row.get("Id"), row.get(parent)
        if not isinstance(row_id, str) or not row_id:
            raise PayloadError(f"records.{index}.Id", "every history row has its Id")
        if not isinstance(record_id, str) or not record_id:
            raise PayloadError(f"records.{index}.{parent}", "a history row names its record")
        at = salesforce_time(row)
        read.append((row_id, at))
        if own_user_id is not None and row.get("CreatedById") == own_user_id:
            continue  # the engine's own write, read back
        mapped = _mapped(history, str(row.get("Field")), row.get("NewValue"), record_id)
        if mapped is None:
            continue
        kind, name, properties = mapped
        external = "salesforce_deal" if history == DEAL_HISTORY[0] else "salesforce_contact"
        events.append(
            inbound_event(
                provider=SALESFORCE_PROVIDER,
                channel=POLL_CHANNEL,
                message_id=f"{history}:{row_id}",
                kind=kind,
                occurred_at=at,
                received_at=received_at,
                payload={"sobject": history, "Id": row_id, parent: record_id, "Field": row.get("Field")},
                new_id=new_id,
                name=name,
                properties={"record_id": record_id, "changed_by": row.get("CreatedById"), **properties},
                external_ids={external: record_id},
            )
        )
    return events, read
