"""What happens to a person's CRM record, and what reps do there, mapped from each CRM's own shape:
HubSpot's webhook events (an owner set, a merge, a deletion), Salesforce's field history (the
owner's two rows), its recycle bin (deleted, or merged away with `MasterRecordId`) and its closed
tasks, and HubSpot's completed tasks and calls as its CRM search answers them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.crm_changes import (
    hubspot_activities,
    salesforce_activities,
    salesforce_changes,
    salesforce_removals,
)
from domain.events import EventType
from domain.webhooks import PayloadError, hubspot_events

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ENGINE_USER = "005000000000001AAA"
REP_USER = "005000000000002AAA"
_ids = itertools.count()


def new_id() -> str:
    return f"e{next(_ids)}"


def hubspot(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "eventId": 100 + next(_ids),
        "subscriptionId": 7,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": 1_796_385_600_000,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "changeSource": "CRM_UI",
        "sourceId": "userId:8000001",
        **fields,
    }


def test_hubspot_owner_set_by_a_rep_is_an_owner_change_and_a_cleared_owner_is_none():
    [moved, cleared] = hubspot_events(
        [
            hubspot(
                "contact.propertyChange",
                objectId=1001,
                propertyName="hubspot_owner_id",
                propertyValue="71000003",
            ),
            hubspot(
                "contact.propertyChange", objectId=1001, propertyName="hubspot_owner_id", propertyValue=""
            ),
        ],
        T0,
        new_id,
        own_app_id="1160452",
    )
    assert moved.lead_event.type is EventType.CRM_OWNER_CHANGED
    assert moved.lead_event.properties["crm_owner_id"] == "71000003"
    assert moved.external_ids == {"hubspot_contact": "1001"}
    assert cleared.lead_event.properties["crm_owner_id"] is None


def test_hubspot_owner_set_by_the_engines_own_app_is_left_out():
    ours = hubspot(
        "contact.propertyChange",
        objectId=1001,
        propertyName="hubspot_owner_id",
        propertyValue="71000003",
        changeSource="INTEGRATION",
        sourceId="1160452",
    )
    assert hubspot_events([ours], T0, new_id, own_app_id="1160452") == []


@pytest.mark.parametrize(
    ("new", "retired"),
    [
        # HubSpot's merge today: a new record, both old ids gone (the primary's first).
        (1005, ["1001", "1002"]),
        # As it merged before: the primary's id kept.
        (1001, ["1002"]),
    ],
)
def test_hubspot_merge_keeps_the_record_left_and_retires_the_ones_merged_away(new, retired):
    [merged] = hubspot_events(
        [
            hubspot(
                "contact.merge",
                objectId=1001,
                primaryObjectId=1001,
                mergedObjectIds=[1002],
                newObjectId=new,
                numberOfPropertiesMoved=3,
            )
        ],
        T0,
        new_id,
    )
    assert merged.lead_event.type is EventType.CRM_RECORD_MERGED
    assert merged.external_ids == {"hubspot_contact": str(new)}
    assert merged.retired_ids == [("hubspot_contact", r) for r in retired]
    assert merged.lead_event.properties["merged_ids"] == retired


@pytest.mark.parametrize(
    ("kind", "privacy"), [("contact.deletion", False), ("contact.privacyDeletion", True)]
)
def test_hubspot_deletion_retires_the_record(kind, privacy):
    [deleted] = hubspot_events([hubspot(kind, objectId=1003)], T0, new_id)
    assert deleted.lead_event.type is EventType.CRM_RECORD_DELETED
    assert deleted.external_ids == {}
    assert deleted.retired_ids == [("hubspot_contact", "1003")]
    assert deleted.lead_event.properties["privacy"] is privacy


def test_hubspot_merge_without_the_records_merged_names_the_field():
    with pytest.raises(PayloadError) as raised:
        hubspot_events([hubspot("contact.merge", objectId=1001, primaryObjectId=1001)], T0, new_id)
    assert raised.value.field == "[0].mergedObjectIds"


def owner_rows(new: str, by: str = REP_USER) -> list[dict[str, Any]]:
    """Salesforce records an owner change twice: the users' names, then their ids."""
    common = {"LeadId": "00Q000000000001AAA", "Field": "Owner", "CreatedById": by}
    return [
        {**common, "Id": "017000000000001AAA", "DataType": "Text", "OldValue": "Integration User",
         "NewValue": "Chloe Martin", "CreatedDate": "2026-12-04T12:00:00.000+0000"},
        {**common, "Id": "017000000000002AAA", "DataType": "EntityId", "OldValue": ENGINE_USER,
         "NewValue": new, "CreatedDate": "2026-12-04T12:00:00.000+0000"},
    ]  # fmt: skip


