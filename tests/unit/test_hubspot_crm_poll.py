"""HubSpot's reps at work read back: the poll searches the tasks completed and the calls logged
since its cursor (HubSpot's webhooks report neither), finds each one's contacts, records a rep
activity once per contact, and leaves the engine's own open tasks alone; the cursor moves past
what it read, and a second poll from it records nothing again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.crm_changes import CrmChangeActivities
from domain.engagement import PollCursor
from domain.events import EventType
from platforms.hubspot import HubSpotClient
from platforms.ports import Person, Task
from sandbox.app import create_app
from tests.helpers.ingest import RecordingIngest
from tests.helpers.platforms import in_process

REP = {"Authorization": "Bearer pat-rep-in-the-hubspot-ui"}
OBJECTS = "/hubspot/crm/v3/objects"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(seed=43)) as client:
        yield client


async def test_completed_tasks_and_logged_calls_are_recorded_once_for_their_contacts(http):
    hubspot = HubSpotClient(http, base_url="http://sandbox/hubspot", token="sandbox-hubspot-token")
    start = datetime.now(UTC) - timedelta(seconds=2)
    ada = await hubspot.upsert_person(Person(email="ada@acme.com"), idempotency_key="p1")
    grace = await hubspot.upsert_person(Person(email="grace@acme.com"), idempotency_key="p2")
    due = datetime.now(UTC) + timedelta(hours=1)
    done = await hubspot.create_task(
        Task(subject="Call Ada", due_at=due, person_id=ada.id), idempotency_key="t1"
    )
    await hubspot.create_task(
        Task(subject="Call Grace", due_at=due, person_id=grace.id), idempotency_key="t2"
    )
    completed = await http.patch(
        f"{OBJECTS}/tasks/{done.id}", headers=REP, json={"properties": {"hs_task_status": "COMPLETED"}}
    )
    assert completed.status_code == 200, completed.text
    association = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}
    logged = await http.post(
        f"{OBJECTS}/calls",
        headers=REP,
        json={
            "properties": {
                "hs_timestamp": datetime.now(UTC).isoformat(),
                "hs_call_status": "COMPLETED",
                "hs_call_duration": "90000",
            },
            "associations": [
                {"to": {"id": grace.id}, "types": [association]},
                {"to": {"id": ada.id}, "types": [association]},
            ],
        },
    )
    assert logged.status_code == 201, logged.text
    ingest = RecordingIngest()
    polls = CrmChangeActivities(ingest, hubspot=hubspot)  # type: ignore[arg-type]
    env = ActivityEnvironment()
    first = await env.run(polls.poll_hubspot, PollCursor(since=start))
    recorded = sorted((e.lead_event.name or "", e.external_ids["hubspot_contact"]) for e in ingest.recorded)
    assert recorded == sorted(
        [("task completed", ada.id), ("call logged", ada.id), ("call logged", grace.id)]
    ), "the engine's open task for Grace is not a rep's work"
    assert {e.lead_event.type for e in ingest.recorded} == {EventType.SALES_ACTIVITY}
    assert first.recorded == 3 and first.cursor.since > start
    again = await env.run(polls.poll_hubspot, first.cursor)
    assert again.recorded == 0 and len(ingest.recorded) == 3, "what the overlap reads again is known"


async def test_a_worker_on_another_crm_is_told_so_for_good(http):
    polls = CrmChangeActivities(RecordingIngest())  # type: ignore[arg-type]
    with pytest.raises(Exception, match="HubSpot is not this deployment's CRM"):
        await ActivityEnvironment().run(polls.poll_hubspot, PollCursor(since=datetime.now(UTC)))
