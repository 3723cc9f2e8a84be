"""The hand-off SLA log on the stack's PostgreSQL: every milestone kind is recorded, and a record
retried after a lost answer changes nothing (the chaos test found escalations and closings that
could not be recorded at all, which held the escalation chain)."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from devstack.stack import DevStack
from domain.handoff import Milestone
from store.db import SessionFactory, create_engine, session_factory
from store.handoffs import HandoffLog

pytestmark = pytest.mark.e2e

MQL_AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(stack: DevStack) -> AsyncIterator[SessionFactory]:
    engine = create_engine(stack.database_url, pool_size=2)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def row(sessions: SessionFactory, handoff_id: str) -> dict:
    async with sessions() as session:
        found = await session.execute(
            text("SELECT * FROM handoffs WHERE handoff_id = :id"), {"id": handoff_id}
        )
        return dict(found.mappings().one())


@pytest.mark.parametrize("ending", ["accepted", "closed"])
async def test_every_milestone_is_recorded_once_however_often_it_is_retried(sessions, ending: str):
    log = HandoffLog(sessions)
    handoff_id, lead_id = f"handoff-{uuid.uuid4()}-1", str(uuid.uuid4())
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO leads (lead_id, consent, custom_fields, traits) VALUES (:id, false, '{}', '{}')"
            ),
            {"id": lead_id},
        )

    def milestone(kind: str, seconds: float, rep: str | None = None) -> Milestone:
        return Milestone(
            handoff_id=handoff_id,
            lead_id=lead_id,
            kind=kind,
            at=MQL_AT + timedelta(seconds=seconds),
            rep_id=rep,
        )

    steps = [
        milestone("mql", 0),
        milestone("assigned", 1, "ana"),
        milestone("notified", 2, "ana"),
        milestone("escalated", 300, "ben"),
        milestone("escalated", 600, "maria"),
        milestone(ending, 700, "maria" if ending == "accepted" else None),
    ]
    for step in steps:
        await log.record(step)
        await log.record(step)  # the activity retried after its answer was lost
    recorded = await row(sessions, handoff_id)
    assert recorded["mql_at"] == MQL_AT
    assert recorded["assigned_at"] == MQL_AT + timedelta(seconds=1)
    assert recorded["notified_at"] == MQL_AT + timedelta(seconds=2)
    assert recorded["escalations"] == 2
    assert recorded["status"] == ending
    assert recorded["rep_id"] == "maria"
    if ending == "accepted":
        assert recorded["accepted_at"] == MQL_AT + timedelta(seconds=700)
    else:
        assert recorded["accepted_at"] is None
    # A late escalation record (the activity's retry arriving after the acceptance) keeps the ending.
    await log.record(milestone("escalated", 600, "maria"))
    assert (await row(sessions, handoff_id))["status"] == ending
