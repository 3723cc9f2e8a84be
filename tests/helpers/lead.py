"""The lead's workflow in workflow tests: its events, starting it the way the router does, reading
its state; and the context a nurture sees of its lead."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from domain.events import EventType, LeadEvent, Touch
from domain.lead import EVENTS_SIGNAL, EventsRecorded, LeadState, LeadWorkflowInput
from domain.sequences import LeadContext, load_sequences
from runtime.settings import PROJECT_ROOT
from workflows.lead import LeadWorkflow

START = datetime(2026, 1, 1, tzinfo=UTC)
SEQUENCES = load_sequences(PROJECT_ROOT / "config" / "sequences")
WELCOME = SEQUENCES["welcome_nurture"]


def form(submission_id: str, campaign: str = "q4") -> LeadEvent:
    """The demo form, submitted with consent at START."""
    return LeadEvent(
        event_id=submission_id,
        type=EventType.FORM_SUBMITTED,
        source="form",
        occurred_at=START,
        submission_id=submission_id,
        form_id="demo",
        consent=True,
        welcome_list="WELCOME",
        touch=Touch(source="linkedin", campaign=campaign),
        email_hash="e" * 64,
    )


def form_at(at: datetime) -> LeadEvent:
    return form("s1").model_copy(update={"occurred_at": at})


def page(event_id: str, at: datetime, path: str = "/pricing") -> LeadEvent:
    return LeadEvent(
        event_id=event_id, type=EventType.PAGE, source="segment", occurred_at=at, properties={"path": path}
    )


def event(kind: EventType, at: datetime, n: int, **fields: Any) -> LeadEvent:
    """An event of `kind` with a unique id (`n` tells a test's events apart when reading one)."""
    return LeadEvent(
        event_id=f"{kind.value}-{n}-{uuid.uuid4().hex[:6]}",
        type=kind,
        source="test",
        occurred_at=at,
        **fields,
    )


def engaged_lead_events(now: datetime) -> list[LeadEvent]:
    """The seed's MQL line: 5 sessions, 3 pieces of content, email engagement 70 (7 clicks)."""
    events = [
        event(EventType.PAGE, now - timedelta(hours=h), h, properties={"path": "/blog"}) for h in range(5)
    ]
    events += [
        event(
            EventType.TRACK,
            now - timedelta(minutes=10 + n),
            n,
            name="Content Downloaded",
            properties={"content_id": f"guide-{n}", "topic": "security"},
        )
        for n in range(3)
    ]
    events += [event(EventType.EMAIL_CLICKED, now - timedelta(minutes=n), n) for n in range(7)]
    return events


async def signal_with_start(
    client: Client, lead_id: str, event: LeadEvent | list[LeadEvent], queue: str
) -> WorkflowHandle:
    """Events to the lead's run, started if it is not running: as the router delivers them."""
    return await client.start_workflow(
        LeadWorkflow.run,
        LeadWorkflowInput(lead_id=lead_id),
        id=f"lead-{lead_id}",
        task_queue=queue,
        start_signal=EVENTS_SIGNAL,
        start_signal_args=[EventsRecorded(events=event if isinstance(event, list) else [event])],
    )


async def state_of(handle: WorkflowHandle) -> LeadState:
    return await handle.query(LeadWorkflow.state)


def lead_context(**overrides: Any) -> LeadContext:
    """What a nurture knows of its lead: a cold, new lead in Berlin, unless `overrides` say else."""
    values: dict[str, Any] = {
        "stage": "lead",
        "score": 20,
        "score_band": "cold",
        "engagement": "low",
        "preferred_topic": None,
        "email_clicks": 0,
        "lead_source": "webinar",
        "country": "DE",
        "timezone": "Europe/Berlin",
    }
    return LeadContext.model_validate({**values, **overrides})
