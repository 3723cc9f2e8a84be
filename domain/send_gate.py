"""The one gate every email to a lead passes, whichever journey asks: consent for the message's
purpose, suppression, the cross-journey frequency cap. Pure: the store gathers the facts, this
decides, the store records the decision (a refusal with its reason, a grant as the reservation
the cap counts).

Purposes, and what each needs:
- `marketing` (nurtures, recovery, content follow-up, ABM, win-back): marketing consent, given (a
  form's consent box, with its source and time) and not withdrawn since (an unsubscribe after
  it); under the frequency cap.
- `sales` (a rep's one-to-one outreach after the person asked for it): no marketing consent
  needed, but an unsubscribe is honoured (an opt-out covers commercial email, one-to-one too).
- `service` (onboarding, renewal, surveys: messages about a customer's relationship): neither
  consent nor an unsubscribe from marketing stops them.

A hard bounce or a spam complaint stops every purpose: the address cannot, or must not, be
written to again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

SendPurpose = Literal["marketing", "sales", "service"]
PURPOSES: tuple[SendPurpose, ...] = ("marketing", "sales", "service")
# The events that stop sends, and which purposes each stops.
STOPS: dict[str, frozenset[str]] = {
    "email_bounced": frozenset(PURPOSES),
    "email_spam_complaint": frozenset(PURPOSES),
    "email_unsubscribed": frozenset({"marketing", "sales"}),
}


class GateFacts(BaseModel):
    """What the store knows about the lead when a send is asked for."""

    consent: bool = False
    consent_at: datetime | None = None
    # The latest time of each stopping event the lead has (`STOPS`' keys).
    stopped: dict[str, datetime] = {}
    # When the lead's marketing sends that count under the cap were reserved.
    recent_marketing: list[datetime] = []


class GateDecision(BaseModel):
    status: Literal["granted", "refused", "deferred"]
    reason: str | None = None
    retry_at: datetime | None = None


def decide(
    purpose: SendPurpose, facts: GateFacts, *, max_sends: int, per: timedelta, now: datetime
) -> GateDecision:
    """Whether this send may go now: refused (for good, with the reason), deferred (until the cap
    has room) or granted."""
    for event, stopped_purposes in STOPS.items():
        at = facts.stopped.get(event)
        if at is None or purpose not in stopped_purposes:
            continue
        if event == "email_unsubscribed" and facts.consent and facts.consent_at and facts.consent_at > at:
            continue  # consent given again after the unsubscribe
        return GateDecision(status="refused", reason=f"{event.removeprefix('email_')} at {at.isoformat()}")
    if purpose == "marketing" and not facts.consent:
        return GateDecision(status="refused", reason="no marketing consent")
    if purpose == "marketing":
        counted = sorted(t for t in facts.recent_marketing if t > now - per)
        if len(counted) >= max_sends:
            # The oldest send that counts leaves the window first.
            retry_at = counted[len(counted) - max_sends] + per
            return GateDecision(
                status="deferred",
                retry_at=retry_at,
                reason=f"{len(counted)} marketing emails in the last {int(per.total_seconds())} s",
            )
    return GateDecision(status="granted")
