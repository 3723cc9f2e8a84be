"""Sales-rep assignment on the stack's PostgreSQL: concurrent hand-offs, caps, retries, escalation."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from devstack.stack import DevStack
from domain.roster import AssignmentRecord, LeadRouting, Roster
from store.assignment_models import AssignmentRow
from store.assignments import AssignmentStore
from store.db import SessionFactory, create_engine, session_factory

pytestmark = pytest.mark.e2e

NOW = datetime(2025, 6, 4, 15, 0, tzinfo=UTC)
ALL_WEEK = {"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "23:59:59"}


def make_roster(capacities: list[int], max_open: list[int | None] | None = None) -> Roster:
    """Reps with ids unique to this call, so tests sharing the stack's database never meet."""
    suffix = uuid.uuid4().hex[:8]
    caps = max_open or [None] * len(capacities)
    reps = [
        {
            "id": f"rep{index}-{suffix}",
            "name": f"Rep {index}",
            "email": f"rep{index}@example.com",
            "timezone": zone,
            "working_hours": ALL_WEEK,
            "capacity": capacity,
            "max_open": cap,
        }
        for index, (capacity, cap, zone) in enumerate(
            zip(
                capacities,
                caps,
                ["America/New_York", "Europe/London", "Europe/Berlin", "Asia/Tokyo"] * 3,
                strict=False,
            )
        )
    ]
    return Roster.model_validate(
        {
            "version": 1,
            "reps": reps,
            "teams": [
                {
                    "id": "inbound",
                    "name": "Inbound",
                    "reps": [rep["id"] for rep in reps],
                    "queue_slack_channel": "#sales-queue",
                }
            ],
            "default_team": "inbound",
        }
    )


def routing() -> LeadRouting:
    return LeadRouting(lead_id=str(uuid.uuid4()), country="US", employees=120)


def handoff() -> str:
    return f"handoff-{uuid.uuid4()}"


@pytest.fixture
async def databases(stack: DevStack) -> AsyncIterator[tuple[SessionFactory, SessionFactory]]:
    """Two engines, as two worker processes would hold."""
    first, second = create_engine(stack.database_url, pool_size=10), create_engine(stack.database_url)
    try:
        yield session_factory(first), session_factory(second)
    finally:
        await first.dispose()
        await second.dispose()


async def test_fifty_concurrent_hand_offs_balance_by_capacity(
    databases: tuple[SessionFactory, SessionFactory],
):
    stores = [AssignmentStore(sessions) for sessions in databases]
    roster = make_roster([1, 2, 3, 4])
    ids = [handoff() for _ in range(50)]
    records = await asyncio.gather(
        *(stores[index % 2].assign(h, 1, roster, routing(), NOW) for index, h in enumerate(ids))
    )
    assert [record.handoff_id for record in records] == ids
    assert all(record.rep_id is not None and not record.queue for record in records)

    counts = Counter(record.rep_id for record in records)
    total_capacity = sum(rep.capacity for rep in roster.reps)
    for rep in roster.reps:
        ideal = Fraction(50 * rep.capacity, total_capacity)
        assert abs(counts[rep.id] - ideal) <= 1, counts
    loads = await stores[0].loads([rep.id for rep in roster.reps])
    assert {rep_id: (load.assigned_total, load.open) for rep_id, load in loads.items()} == {
        rep_id: (count, count) for rep_id, count in counts.items()
    }

    # What is stored is what was returned: one rep per hand-off.
    async with databases[0]() as session:
        rows = (
            await session.execute(select(AssignmentRow).where(AssignmentRow.handoff_id.in_(ids)))
        ).scalars()
        stored = {row.handoff_id: row.rep_id for row in rows}
    assert stored == {record.handoff_id: record.rep_id for record in records}


async def test_concurrent_retries_of_one_attempt_give_one_rep(
    databases: tuple[SessionFactory, SessionFactory],
):
    stores = [AssignmentStore(sessions) for sessions in databases]
    roster = make_roster([1, 1, 2])
    work = [(handoff(), routing()) for _ in range(20)]
    # Every hand-off asked four times at once, through both engines.
    calls = [stores[copy % 2].assign(h, 1, roster, lead, NOW) for copy in range(4) for h, lead in work]
    records = await asyncio.gather(*calls)
    by_handoff: dict[str, set[str | None]] = {}
    for record in records:
        by_handoff.setdefault(record.handoff_id, set()).add(record.rep_id)
    assert len(by_handoff) == 20 and all(len(reps) == 1 for reps in by_handoff.values())
    first = {record.handoff_id: record for record in records[:20]}
    assert all(record == first[record.handoff_id] for record in records)
    loads = await stores[0].loads([rep.id for rep in roster.reps])
    assert sum(load.assigned_total for load in loads.values()) == 20
    assert sum(load.open for load in loads.values()) == 20

    # And later, a retry of the same attempt returns the same record without counting again.
    h, lead = work[0]
    assert await stores[1].assign(h, 1, roster, lead, NOW + timedelta(minutes=3)) == first[h]
    assert await stores[0].loads([rep.id for rep in roster.reps]) == loads


