"""The send ledger: the frequency cap across all journeys, and email suppression, in one place.

A reservation locks the lead's row, so two journeys asking at once are served one after the
other: the second sees the first's send. Suppression is read from the lead's recorded events
(an unsubscribe, bounce or spam complaint recorded by ingestion stops every later send at once,
whichever journey asks).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from domain.connectors import SUPPRESSING_EVENTS, SendReservation, SendReservationInput
from store.db import SessionFactory
from store.models import EmailSend, Event, Lead


class SendLedger:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def reserve(self, request: SendReservationInput, *, now: datetime | None = None) -> SendReservation:
        now = now or datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            lead = (
                await session.execute(
                    select(Lead.lead_id).where(Lead.lead_id == request.lead_id).with_for_update()
                )
            ).scalar_one_or_none()
            if lead is None:
                return SendReservation(status="suppressed", reason="lead not found (erased?)")
            if await session.get(EmailSend, request.idempotency_key) is not None:
                return SendReservation(status="granted", reason="already reserved")
            suppressed = (
                await session.execute(
                    select(Event.type)
                    .where(Event.lead_id == request.lead_id, Event.type.in_(SUPPRESSING_EVENTS))
                    .order_by(Event.occurred_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if suppressed is not None:
                return SendReservation(status="suppressed", reason=suppressed)
            if request.marketing:
                since = now - timedelta(seconds=request.per_seconds)
                recent = (
                    (
                        await session.execute(
                            select(EmailSend.reserved_at)
                            .where(
                                EmailSend.lead_id == request.lead_id,
                                EmailSend.marketing.is_(True),
                                EmailSend.reserved_at > since,
                            )
                            .order_by(EmailSend.reserved_at)
                        )
                    )
                    .scalars()
                    .all()
                )
                if len(recent) >= request.max_sends:
                    # The oldest send that counts leaves the window first.
                    retry_at = recent[len(recent) - request.max_sends] + timedelta(
                        seconds=request.per_seconds
                    )
                    return SendReservation(
                        status="deferred",
                        retry_at=retry_at,
                        reason=f"{len(recent)} marketing emails in the last {request.per_seconds} s",
                    )
            await session.execute(
                insert(EmailSend)
                .values(
                    key=request.idempotency_key,
                    lead_id=request.lead_id,
                    journey=request.journey,
                    marketing=request.marketing,
                    reserved_at=now,
                )
                .on_conflict_do_nothing()
            )
        return SendReservation(status="granted")

    async def count(self, lead_id: str) -> int:
        async with self._sessions() as session:
            return int(
                (await session.execute(select(func.count()).where(EmailSend.lead_id == lead_id))).scalar_one()
            )
