"""Account-based outbound: an account's contacts' intent, summed; a target account's coordinated
outreach, stopped for everyone when any one of them books a meeting."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

ACCOUNT_WORKFLOW_TYPE = "AccountJourney"
ACCOUNT_ACTIVITY_SIGNAL = "contact_activity"
ACCOUNT_STATE_QUERY = "state"
ABM_SEQUENCE_ID = "abm_outreach"
CONTACTS_KEPT = 200


def account_workflow_id(account_id: str) -> str:
    return f"account-{account_id}"


class AbmPolicy(BaseModel):
    """When an account becomes a target: enough intent from enough people, and an ICP fit."""

    intent_threshold: int = Field(60, ge=1)
    min_contacts: int = Field(2, ge=1)
    window: timedelta = timedelta(days=30)
    sequence_id: str = ABM_SEQUENCE_ID


class ContactActivity(BaseModel):
    """Signal from a lead's journey to its account's: intent points earned, fit, a booked meeting."""

    lead_id: str
    intent_points: int = 0
    fit: bool | None = None
    meeting_booked: bool = False
    at: datetime


class AccountJourneyInput(BaseModel):
    account_id: str
    state: AccountState | None = None


class ContactIntent(BaseModel):
    lead_id: str
    fit: bool | None = None
    # (day, points) pairs inside the policy's window.
    points: list[tuple[datetime, int]] = Field(default_factory=list)
    enrolled: bool = False

    def total(self, since: datetime) -> int:
        return sum(p for at, p in self.points if at >= since)


class AccountState(BaseModel):
    account_id: str
    status: Literal["watching", "targeted", "engaged"] = "watching"
    contacts: dict[str, ContactIntent] = Field(default_factory=dict)
    targeted_at: datetime | None = None
    engaged_at: datetime | None = None
    engaged_by: str | None = None
    reason: str | None = None

    def intent(self, since: datetime) -> int:
        return sum(c.total(since) for c in self.contacts.values())

    def active_contacts(self, since: datetime) -> int:
        return sum(1 for c in self.contacts.values() if c.total(since) > 0)

    def target_decision(self, policy: AbmPolicy, now: datetime) -> tuple[bool, str]:
        since = now - policy.window
        intent, people = self.intent(since), self.active_contacts(since)
        fit = any(c.fit for c in self.contacts.values())
        reason = (
            f"intent {intent} (>= {policy.intent_threshold}) from {people} contacts "
            f"(>= {policy.min_contacts}), ICP fit: {'yes' if fit else 'no'}"
        )
        return intent >= policy.intent_threshold and people >= policy.min_contacts and fit, reason


AccountJourneyInput.model_rebuild()
