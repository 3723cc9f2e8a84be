"""Reads and writes the API and the activities need, each in one short transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from domain.forms import NormalizedSubmission
from domain.ids import email_hash, lead_id_for_email
from store.db import SessionFactory
from store.models import FormSubmission, Lead, OutboxMessage

PROFILE_FIELDS = ("first_name", "last_name", "company", "job_title", "phone", "lead_source")


@dataclass(frozen=True)
class RecordedSubmission:
    lead_id: str
    submission_id: str
    received_at: datetime
    outbox_id: int | None
    duplicate: bool


@dataclass(frozen=True)
class PendingMessage:
    id: int
    workflow_id: str
    kind: str
    payload: dict[str, Any]


class LeadStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def record_submission(
        self,
        form_id: str,
        submission: NormalizedSubmission,
        *,
        idempotency_key: str | None,
        build_outbox: Any,
    ) -> RecordedSubmission:
        """Upserts the lead, stores the submission and its outbox message in one transaction.

        `build_outbox(lead_id, submission_id, received_at)` returns `(workflow_id, kind, payload)`.
        """
        lead_id = lead_id_for_email(submission.email)
        async with self._sessions.begin() as session:
            if idempotency_key:
                existing = await session.scalar(
                    select(FormSubmission).where(FormSubmission.idempotency_key == idempotency_key)
                )
                if existing is not None:
                    return RecordedSubmission(
                        existing.lead_id, existing.submission_id, existing.received_at, None, True
                    )
            profile = {name: getattr(submission, name) for name in PROFILE_FIELDS}
            # Later submissions fill and refresh the profile, but never blank a known field.
            refresh = {
                name: func.coalesce(insert(Lead).excluded[name], getattr(Lead, name))
                for name in PROFILE_FIELDS
            }
            statement = (
                insert(Lead)
                .values(
                    lead_id=lead_id,
                    email=submission.email,
                    email_hash=email_hash(submission.email),
                    consent=submission.consent,
                    custom_fields=submission.custom_fields,
                    **profile,
                )
                .on_conflict_do_update(
                    index_elements=[Lead.lead_id],
                    set_={
                        **refresh,
                        "consent": insert(Lead).excluded.consent | Lead.consent,
                        "custom_fields": Lead.custom_fields.op("||")(insert(Lead).excluded.custom_fields),
                        "updated_at": func.now(),
                    },
                )
            )
            await session.execute(statement)
            submission_id = str(uuid.uuid4())
            row = FormSubmission(
                submission_id=submission_id,
                form_id=form_id,
                lead_id=lead_id,
                idempotency_key=idempotency_key,
                fields=submission.model_dump(mode="json"),
            )
            session.add(row)
            await session.flush()
            await session.refresh(row, ["received_at"])
            workflow_id, kind, payload = build_outbox(lead_id, submission_id, row.received_at)
            message = OutboxMessage(workflow_id=workflow_id, kind=kind, payload=payload)
            session.add(message)
            await session.flush()
            return RecordedSubmission(lead_id, submission_id, row.received_at, message.id, False)

    async def get_lead(self, lead_id: str) -> Lead | None:
        async with self._sessions() as session:
            return await session.get(Lead, lead_id)

    async def count_submissions(self, lead_id: str) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(FormSubmission).where(FormSubmission.lead_id == lead_id)
            )
            return int(count or 0)

    async def get_submission(self, submission_id: str) -> tuple[Lead, FormSubmission] | None:
        async with self._sessions() as session:
            row = await session.get(FormSubmission, submission_id)
            if row is None:
                return None
            lead = await session.get(Lead, row.lead_id)
            assert lead is not None
            return lead, row

    async def pending_outbox(self, *, older_than_seconds: float, limit: int = 100) -> list[PendingMessage]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.created_at
                    < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
            return [PendingMessage(r.id, r.workflow_id, r.kind, r.payload) for r in rows]

    async def mark_delivered(self, outbox_id: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == outbox_id, OutboxMessage.delivered_at.is_(None))
                .values(delivered_at=func.now(), attempts=OutboxMessage.attempts + 1)
            )

    async def mark_failed(self, outbox_id: int, error: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == outbox_id)
                .values(attempts=OutboxMessage.attempts + 1, last_error=error[:2000])
            )

    async def ping(self) -> None:
        async with self._sessions() as session:
            await session.execute(select(1))
