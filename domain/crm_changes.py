"""CRM changes read incrementally (Salesforce has no webhooks of its own for them: the engine reads
the records changed since its cursor, `SystemModstamp`, and maps what a rep did): a rep working
the person (its Lead Status), a deal's stage and amount. The engine's own writes come back too,
made as its integration user (`LastModifiedById`), and are left out.

A query gives a record as it is now, not which field changed; so an event is keyed by the record,
the field and its value (`Opportunity:<id>:StageName:Closed Won`): each value a record reaches
counts once, however often the record is read again (the overlap, other fields' changes). Limit:
a record that returns to a value it had before does not count it again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.events import EventType, IncomingEvent
from domain.webhooks import DEAL_AMOUNT_EVENT, PayloadError, inbound_event

NewId = Callable[[], str]
SALESFORCE_PROVIDER = "salesforce"
POLL_CHANNEL = "poll"
# Lead Status values that mean a rep is working the person (a new org's picklist).
SALESFORCE_ACCEPTING = frozenset({"Working - Contacted"})
PERSON_FIELDS = ("Status", "OwnerId")
DEAL_FIELDS = ("StageName", "Amount", "OwnerId")


def salesforce_time(record: dict[str, Any]) -> datetime:
    value = record.get("SystemModstamp")
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PayloadError("records[].SystemModstamp", "a Salesforce datetime with its offset")
    return parsed


def read_key(record: dict[str, Any]) -> str:
    """A record as one read of it: the same change read again has the same key. SystemModstamp
    has a second's resolution, so two changes within a second (the engine's write and a rep's)
    share it: the key holds what was read as well."""
    fields = {k: v for k, v in record.items() if k != "attributes"}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{record['Id']}@{record['SystemModstamp']}@{digest}"


def stage_key(stage: str) -> str:
    """A Salesforce stage as the engine compares stages: `Closed Won` -> `closed_won`."""
    return "_".join(stage.strip().lower().replace("/", " ").split())


def _change(
    sobject: str,
    record: dict[str, Any],
    at: datetime,
    field: str,
    value: Any,
    kind: EventType,
    name: str,
    properties: dict[str, Any],
    received_at: datetime,
    new_id: NewId,
) -> IncomingEvent:
    record_id = str(record["Id"])
    external = "salesforce_deal" if sobject == "Opportunity" else "salesforce_contact"
    return inbound_event(
        provider=SALESFORCE_PROVIDER,
        channel=POLL_CHANNEL,
        message_id=f"{sobject}:{record_id}:{field}:{value}"[:255],
        kind=kind,
        occurred_at=at,
        received_at=received_at,
        payload={"sobject": sobject, "Id": record_id, "read": read_key(record), field: value},
        new_id=new_id,
        name=name,
        properties={"record_id": record_id, "modified_by": record.get("LastModifiedById"), **properties},
        external_ids={external: record_id},
    )


def salesforce_changes(
    sobject: str,
    records: list[dict[str, Any]],
    *,
    own_user_id: str | None,
    person_object: str,
    received_at: datetime,
    new_id: NewId,
) -> tuple[list[IncomingEvent], list[tuple[str, datetime]]]:
    """The rep-made changes among `records` of `sobject`, and every record's (read key, time) for
    the cursor (the key is the record and its SystemModstamp: a later change is a new read)."""
    events: list[IncomingEvent] = []
    read: list[tuple[str, datetime]] = []
    for index, record in enumerate(records):
        record_id = record.get("Id")
        if not isinstance(record_id, str) or not record_id:
            raise PayloadError(f"records.{index}.Id", "every record has its Id")
        at = salesforce_time(record)
        read.append((read_key(record), at))
        if own_user_id is not None and record.get("LastModifiedById") == own_user_id:
            continue  # the engine's own write, read back
        found: list[tuple[str, Any, EventType, str, dict[str, Any]]] = []
        if sobject == person_object:
            status = record.get("Status")
            if isinstance(status, str) and status in SALESFORCE_ACCEPTING:
                found.append(
                    (
                        "Status",
                        status,
                        EventType.SALES_ACCEPTED,
                        f"Status={status}",
                        {"property": "Status", "value": status},
                    )
                )
        elif sobject == "Opportunity":
            stage = record.get("StageName")
            if isinstance(stage, str) and stage:
                key = stage_key(stage)
                found.append(
                    (
                        "StageName",
                        stage,
                        EventType.DEAL_STAGE_CHANGED,
                        key,
                        {"deal_id": record_id, "stage": key, "stage_label": stage},
                    )
                )
            amount = record.get("Amount")
            if isinstance(amount, int | float) and not isinstance(amount, bool):
                found.append(
                    (
                        "Amount",
                        amount,
                        EventType.TRACK,
                        DEAL_AMOUNT_EVENT,
                        {"deal_id": record_id, "amount": float(amount)},
                    )
                )
        events += [
            _change(sobject, record, at, field, value, kind, name, properties, received_at, new_id)
            for field, value, kind, name, properties in found
        ]
    return events, read
