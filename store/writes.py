"""The write ledger in PostgreSQL (see `domain.ledger.WriteLedger`)."""

from __future__ import annotations

from sqlalchemy import text

from domain.ledger import LedgerEntry
from store.db import SessionFactory

_RECALL = text(
    "SELECT status, external_id, EXTRACT(EPOCH FROM now() - updated_at) AS age "
    "FROM connector_writes WHERE key = :key"
)
_PENDING = text(
    "INSERT INTO connector_writes (key, provider, status) VALUES (:key, :provider, 'pending') "
    "ON CONFLICT (key) DO NOTHING"
)
_DONE = text(
    """
    INSERT INTO connector_writes (key, provider, status, external_id) VALUES (:key, '', 'done', :id)
    ON CONFLICT (key) DO UPDATE SET status = 'done', external_id = excluded.external_id, updated_at = now()
    """
)


class PostgresWriteLedger:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def recall(self, key: str) -> LedgerEntry | None:
        async with self._sessions() as session:
            row = (await session.execute(_RECALL, {"key": key})).one_or_none()
        if row is None:
            return None
        return LedgerEntry(status=row.status, external_id=row.external_id, pending_for=float(row.age))

    async def pending(self, key: str, provider: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(_PENDING, {"key": key, "provider": provider})

    async def done(self, key: str, external_id: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(_DONE, {"key": key, "id": external_id})