async def test_max_open_is_never_exceeded_and_released_slots_are_reused(
    databases: tuple[SessionFactory, SessionFactory],
):
    stores = [AssignmentStore(sessions) for sessions in databases]
    roster = make_roster([1, 2, 3, 4], max_open=[2, 3, 4, 5])
    records = await asyncio.gather(
        *(stores[index % 2].assign(handoff(), 1, roster, routing(), NOW) for index in range(50))
    )
    assigned = [record for record in records if record.rep_id is not None]
    queued = [record for record in records if record.queue]
    assert len(assigned) == 14 and len(queued) == 36
    assert all("4 at max_open" in record.reason for record in queued)
    counts = Counter(record.rep_id for record in assigned)
    assert counts == {rep.id: rep.max_open for rep in roster.reps}
    loads = await stores[0].loads([rep.id for rep in roster.reps])
    assert {rep_id: load.open for rep_id, load in loads.items()} == counts

    # Three of the biggest rep's hand-offs close: the next ten hand-offs fill those three slots, no more.
    biggest = roster.reps[3].id
    for record in [record for record in assigned if record.rep_id == biggest][:3]:
        released = await stores[0].release(record.handoff_id, NOW + timedelta(minutes=1))
        assert released is not None and released.released_at is not None
    later = NOW + timedelta(minutes=2)
    more = await asyncio.gather(
        *(stores[index % 2].assign(handoff(), 1, roster, routing(), later) for index in range(10))
    )
    assert Counter(record.rep_id for record in more) == {biggest: 3, None: 7}
    loads = await stores[0].loads([rep.id for rep in roster.reps])
    assert all(loads[rep.id].open <= (rep.max_open or 0) for rep in roster.reps)


async def test_escalation_accept_and_release(databases: tuple[SessionFactory, SessionFactory]):
    store = AssignmentStore(databases[0])
    roster = make_roster([1, 1, 1])
    rep_ids = [rep.id for rep in roster.reps]
    h, lead = handoff(), routing()

    first = await store.assign(h, 1, roster, lead, NOW)
    assert first.rep_id is not None and first.attempt == 1
    # Not accepted within the SLA: attempt 2 goes to another rep; the first rep's slot is freed.
    second = await store.assign(h, 2, roster, lead, NOW + timedelta(minutes=5), exclude={first.rep_id})
    assert second.rep_id not in (None, first.rep_id) and second.attempt == 2
    loads = await store.loads(rep_ids)
    assert loads[first.rep_id].open == 0 and loads[first.rep_id].assigned_total == 1
    assert second.rep_id is not None and loads[second.rep_id].open == 1
    # A late retry of attempt 1 changes nothing.
    assert await store.assign(h, 1, roster, lead, NOW + timedelta(minutes=6)) == second

    accepted = await store.accept(h, second.rep_id, NOW + timedelta(minutes=7))
    assert accepted is not None and accepted.accepted_at == NOW + timedelta(minutes=7)
    # The first rep answering late finds it taken.
    late = await store.accept(h, first.rep_id, NOW + timedelta(minutes=8))
    assert late == accepted

    closed = await store.release(h, NOW + timedelta(hours=1))
    assert closed is not None and closed.released_at == NOW + timedelta(hours=1)
    assert await store.release(h, NOW + timedelta(hours=2)) == closed
    assert (await store.loads([second.rep_id]))[second.rep_id].open == 0
    assert await store.get(h) == closed
    assert await store.accept("handoff-unknown", first.rep_id, NOW) is None
    assert await store.release("handoff-unknown", NOW) is None


async def test_the_account_owner_and_the_team_queue(databases: tuple[SessionFactory, SessionFactory]):
    store = AssignmentStore(databases[0])
    roster = make_roster([1, 1], max_open=[1, 1])
    owner, other = roster.reps[0].id, roster.reps[1].id
    owned = LeadRouting(lead_id=str(uuid.uuid4()), account_id="acme", account_owner_id=owner)

    records: list[AssignmentRecord] = [await store.assign(handoff(), 1, roster, owned, NOW) for _ in range(2)]
    # The owner keeps the account even over max_open; the round robin then skips them.
    assert [(record.rep_id, record.reason) for record in records] == [(owner, "account owner")] * 2
    third = await store.assign(handoff(), 1, roster, routing(), NOW)
    assert third.rep_id == other

    # With both reps full, a hand-off waits in the queue until someone claims it.
    waiting = await store.assign(handoff(), 1, roster, routing(), NOW)
    assert waiting.queue and waiting.rep_id is None and "no rep available" in waiting.reason
    claimed = await store.accept(waiting.handoff_id, other, NOW + timedelta(minutes=1))
    assert claimed is not None and (claimed.rep_id, claimed.queue) == (other, False)
    assert claimed.accepted_at == NOW + timedelta(minutes=1)
    loads = await store.loads([owner, other])
    assert (loads[owner].open, loads[other].open) == (2, 2)
    assert (loads[owner].assigned_total, loads[other].assigned_total) == (2, 2)
