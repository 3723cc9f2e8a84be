"""The note sales gets at hand-off: who, where, why, what they read and visited, email history, source."""

from datetime import UTC, datetime, timedelta

from activities.sales_context import sales_context
from store.models import Event, Lead

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def event(kind: str, minutes_ago: int, name: str | None = None, **lead_event) -> Event:
    return Event(
        event_id=f"e{minutes_ago}",
        type=kind,
        name=name,
        occurred_at=NOW - timedelta(minutes=minutes_ago),
        lead_event=lead_event,
    )


def test_the_note_says_who_why_and_what_they_did():
    lead = Lead(
        lead_id="l1",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        company="Example Corp",
        job_title="VP Engineering",
        lead_source="webinar",
        traits={"industry": "Software"},
    )
    events = [
        event("email_clicked", 1),
        event("email_opened", 2),
        event("email_opened", 3),
        event("track", 4, "Content Downloaded", properties={"content_id": "guide-1"}),
        event("page", 5, "Pricing", properties={"path": "/pricing"}),
        event("page", 6, "Pricing", properties={"path": "/pricing"}),
        event("form_submitted", 7, form_id="demo", touch={"source": "linkedin", "campaign": "q4"}),
    ]
    note = sales_context(lead, {"employees": 420}, events, "MQL: email engagement 74 >= 70")
    lines = note.splitlines()
    assert lines[0] == "MQL: email engagement 74 >= 70"
    assert "Who: Ada Lovelace, VP Engineering at Example Corp" in lines
    assert "Company: industry: Software, employees: 420" in lines
    assert "Content consumed (1): Content Downloaded (guide-1)" in lines
    assert "Pages visited (2): /pricing x2" in lines
    assert "Email history: 2 opened, 1 clicked" in lines
    assert "First touch: linkedin / q4; last touch: linkedin / q4" in lines
    assert "Forms: demo" in lines


def test_a_lead_with_little_known_still_gets_a_note():
    note = sales_context(Lead(lead_id="l2", email="x@example.com"), None, [], "MQL")
    assert "Who: (no name), title unknown at company unknown" in note
    assert "Lead source: unknown" in note
