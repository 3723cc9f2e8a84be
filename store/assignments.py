"""Assignments of hand-offs to sales reps, persisted; concurrent hand-offs never take the same slot twice.

`assign` runs `domain.roster.choose` inside one transaction that holds the row locks of every rep the
hand-off could go to (`SELECT ... FOR UPDATE`, in rep id order, so two transactions never wait on each
other in a circle). Two hand-offs that could go to the same rep are therefore decided one after the other,
the second seeing the first's counters: a rep's last slot under `max_open` goes once, and the round robin
counts every hand-off. A hand-off's own work (assign, accept, release) is serialised by a transaction-scoped
advisory lock on its id, taken before any rep row, so retries and a concurrent accept are safe too.

A rep's load row is created, in a short transaction of its own, the first time the rep could take a
hand-off. It starts level with the team (the lowest assigned_total among the other candidates, scaled to
the rep's capacity), so a new hire is not handed every lead until they have caught up with the team's
lifetime count. Reps back from a long absence do catch up; that is the round robin's fairness.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.roster import AssignmentRecord, LeadRouting, RepLoad, Roster, choose, eligible
from store.assignment_models import AssignmentRow, RepLoadRow
from store.db import SessionFactory

__all__ = ["AssignmentRecord", "AssignmentStore"]


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return at.astimezone(UTC)


def _record(row: AssignmentRow) -> AssignmentRecord:
    assigned_at = _utc(row.assigned_at)
    assert assigned_at is not None
    return AssignmentRecord(
        handoff_id=row.handoff_id,
        lead_id=row.lead_id,
        rep_id=row.rep_id,
        queue=row.queue,
        reason=row.reason,
        assigned_at=assigned_at,
        accepted_at=_utc(row.accepted_at),
        released_at=_utc(row.released_at),
        attempt=row.attempt,
    )


def _load(row: RepLoadRow) -> RepLoad:
    return RepLoad(
        assigned_total=row.assigned_total, open=row.open, last_assigned_at=_utc(row.last_assigned_at)
    )


def _take_slot(row: RepLoadRow, at: datetime, *, counted: bool = True) -> None:
    if counted:
        row.assigned_total += 1
    row.open += 1
    row.last_assigned_at = at
    row.updated_at = at


def _free_slot(row: RepLoadRow, at: datetime) -> None:
    row.open = max(row.open - 1, 0)
    row.updated_at = at


async def _lock_handoff(session: AsyncSession, handoff_id: str) -> None:
    # Held to the end of the transaction; a hash collision only makes two hand-offs wait for each other.
    key = func.hashtextextended(f"assignment:{handoff_id}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def _lock_reps(session: AsyncSession, rep_ids: Iterable[str]) -> dict[str, RepLoadRow]:
    ids = sorted(set(rep_ids))
    if not ids:
        return {}
    rows = (
        await session.execute(
            select(RepLoadRow).where(RepLoadRow.rep_id.in_(ids)).order_by(RepLoadRow.rep_id).with_for_update()
        )
    ).scalars()
    return {row.rep_id: row for row in rows}


class AssignmentStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def assign(
        self,
        handoff_id: str,
        attempt: int,
        roster: Roster,
        routing: LeadRouting,
        now: datetime,
        exclude: Collection[str] = frozenset(),
    ) -> AssignmentRecord:
        """Assigns attempt `attempt` of the hand-off to a rep (or the team's queue) and records it.

        Idempotent: while the stored attempt is `attempt` or later, the stored record comes back unchanged
        (a retry, or a late call for an earlier attempt). A later attempt replaces the record, first
        releasing the earlier rep's open slot if that was not done.
        """
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        now = _aware(now)
        pool = [rep.id for rep in eligible(roster, routing, now, exclude=exclude)]
        owner = routing.account_owner_id
        wanted = set(pool) | ({owner} if owner and roster.rep(owner) is not None else set())
        await self._ensure_rows(wanted, roster=roster, peers=pool, now=now)
        async with self._sessions() as session, session.begin():
            await _lock_handoff(session, handoff_id)
            row = await session.get(AssignmentRow, handoff_id)
            if row is not None and row.attempt >= attempt:
                return _record(row)
            previous = row.rep_id if row is not None and row.released_at is None else None
            locked = await _lock_reps(session, wanted | ({previous} if previous else set()))
            if previous is not None and previous in locked:
                _free_slot(locked[previous], now)
            loads = {rep_id: _load(load) for rep_id, load in locked.items()}
            choice = choose(roster, routing, now, loads, exclude)
            if choice.rep_id is not None:
                _take_slot(locked[choice.rep_id], now)
            if row is None:
                row = AssignmentRow(handoff_id=handoff_id)
                session.add(row)
            row.lead_id = routing.lead_id
            row.rep_id = choice.rep_id
            row.queue = choice.rep_id is None
            row.reason = choice.reason
            row.assigned_at = now
            row.accepted_at = None
            row.released_at = None
            row.attempt = attempt
        return _record(row)

    async def accept(self, handoff_id: str, rep_id: str, at: datetime) -> AssignmentRecord | None:
        """The rep takes the hand-off; None if there is no such hand-off. The first acceptance wins: once
        accepted, the record comes back unchanged (compare its rep_id with yours).

        A rep other than the one assigned (a claim from the team's queue, or the manager stepping in) takes
        it over: the earlier rep's open slot is freed and the claimant's taken, whatever their max_open.
        """
        at = _aware(at)
        await self._ensure_rows({rep_id}, roster=None, peers=[], now=at)
        async with self._sessions() as session, session.begin():
            await _lock_handoff(session, handoff_id)
            row = await session.get(AssignmentRow, handoff_id)
            if row is None:
                return None
            if row.accepted_at is not None:
                return _record(row)
            if row.rep_id == rep_id and row.released_at is None:
                row.accepted_at = at
                return _record(row)
            previous = row.rep_id if row.released_at is None else None
            locked = await _lock_reps(session, {rep_id} | ({previous} if previous else set()))
            if previous is not None and previous in locked:
                _free_slot(locked[previous], at)
            # Already counted when this hand-off was assigned to them (a re-claim after a release).
            _take_slot(locked[rep_id], at, counted=row.rep_id != rep_id)
            row.reason = f"claimed by {rep_id}" + (f" from {row.rep_id}" if row.rep_id else " from the queue")
            row.rep_id = rep_id
            row.queue = False
            row.assigned_at = at
            row.accepted_at = at
            row.released_at = None
        return _record(row)

    async def release(self, handoff_id: str, at: datetime) -> AssignmentRecord | None:
        """The hand-off escalated away or closed: its rep's open slot is freed, once. None if unknown."""
        at = _aware(at)
        async with self._sessions() as session, session.begin():
            await _lock_handoff(session, handoff_id)
            row = await session.get(AssignmentRow, handoff_id)
            if row is None:
                return None
            if row.released_at is not None:
                return _record(row)
            row.released_at = at
            if row.rep_id is not None:
                locked = await _lock_reps(session, [row.rep_id])
                if row.rep_id in locked:
                    _free_slot(locked[row.rep_id], at)
        return _record(row)

    async def get(self, handoff_id: str) -> AssignmentRecord | None:
        async with self._sessions() as session:
            row = await session.get(AssignmentRow, handoff_id)
            return _record(row) if row is not None else None

    async def loads(self, rep_ids: Collection[str] | None = None) -> dict[str, RepLoad]:
        """Every rep's counters (or those of `rep_ids`), by rep id."""
        query = select(RepLoadRow)
        if rep_ids is not None:
            query = query.where(RepLoadRow.rep_id.in_(sorted(rep_ids)))
        async with self._sessions() as session:
            return {row.rep_id: _load(row) for row in (await session.execute(query)).scalars()}

    async def _ensure_rows(
        self, rep_ids: Collection[str], *, roster: Roster | None, peers: Collection[str], now: datetime
    ) -> None:
        """Creates the missing load rows, committed at once: rows created inside the locking transaction
        could make two transactions wait on each other's new rows."""
        if not rep_ids:
            return
        async with self._sessions() as session, session.begin():
            existing = {
                rep_id: total
                for rep_id, total in (
                    await session.execute(
                        select(RepLoadRow.rep_id, RepLoadRow.assigned_total).where(
                            RepLoadRow.rep_id.in_(sorted(set(rep_ids) | set(peers)))
                        )
                    )
                ).all()
            }
            missing = sorted(set(rep_ids) - set(existing))
            if not missing:
                return

            def capacity(rep_id: str) -> int:
                rep = roster.rep(rep_id) if roster is not None else None
                return rep.capacity if rep is not None else 1

            levels = [(existing[peer], capacity(peer)) for peer in peers if peer in existing]
            rows = [
                {
                    "rep_id": rep_id,
                    "assigned_total": min((total * capacity(rep_id)) // cap for total, cap in levels)
                    if levels
                    else 0,
                    "open": 0,
                    "updated_at": now,
                }
                for rep_id in missing
            ]
            await session.execute(
                insert(RepLoadRow).values(rows).on_conflict_do_nothing(index_elements=["rep_id"])
            )
