"""The send ledger: the one send gate's facts and records (consent by purpose, suppression, the
frequency cap across all journeys; domain.send_gate decides).

A reservation locks the lead's row, so two journeys asking at once are served one after the
other: the second sees the first's send. Suppression is read from the lead's recorded events
(an unsubscribe, bounce or spam complaint recorded by ingestion stops every later send at once,
whichever journey asks).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from domain.connectors import SUPPRESSING_EVENTS, SendReservation, SendReservationInput
from domain.events import EMAIL_ENGAGEMENT, IncomingEvent
from domain.ids import lead_id_for_email
from domain.send_gate import GateFacts, decide
from store.db import SessionFactory
from store.models import EmailSend, Event, Identity, Lead, SendRefusal


class SendLedger:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def reserve(self, request: SendReservationInput, *, now: datetime | None = None) -> SendReservation:
        """The gate (domain.send_gate) on the lead's facts; a grant is the reservation the cap
        counts, a refusal is recorded with its reason (and answered `suppressed`)."""
        now = now or datetime.now(UTC)
        purpose = request.effective_purpose
        async with self._sessions() as session, session.begin():
            lead = (
                await session.execute(
                    select(Lead.lead_id, Lead.consent, Lead.consent_at)
                    .where(Lead.lead_id == request.lead_id)
                    .with_for_update()
                )
            ).one_or_none()
            if lead is None:
                return SendReservation(status="suppressed", reason="lead not found (erased?)")
            if await session.get(EmailSend, request.idempotency_key) is not None:
                return SendReservation(status="granted", reason="already reserved")
            stopped = {
                kind: at
                for kind, at in (
                    await session.execute(
                        select(Event.type, func.max(Event.occurred_at))
                        .where(Event.lead_id == request.lead_id, Event.type.in_(SUPPRESSING_EVENTS))
                        .group_by(Event.type)
                    )
                ).all()
            }
            recent: list[datetime] = []
            if purpose == "marketing":
                recent = list(
                    (
                        await session.execute(
                            select(EmailSend.reserved_at).where(
                                EmailSend.lead_id == request.lead_id,
                                EmailSend.marketing.is_(True),
                                EmailSend.reserved_at > now - timedelta(seconds=request.per_seconds),
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
            facts = GateFacts(
                consent=bool(lead.consent),
                consent_at=lead.consent_at,
                stopped=stopped,
                recent_marketing=recent,
            )
            decision = decide(
                purpose,
                facts,
                max_sends=request.max_sends,
                per=timedelta(seconds=request.per_seconds),
                now=now,
            )
            if decision.status == "refused":
                await session.execute(
                    insert(SendRefusal)
                    .values(
                        key=request.idempotency_key,
                        lead_id=request.lead_id,
                        journey=request.journey,
                        purpose=purpose,
                        reason=(decision.reason or "refused")[:300],
                        refused_at=now,
                    )
                    .on_conflict_do_nothing()
                )
                return SendReservation(status="suppressed", reason=decision.reason)
            if decision.status == "deferred":
                return SendReservation(status="deferred", retry_at=decision.retry_at, reason=decision.reason)
            await session.execute(
                insert(EmailSend)
                .values(
                    key=request.idempotency_key,
                    lead_id=request.lead_id,
                    journey=request.journey,
                    marketing=purpose == "marketing",
                    reserved_at=now,
                )
                .on_conflict_do_nothing()
            )
        return SendReservation(status="granted")

    async def refusals(self, lead_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The lead's latest refused sends, newest first."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(SendRefusal)
                .where(SendRefusal.lead_id == lead_id)
                .order_by(SendRefusal.refused_at.desc())
                .limit(limit)
            )
            return [
                {
                    "journey": r.journey,
                    "purpose": r.purpose,
                    "reason": r.reason,
                    "refused_at": r.refused_at.isoformat(),
                }
                for r in rows.scalars()
            ]

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
