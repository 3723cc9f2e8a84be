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
from datetime import UTC, datetime
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
PERSON_IDENTITY = "salesforce_contact"
# Id prefixes: users (a record's owner; a queue's is 00G), and the person objects a task is about.
USER_PREFIX = "005"
PERSON_PREFIXES = {"Lead": "00Q", "Contact": "003"}


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
    history: str, row: dict[str, Any], record_id: str
) -> tuple[EventType, str, dict[str, Any]] | None:
    field, value = str(row.get("Field")), row.get("NewValue")
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
    if field == "Owner":
        # An owner change is two rows: the names (DataType Text) and the ids (EntityId), read here.
        if row.get("DataType") != "EntityId":
            return None
        owner = value if isinstance(value, str) and value.startswith(USER_PREFIX) else None
        return (
            EventType.CRM_OWNER_CHANGED,
            f"Owner={value}",
            # A queue (00G) owns no lead as a person does: the record is unassigned for the engine.
            {"crm_owner_id": owner, "owner_kind": "user" if owner else "queue"},
        )
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
        mapped = _mapped(history, row, record_id)
        if mapped is None:
            continue
        kind, name, properties = mapped
        external = "salesforce_deal" if history == DEAL_HISTORY[0] else PERSON_IDENTITY
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


def _stamp(row: dict[str, Any], index: int, name: str = "SystemModstamp") -> datetime:
    try:
        return salesforce_time({"CreatedDate": row.get(name)})
    except PayloadError:
        raise PayloadError(f"records.{index}.{name}", "a Salesforce datetime with its offset") from None


def _row_id(row: dict[str, Any], index: int, name: str = "Id") -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"records.{index}.{name}", "a Salesforce record id")
    return value


def salesforce_removals(
    sobject: str,
    rows: list[dict[str, Any]],
    *,
    own_user_id: str | None,
    received_at: datetime,
    new_id: NewId,
) -> tuple[list[IncomingEvent], list[tuple[str, datetime]]]:
    """The person records deleted since the cursor (read with `queryAll`, the recycle bin): a
    record deleted by a merge names the record it was merged into (`MasterRecordId`)."""
    events: list[IncomingEvent] = []
    read: list[tuple[str, datetime]] = []
    for index, row in enumerate(rows):
        record_id, at = _row_id(row, index), _stamp(row, index)
        read.append((record_id, at))
        if own_user_id is not None and row.get("LastModifiedById") == own_user_id:
            continue
        master = row.get("MasterRecordId")
        if isinstance(master, str) and master:
            kind, name = EventType.CRM_RECORD_MERGED, f"{sobject} merged"
            properties: dict[str, Any] = {"contact_id": master, "merged_ids": [record_id]}
            external = {PERSON_IDENTITY: master}
        else:
            kind, name = EventType.CRM_RECORD_DELETED, f"{sobject} deleted"
            properties, external = {"contact_id": record_id, "privacy": False}, {}
        events.append(
            inbound_event(
                provider=SALESFORCE_PROVIDER,
                channel=POLL_CHANNEL,
                message_id=f"{sobject}:deleted:{record_id}",
                kind=kind,
                occurred_at=at,
                received_at=received_at,
                payload={"sobject": sobject, "Id": record_id, "MasterRecordId": master},
                new_id=new_id,
                name=name,
                properties={**properties, "changed_by": row.get("LastModifiedById")},
                external_ids=external,
                retired_ids=[(PERSON_IDENTITY, record_id)],
            )
        )
    return events, read


