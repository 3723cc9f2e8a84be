"""Reads for the API and the activities, each in one short transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from domain.ids import lead_workflow_id, normalize_email
from store.db import SessionFactory
from store.models import Account, Erasure, Event, FormSubmission, Identity, Lead, OutboxMessage


class LeadStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @property
    def sessions(self) -> SessionFactory:
        return self._sessions

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

    async def erase(self, lead_id: str, requested_by: str) -> dict[str, int] | None:
        """Deletes the lead, every lead merged into it, their events, submissions, identities and
        undelivered outbox rows, in one transaction; keeps only the fact of the erasure."""
        async with self._sessions.begin() as session:
            if await session.get(Lead, lead_id, with_for_update=True) is None:
                return None
            merged = list(await session.scalars(select(Lead.lead_id).where(Lead.merged_into == lead_id)))
            ids = [lead_id, *merged]
            events = await session.execute(delete(Event).where(Event.lead_id.in_(ids)))
            identities = await session.execute(delete(Identity).where(Identity.lead_id.in_(ids)))
            await session.execute(delete(FormSubmission).where(FormSubmission.lead_id.in_(ids)))
            await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.workflow_id.in_([lead_workflow_id(i) for i in ids]),
                    OutboxMessage.delivered_at.is_(None),
                )
            )
            await session.execute(delete(Lead).where(Lead.lead_id.in_(ids)))
            counts = {
                "events": int(events.rowcount or 0),  # type: ignore[attr-defined]
                "identities": int(identities.rowcount or 0),  # type: ignore[attr-defined]
                "merged_leads": len(merged),
            }
            session.add(
                Erasure(
                    lead_id=lead_id,
                    requested_by=requested_by,
                    events=counts["events"],
                    identities=counts["identities"],
                )
            )
            return counts

    async def export(self, lead_id: str) -> dict[str, Any] | None:
        """Everything held about a lead, personal data included (a subject access request)."""
        async with self._sessions() as session:
            lead = await session.get(Lead, lead_id)
            if lead is None:
                return None
            identities = await session.execute(
                select(Identity.kind, Identity.value).where(Identity.lead_id == lead_id)
            )
            submissions = await session.scalars(
                select(FormSubmission)
                .where(FormSubmission.lead_id == lead_id)
                .order_by(FormSubmission.received_at)
            )
            events = await session.scalars(
                select(Event).where(Event.lead_id == lead_id).order_by(Event.occurred_at)
            )
            account = await session.get(Account, lead.account_id) if lead.account_id else None
            return {
                "profile": {
                    column.name: _jsonable(getattr(lead, column.name)) for column in Lead.__table__.columns
                },
                "identities": [{"kind": kind, "value": value} for kind, value in identities],
                "account": {"account_id": account.account_id, "traits": account.traits} if account else None,
                "form_submissions": [
                    {
                        "submission_id": s.submission_id,
                        "form_id": s.form_id,
                        "received_at": s.received_at.isoformat(),
                        "fields": s.fields,
                    }
                    for s in submissions
                ],
                "events": [
                    {
                        "event_id": e.event_id,
                        "source": e.source,
                        "message_id": e.message_id,
                        "type": e.type,
                        "occurred_at": e.occurred_at.isoformat(),
                        "received_at": e.received_at.isoformat(),
                        "payload": e.payload,
                    }
                    for e in events
                ],
            }

    async def link_identity(self, kind: str, value: str, lead_id: str, *, replace: bool = False) -> None:
        """Remembers the lead's id on another platform, so that platform's webhooks find the lead.

        `replace`: the record is ours alone (a deal we created for this lead), so the latest write
        wins; otherwise the first lead to claim an id keeps it (a contact found by another lead's
        email is not taken over)."""
        statement = insert(Identity).values(kind=kind, value=value, lead_id=lead_id)
        if replace:
            statement = statement.on_conflict_do_update(
                index_elements=[Identity.kind, Identity.value], set_={"lead_id": lead_id}
            )
        else:
            statement = statement.on_conflict_do_nothing()
        async with self._sessions.begin() as session:
            await session.execute(statement)

    async def ping(self) -> None:
        async with self._sessions() as session:
            await session.execute(select(1))


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
