"""The lead's work in waiting: what its events and messages asked for that the workflow has not
carried out yet.

It is part of `LeadState`, so continue-as-new carries it: an `enroll` or `handoff_outcome` that
arrives while a run is about to end is done by the next run, never dropped. Every list is bounded,
so a flood of messages cannot grow the state (and the history) without limit.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from domain.customers import CustomerEvent, ReferralReport
from domain.events import LeadEvent
from domain.experiments import ExposureInput
from domain.handoff import HandoffOutcome
from domain.nurture import EventNotice
from domain.qualify import SequencesForTrigger

# Enough for any burst a lead can cause between two settlements; the oldest go first past it.
PENDING_KEPT = 100
EXPOSURES_KEPT = 20


def keep_last(items: list[Any], limit: int = PENDING_KEPT) -> None:
    del items[:-limit]


class PendingWork(BaseModel):
    """Accumulated by the lead's reactions to events and messages; drained when the lead settles."""

    # Firmographic fit and time zone must be read again (the person or their company changed).
    facts_due: bool = False
    # The nurtures must hear the lead's context again (its stage changed by hand).
    context_due: bool = False
    # Events the lead's nurtures wait for or count as their goal.
    forward: list[EventNotice] = Field(default_factory=list)
    # Sequences to look up and enroll the lead in.
    triggers: list[SequencesForTrigger] = Field(default_factory=list)
    # Sequences whose enrollments must end.
    stops: list[str] = Field(default_factory=list)
    # Hand-offs a rep accepted.
    outcomes: list[HandoffOutcome] = Field(default_factory=list)
    # Acceptances seen in the CRM, for the hand-off in flight.
    crm_accepts: list[str] = Field(default_factory=list)
    # Booked meetings to log on the CRM record (and to invite to, where no scheduler did).
    meetings: list[LeadEvent] = Field(default_factory=list)
    # Intent points and a booked meeting, for the account's journey.
    intent: int = 0
    meeting_booked: bool = False
    # A customer's payments, use and answers, for the account's customer journey.
    customer_events: list[CustomerEvent] = Field(default_factory=list)
    referral: ReferralReport | None = None
    # The hand-off in flight ends: the lead became a customer.
    close_reason: str | None = None
    # Experiment variants the lead was shown.
    exposures: list[ExposureInput] = Field(default_factory=list)
    # The email click that the next CRM push completes (the seed's click -> CRM flow).
    last_click: str | None = None
    # The CRM owner changed there: which rep it is must be looked up.
    owner_due: bool = False

    def bound(self) -> None:
        for items in (
            self.forward,
            self.triggers,
            self.stops,
            self.outcomes,
            self.crm_accepts,
            self.meetings,
            self.customer_events,
        ):
            keep_last(items)
        keep_last(self.exposures, EXPOSURES_KEPT)
