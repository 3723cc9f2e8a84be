"""The MQL -> sales hand-off: what its workflow is given, keeps, and answers.

`handoff-{lead_id}-{n}`: the n-th time this lead became an MQL. It assigns a rep, tells the rep
(Slack and email) with the lead's context in the CRM, and waits for the rep to accept within the
SLA; past it, it escalates along the roster's chain (next rep, manager, team queue), auditing
every step. Acceptance makes the lead an SQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

HANDOFF_WORKFLOW_TYPE = "Handoff"
ACCEPT_UPDATE = "accept"
HANDOFF_STATE_QUERY = "state"
HANDOFF_CLOSE_SIGNAL = "close"
HANDOFF_OUTCOME_SIGNAL = "handoff_outcome"
AUDIT_KEPT = 100

EscalationStep = Literal["next_rep", "manager", "team_queue"]
DEFAULT_CHAIN: tuple[EscalationStep, ...] = ("next_rep", "manager", "team_queue")


def handoff_workflow_id(lead_id: str, n: int) -> str:
    return f"handoff-{lead_id}-{n}"


class HandoffInput(BaseModel):
    lead_id: str
    number: int = 1
    mql_at: datetime
    score: int
    score_band: str
    reasons: list[str] = Field(default_factory=list)


class AssignInput(BaseModel):
    handoff_id: str
    attempt: int
    lead_id: str
    exclude: list[str] = Field(default_factory=list)


class Assignment(BaseModel):
    """Who has the lead now: a rep, or the team queue when nobody is available."""

    rep_id: str | None = None
    rep_name: str | None = None
    slack_user_id: str | None = None
    manager_id: str | None = None
    manager_slack_id: str | None = None
    crm_owner_id: str | None = None
    team_id: str
    queue_channel: str
    team_reps: list[str] = Field(default_factory=list)
    queue: bool = False
    reason: str


class HandoffPolicy(BaseModel):
    """The roster's SLA and escalation chain, read when the hand-off starts."""

    sla: timedelta = timedelta(minutes=5)
    step_timeout: timedelta = timedelta(minutes=5)
    chain: list[EscalationStep] = Field(default_factory=lambda: list(DEFAULT_CHAIN))
    manager_slack_id: str | None = None


class Milestone(BaseModel):
    handoff_id: str
    lead_id: str
    kind: Literal["mql", "assigned", "notified", "escalated", "accepted", "closed"]
    at: datetime
    rep_id: str | None = None
    detail: str = ""


HANDOFF_CRM_ACCEPT_SIGNAL = "accepted_in_crm"


class CrmAcceptance(BaseModel):
    """Signal: the rep took the lead in the CRM (a webhook told the lead's journey)."""

    detail: str
    at: datetime


class CrmOwnerInput(BaseModel):
    """Which roster rep a CRM owner is (matched by email)."""

    crm_owner_id: str


class CrmOwnerRep(BaseModel):
    rep_id: str | None = None


class AcceptRequest(BaseModel):
    rep_id: str = Field(min_length=1, max_length=100)
    note: str = Field("", max_length=500)
    # The SLA is judged by the rep's answer, not by when a busy or restarted worker got to it.
    clicked_at: datetime | None = Field(
        None, description="Set by the API to when the click arrived; a value sent is replaced."
    )


class AcceptResult(BaseModel):
    handoff_id: str
    rep_id: str
    accepted_at: datetime
    seconds_from_mql: float


class AuditEntry(BaseModel):
    at: datetime
    what: str
    rep_id: str | None = None


class HandoffState(BaseModel):
    status: Literal["assigning", "waiting", "accepted", "queued", "closed"] = "assigning"
    mql_at: datetime | None = None
    assignment: Assignment | None = None
    attempt: int = 0
    tried: list[str] = Field(default_factory=list)
    accepted_by: str | None = None
    accepted_at: datetime | None = None
    assigned_at: datetime | None = None
    notified_at: datetime | None = None
    close_reason: str | None = None
    audit: list[AuditEntry] = Field(default_factory=list)

    def log(self, at: datetime, what: str, rep_id: str | None = None) -> None:
        self.audit.append(AuditEntry(at=at, what=what, rep_id=rep_id))
        del self.audit[:-AUDIT_KEPT]

    def acceptance(self, handoff_id: str) -> AcceptResult | None:
        """What the rep's click answers, once accepted (None for a run that predates `mql_at`)."""
        if self.accepted_by is None or self.accepted_at is None or self.mql_at is None:
            return None
        return AcceptResult(
            handoff_id=handoff_id,
            rep_id=self.accepted_by,
            accepted_at=self.accepted_at,
            seconds_from_mql=(self.accepted_at - self.mql_at).total_seconds(),
        )


class HandoffOutcome(BaseModel):
    """Signal to the lead's workflow: the rep accepted (the lead becomes an SQL)."""

    handoff_id: str
    rep_id: str
    accepted_at: datetime
    crm_owner_id: str | None = None


# What the rep's work after acceptance is: a sequence in config/sequences/.
SALES_SEQUENCE_ID = "sales_outreach"


class RepNotifyInput(BaseModel):
    """Tells a rep (or the manager, or the team queue) about a lead: Slack, and an email to a rep."""

    idempotency_key: str
    lead_id: str
    handoff_id: str
    kind: Literal["assigned", "escalated_to_you", "manager_alert", "queue"]
    rep_id: str | None = None
    slack_channel: str
    score: int
    score_band: str
    reasons: list[str] = Field(default_factory=list)
    minutes_waiting: float = 0
