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
from domain.events import EMAIL_ENGAGEMENT, IncomingEvent
from domain.ids import lead_id_for_email
from store.db import SessionFactory
from store.models import EmailSend, Event, Identity, Lead


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


# How far an engagement may be reported before the send it answers was recorded as sent (the
# platform's clock and ours differ, and a send is recorded when the platform's answer arrives).
CLOCK_SKEW = timedelta(minutes=5)
# Engagement with a message older than this is not attributed to a sequence step.
ATTRIBUTION_WINDOW = timedelta(days=90)


class SentEmails:
    """What the engine sent, and the attribution of the engagement the platforms report to it."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def record_sent(
        self,
        *,
        key: str,
        lead_id: str,
        journey: str,
        provider: str,
        sequence_id: str | None,
        step_id: str | None,
        template_id: str | None,
        sent_at: datetime,
    ) -> None:
        """The platform took the send with this key (a retry records it once, at its first time)."""
        values = {
            "sent_at": sent_at,
            "provider": provider,
            "sequence_id": sequence_id,
            "step_id": step_id,
            "template_id": template_id,
        }
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(EmailSend)
                .values(
                    key=key, lead_id=lead_id, journey=journey, marketing=True, reserved_at=sent_at, **values
                )
                .on_conflict_do_update(
                    index_elements=[EmailSend.key],
                    set_=values,
                    where=EmailSend.sent_at.is_(None),
                )
            )

    async def attribute(self, events: list[IncomingEvent]) -> None:
        """Names, on each email engagement event, the sequence and step whose send it answers:
        the latest send to the lead through the same platform before it. Engagement with a
        message the engine did not send (a campaign a marketer sent from the platform) is marked
        as the platform's, and counts all the same."""
        engagement = [e for e in events if e.lead_event.type in EMAIL_ENGAGEMENT and e.email]
        if not engagement:
            return
        async with self._sessions() as session:
            emails = sorted({e.email for e in engagement if e.email})
            known = dict(
                (
                    await session.execute(
                        select(Identity.value, Identity.lead_id).where(
                            Identity.kind == "email", Identity.value.in_(emails)
                        )
                    )
                ).all()
            )
            for event in engagement:
                assert event.email is not None
                properties = event.lead_event.properties
                if properties.get("sequence_id"):
                    properties.setdefault("attributed_to", "message")
                    continue
                if properties.get("campaign") and not properties.get("flow"):
                    # A campaign sent from the platform's own UI: the engine sends through flows.
                    properties["attributed_to"] = "platform"
                    continue
                at = event.lead_event.occurred_at
                sent = (
                    await session.execute(
                        select(EmailSend.sequence_id, EmailSend.step_id, EmailSend.template_id)
                        .where(
                            EmailSend.lead_id == known.get(event.email, lead_id_for_email(event.email)),
                            EmailSend.provider == event.lead_event.source,
                            EmailSend.sent_at <= at + CLOCK_SKEW,
                            EmailSend.sent_at >= at - ATTRIBUTION_WINDOW,
                        )
                        .order_by(EmailSend.sent_at.desc())
                        .limit(1)
                    )
                ).first()
                if sent is None:
                    properties["attributed_to"] = "platform"
                    continue
                sequence_id, step_id, template_id = sent
                properties.update(
                    attributed_to="sequence",
                    sequence_id=sequence_id,
                    step_id=step_id,
                    template_id=template_id,
                )