def _seconds(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def salesforce_activities(
    person_object: str,
    rows: list[dict[str, Any]],
    *,
    own_user_id: str | None,
    received_at: datetime,
    new_id: NewId,
) -> tuple[list[IncomingEvent], list[tuple[str, datetime]]]:
    """Tasks closed since the cursor (a call a rep logged is a closed task of subtype Call):
    each one about a person of the engine's person object is a rep working that person."""
    prefix = PERSON_PREFIXES[person_object]
    events: list[IncomingEvent] = []
    read: list[tuple[str, datetime]] = []
    for index, row in enumerate(rows):
        task_id, at = _row_id(row, index), _stamp(row, index)
        read.append((task_id, at))
        who = row.get("WhoId")
        if not isinstance(who, str) or not who.startswith(prefix):
            continue  # about no one, or about a record the engine does not follow
        if own_user_id is not None and row.get("LastModifiedById") == own_user_id:
            continue
        call = row.get("TaskSubtype") == "Call"
        completed = _stamp(row, index, "CompletedDateTime") if row.get("CompletedDateTime") else at
        events.append(
            inbound_event(
                provider=SALESFORCE_PROVIDER,
                channel=POLL_CHANNEL,
                message_id=f"Task:{task_id}:closed",
                kind=EventType.SALES_ACTIVITY,
                occurred_at=completed,
                received_at=received_at,
                payload={"sobject": "Task", "Id": task_id, "WhoId": who},
                new_id=new_id,
                name="call logged" if call else "task completed",
                properties={
                    "activity": "call" if call else "task",
                    "record_id": task_id,
                    "rep_crm_id": row.get("OwnerId"),
                    "direction": row.get("CallType"),
                    "disposition": row.get("CallDisposition"),
                    "duration_seconds": _seconds(row.get("CallDurationInSeconds")),
                },
                external_ids={PERSON_IDENTITY: who},
            )
        )
    return events, read


# --- HubSpot: tasks and calls, read through the CRM search (its webhooks do not cover them) ------

HUBSPOT_PROVIDER = "hubspot"
HUBSPOT_CONTACT = "hubspot_contact"
# The object types read and the property saying the engagement is done.
HUBSPOT_ACTIVITY_STATUS = {"tasks": ("hs_task_status", "COMPLETED"), "calls": ("hs_call_status", "COMPLETED")}


def hubspot_time(value: Any, where: str) -> datetime:
    """A HubSpot datetime property: ISO 8601 in v3 answers (epoch ms in some older ones)."""
    text = str(value or "")
    try:
        parsed = (
            datetime.fromtimestamp(int(text) / 1000, UTC)
            if text.isdigit()
            else datetime.fromisoformat(text.replace("Z", "+00:00"))
        )
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PayloadError(where, "a HubSpot datetime")
    return parsed


def hubspot_activities(
    object_type: str,
    records: list[dict[str, Any]],
    contacts: dict[str, list[str]],
    *,
    received_at: datetime,
    new_id: NewId,
) -> tuple[list[IncomingEvent], list[tuple[str, datetime]]]:
    """Completed tasks and calls (`records`, as the search answers them, with each one's associated
    contacts in `contacts`): one rep activity for each contact it is about. The engine creates
    tasks open and logs no calls, so a completed one is a rep's."""
    status_property, done = HUBSPOT_ACTIVITY_STATUS[object_type]
    activity = "call" if object_type == "calls" else "task"
    events: list[IncomingEvent] = []
    read: list[tuple[str, datetime]] = []
    for index, record in enumerate(records):
        record_id = str(record.get("id") or "")
        if not record_id.isdigit():
            raise PayloadError(f"results.{index}.id", "a HubSpot object id")
        properties = record.get("properties")
        if not isinstance(properties, dict):
            raise PayloadError(f"results.{index}.properties", "must be an object")
        where = f"results.{index}.properties"
        at = hubspot_time(properties.get("hs_lastmodifieddate"), f"{where}.hs_lastmodifieddate")
        read.append((f"{object_type}:{record_id}", at))
        if properties.get(status_property) != done:
            continue
        when = properties.get("hs_timestamp")
        occurred = hubspot_time(when, f"{where}.hs_timestamp") if when else at
        for contact in contacts.get(record_id, []):
            events.append(
                inbound_event(
                    provider=HUBSPOT_PROVIDER,
                    channel=POLL_CHANNEL,
                    message_id=f"{object_type}:{record_id}:{contact}",
                    kind=EventType.SALES_ACTIVITY,
                    occurred_at=min(occurred, at),
                    received_at=received_at,
                    payload={"objectType": object_type, "Id": f"{object_type}:{record_id}"},
                    new_id=new_id,
                    name="call logged" if activity == "call" else "task completed",
                    properties={
                        "activity": activity,
                        "record_id": record_id,
                        "rep_crm_id": properties.get("hubspot_owner_id"),
                        "direction": properties.get("hs_call_direction"),
                        "disposition": properties.get("hs_call_disposition"),
                        "duration_seconds": _hubspot_duration(properties.get("hs_call_duration")),
                    },
                    external_ids={HUBSPOT_CONTACT: contact},
                )
            )
    return events, read


def _hubspot_duration(value: Any) -> int | None:
    """`hs_call_duration` is in milliseconds."""
    text = str(value or "")
    return int(text) // 1000 if text.isdigit() else None
