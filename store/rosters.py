"""The roster's source: the document set through the API when there is one, else the file.

Sales ops edit `config/roster.toml` in a deploy, or `PUT /v1/roster` at any time (an
out-of-office, a new rep): the API's document is stored here and wins until it is deleted.
Workers reread either within seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from domain.roster import Roster, load_roster, roster_from
from store.db import SessionFactory

REREAD_SECONDS = 5.0
_READ = text("SELECT body, updated_by, updated_at FROM roster_documents WHERE id = 1")
_WRITE = text(
    """
    INSERT INTO roster_documents (id, body, updated_by) VALUES (1, CAST(:body AS jsonb), :by)
    ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_at = now()
    """
)


class RosterSource:
    def __init__(self, sessions: SessionFactory, path: Path) -> None:
        self._sessions = sessions
        self._path = path
        self._cached: Roster | None = None
        self._read_at = 0.0

    async def current(self) -> Roster:
        if self._cached is not None and time.monotonic() - self._read_at < REREAD_SECONDS:
            return self._cached
        document = await self.document()
        roster = (
            roster_from(document["body"], source="the roster set through the API")
            if document
            else load_roster(self._path)
        )
        self._cached, self._read_at = roster, time.monotonic()
        return roster

    async def document(self) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    text("SELECT body, updated_by, updated_at FROM roster_documents WHERE id = 1")
                )
            ).one_or_none()
        if row is None:
            return None
        return {"body": row.body, "updated_by": row.updated_by, "updated_at": row.updated_at.isoformat()}

    async def replace(self, body: dict[str, Any], updated_by: str) -> Roster:
        """Validates, then stores; a bad roster raises ValueError and changes nothing."""
        roster = roster_from(body, source="roster")
        async with self._sessions() as session, session.begin():
            await session.execute(_WRITE, {"body": roster.model_dump_json(), "by": updated_by})
        self._cached = None
        return roster

    async def reset(self) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(text("DELETE FROM roster_documents"))
        self._cached = None
