"""Customer-success managers' accounts: one CSM per account, kept once chosen; a new account goes to
the CSM with the fewest accounts for their capacity. Concurrent purchases are serialised by an
advisory lock, so two accounts bought in the same second never both land on a CSM past their share."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import text

from store.db import SessionFactory

# Any 64-bit number of our own: the lock that serialises CSM choices.
_LOCK = 0x6373_6D5F_6173_7369
_EXISTING = text("SELECT csm_id, reason FROM csm_assignments WHERE account_id = :account")
_LOADS = text("SELECT csm_id, count(*) FROM csm_assignments WHERE csm_id = ANY(:ids) GROUP BY csm_id")
_INSERT = text(
    "INSERT INTO csm_assignments (account_id, csm_id, reason) VALUES (:account, :csm, :reason) "
    "ON CONFLICT (account_id) DO UPDATE SET csm_id = excluded.csm_id, reason = excluded.reason, "
    "assigned_at = now()"
)


def least_loaded(capacities: Mapping[str, int], loads: Mapping[str, int]) -> str:
    """The CSM whose accounts are fewest for their capacity (ties: the first id)."""
    return min(sorted(capacities), key=lambda csm: (loads.get(csm, 0) + 1) / capacities[csm])


class CsmAssignments:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def assign(self, account_id: str, capacities: Mapping[str, int]) -> tuple[str, str]:
        """The account's CSM among `capacities` (id -> weight): the one kept if still there, else a new
        choice, stored. Returns (csm_id, reason)."""
        async with self._sessions() as session, session.begin():
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            existing = (await session.execute(_EXISTING, {"account": account_id})).one_or_none()
            if existing is not None and existing.csm_id in capacities:
                return existing.csm_id, existing.reason
            rows = (await session.execute(_LOADS, {"ids": list(capacities)})).all()
            loads = {row[0]: int(row[1]) for row in rows}
            chosen = least_loaded(capacities, loads)
            reason = (
                f"fewest accounts for capacity ({loads.get(chosen, 0)} before this one)"
                if existing is None
                else f"{existing.csm_id} left the team; fewest accounts for capacity"
            )
            await session.execute(_INSERT, {"account": account_id, "csm": chosen, "reason": reason})
            return chosen, reason

    async def of(self, account_id: str) -> str | None:
        async with self._sessions() as session:
            row = (await session.execute(_EXISTING, {"account": account_id})).one_or_none()
        return row.csm_id if row else None