def test_salesforce_owner_change_is_read_from_its_id_row_once():
    events, read = salesforce_changes(
        "LeadHistory", "LeadId", owner_rows(REP_USER), own_user_id=ENGINE_USER, received_at=T0, new_id=new_id
    )
    [changed] = events
    assert changed.lead_event.type is EventType.CRM_OWNER_CHANGED
    assert changed.lead_event.properties["crm_owner_id"] == REP_USER
    assert changed.external_ids == {"salesforce_contact": "00Q000000000001AAA"}
    assert len(read) == 2, "both rows move the cursor"
    [queued], _ = salesforce_changes(
        "LeadHistory", "LeadId", owner_rows("00G000000000009AAA"), own_user_id=ENGINE_USER, received_at=T0,
        new_id=new_id,
    )  # fmt: skip
    assert queued.lead_event.properties["crm_owner_id"] is None, "a queue owns no lead as a rep does"
    ours, _ = salesforce_changes(
        "LeadHistory", "LeadId", owner_rows(REP_USER, by=ENGINE_USER), own_user_id=ENGINE_USER,
        received_at=T0, new_id=new_id,
    )  # fmt: skip
    assert ours == [], "the owner the engine wrote back is not a reassignment"


def deleted_row(record_id: str, master: str | None = None, by: str = REP_USER) -> dict[str, Any]:
    return {
        "attributes": {"type": "Lead"},
        "Id": record_id,
        "MasterRecordId": master,
        "LastModifiedById": by,
        "SystemModstamp": "2026-12-04T12:00:01.000+0000",
    }


def test_salesforce_recycle_bin_rows_are_merges_and_deletions():
    events, read = salesforce_removals(
        "Lead",
        [
            deleted_row("00Q000000000002AAA", master="00Q000000000001AAA"),
            deleted_row("00Q000000000003AAA"),
            deleted_row("00Q000000000004AAA", by=ENGINE_USER),
        ],
        own_user_id=ENGINE_USER,
        received_at=T0,
        new_id=new_id,
    )
    merged, deleted = events
    assert merged.lead_event.type is EventType.CRM_RECORD_MERGED
    assert merged.external_ids == {"salesforce_contact": "00Q000000000001AAA"}
    assert merged.retired_ids == [("salesforce_contact", "00Q000000000002AAA")]
    assert deleted.lead_event.type is EventType.CRM_RECORD_DELETED
    assert deleted.retired_ids == [("salesforce_contact", "00Q000000000003AAA")]
    assert merged.message_id == "Lead:deleted:00Q000000000002AAA"
    assert [r for r, _ in read] == ["00Q000000000002AAA", "00Q000000000003AAA", "00Q000000000004AAA"]


def task_row(task_id: str, who: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Task"},
        "Id": task_id,
        "WhoId": who,
        "TaskSubtype": "Task",
        "Status": "Completed",
        "OwnerId": REP_USER,
        "LastModifiedById": REP_USER,
        "CompletedDateTime": "2026-12-04T11:59:00.000+0000",
        "SystemModstamp": "2026-12-04T12:00:02.000+0000",
        **fields,
    }


def test_salesforce_closed_tasks_about_the_person_object_are_rep_activity():
    events, read = salesforce_activities(
        "Lead",
        [
            task_row("00T000000000001AAA", "00Q000000000001AAA", TaskSubtype="Call", CallType="Outbound",
                     CallDurationInSeconds=240, CallDisposition="Connected"),
            task_row("00T000000000002AAA", "00Q000000000001AAA"),
            task_row("00T000000000003AAA", "003000000000001AAA"),
            task_row("00T000000000004AAA", None),
            task_row("00T000000000005AAA", "00Q000000000001AAA", LastModifiedById=ENGINE_USER),
        ],
        own_user_id=ENGINE_USER,
        received_at=T0,
        new_id=new_id,
    )  # fmt: skip
    call, task = events
    assert (call.lead_event.name, task.lead_event.name) == ("call logged", "task completed")
    assert call.lead_event.type is EventType.SALES_ACTIVITY
    assert call.lead_event.properties["duration_seconds"] == 240
    assert call.lead_event.occurred_at == datetime(2026, 12, 4, 11, 59, tzinfo=UTC)
    assert call.external_ids == {"salesforce_contact": "00Q000000000001AAA"}
    assert len(read) == 5


def test_hubspot_completed_tasks_and_calls_are_activity_for_each_contact_they_are_about():
    calls = [
        {
            "id": "50001",
            "properties": {
                "hs_call_status": "COMPLETED",
                "hs_call_direction": "OUTBOUND",
                "hs_call_duration": "185000",
                "hubspot_owner_id": "71000003",
                "hs_timestamp": "2026-12-04T11:58:00Z",
                "hs_lastmodifieddate": "2026-12-04T12:00:00.120Z",
            },
        },
        {
            "id": "50002",
            "properties": {"hs_call_status": "CANCELED", "hs_lastmodifieddate": "2026-12-04T12:00:01Z"},
        },
    ]
    events, read = hubspot_activities(
        "calls", calls, {"50001": ["1001", "1002"], "50002": ["1001"]}, received_at=T0, new_id=new_id
    )
    assert [e.external_ids["hubspot_contact"] for e in events] == ["1001", "1002"]
    assert {e.message_id for e in events} == {"calls:50001:1001", "calls:50001:1002"}
    assert events[0].lead_event.properties["duration_seconds"] == 185
    assert events[0].lead_event.occurred_at == datetime(2026, 12, 4, 11, 58, tzinfo=UTC)
    assert [r for r, _ in read] == ["calls:50001", "calls:50002"]
    with pytest.raises(PayloadError) as raised:
        hubspot_activities("tasks", [{"id": "20001", "properties": {}}], {}, received_at=T0, new_id=new_id)
    assert raised.value.field == "results.0.properties.hs_lastmodifieddate"
