"""Reads for the API and the activities, each in one short transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from domain.ids import normalize_email
from store.db import SessionFactory
from store.models import Account, Event, FormSubmission, Identity, Lead


class LeadStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def get_lead(self, lead_id: str) -> Lead | None:
        async with self._sessions() as session:
            return await session.get(Lead, lead_id)

    async def find_by_email(self, email: str) -> Lead | None:
        async with self._sessions() as session:
            lead_id = await session.scalar(
                select(Identity.lead_id).where(
                    Identity.kind == "email", Identity.value == normalize_email(email)
                )
            )
            return await session.get(Lead, lead_id) if lead_id else None

    async def identities(self, lead_id: str) -> dict[str, list[str]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Identity.kind, Identity.value)
                .where(Identity.lead_id == lead_id)
                .order_by(Identity.created_at)
            )
            found: dict[str, list[str]] = {}
            for kind, value in rows:
                found.setdefault(kind, []).append(value)
            return found

    async def account(self, account_id: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(Account, account_id)
            return dict(row.traits) if row else None

    async def count_submissions(self, lead_id: str) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(FormSubmission).where(FormSubmission.lead_id == lead_id)
            )
            return int(count or 0)

    async def count_events(self, lead_id: str) -> dict[str, int]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Event.type, func.count()).where(Event.lead_id == lead_id).group_by(Event.type)
            )
            return {kind: int(count) for kind, count in rows}

    async def events(
        self, lead_id: str, *, limit: int, before: tuple[datetime, str] | None = None
    ) -> list[Event]:
        """Newest first, keyset-paged on (occurred_at, event_id)."""
        async with self._sessions() as session:
            query = select(Event).where(Event.lead_id == lead_id)
            if before is not None:
                at, event_id = before
                query = query.where(
                    or_(Event.occurred_at < at, and_(Event.occurred_at == at, Event.event_id < event_id))
                )
            rows = await session.scalars(
                query.order_by(Event.occurred_at.desc(), Event.event_id.desc()).limit(limit)
            )
            return list(rows)

    async def get_submission(self, submission_id: str) -> tuple[Lead, FormSubmission] | None:
        async with self._sessions() as session:
            row = await session.get(FormSubmission, submission_id)
            if row is None:
                return None
            lead = await session.get(Lead, row.lead_id)
            assert lead is not None
            return lead, row

    async def link_identity(self, kind: str, value: str, lead_id: str) -> None:
        """Remembers the lead's id on another platform, so that platform's webhooks find the lead."""
        async with self._sessions.begin() as session:
            await session.execute(
                insert(Identity).values(kind=kind, value=value, lead_id=lead_id).on_conflict_do_nothing()
            )

    async def ping(self) -> None:
        async with self._sessions() as session:
            await session.execute(select(1))
