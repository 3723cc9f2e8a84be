"""The lead entity: its lifecycle, the facts it folds in, and the state its workflow carries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

LEAD_WORKFLOW_TYPE = "LeadJourney"
FORM_SUBMITTED_SIGNAL = "form_submitted"
LEAD_STATE_QUERY = "state"
# Bounded so that a lead's state, carried through continue-as-new, cannot grow without limit.
SEEN_SUBMISSIONS_KEPT = 200
HISTORY_KEPT = 100


class LifecycleStage(StrEnum):
    ANONYMOUS = "anonymous"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    CUSTOMER = "customer"
    ADVOCATE = "advocate"
    DISQUALIFIED = "disqualified"
    RECYCLED = "recycled"


_FORWARD_ORDER = [
    LifecycleStage.ANONYMOUS,
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.CUSTOMER,
    LifecycleStage.ADVOCATE,
]


def is_forward(current: LifecycleStage, target: LifecycleStage) -> bool:
    """Stages only move forward along the funnel; recycling and disqualifying are explicit moves."""
    if current in _FORWARD_ORDER and target in _FORWARD_ORDER:
        return _FORWARD_ORDER.index(target) > _FORWARD_ORDER.index(current)
    return False


class Attribution(BaseModel):
    lead_source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None


class FormSubmitted(BaseModel):
    """Signal: a form submission was recorded. Carries ids and attribution, never the PII itself."""

    submission_id: str
    form_id: str
    submitted_at: datetime
    consent: bool = False
    welcome_list: str | None = None
    attribution: Attribution = Field(default_factory=Attribution)


class StageChange(BaseModel):
    stage: LifecycleStage
    previous: LifecycleStage
    reason: str
    at: datetime


class IntegrationFailure(BaseModel):
    step: str
    message: str
    at: datetime


class LeadState(BaseModel):
    """Everything the lead's workflow knows, in one model so continue-as-new can carry it whole."""

    lead_id: str
    email_hash: str
    stage: LifecycleStage = LifecycleStage.ANONYMOUS
    stage_history: list[StageChange] = Field(default_factory=list)
    first_touch: Attribution | None = None
    last_touch: Attribution | None = None
    submissions: int = 0
    seen_submission_ids: list[str] = Field(default_factory=list)
    crm_contact_id: str | None = None
    email_profile_id: str | None = None
    welcome_enrolled: bool = False
    welcome_skipped_reason: str | None = None
    failures: list[IntegrationFailure] = Field(default_factory=list)
    last_activity_at: datetime | None = None

    def has_seen(self, submission_id: str) -> bool:
        return submission_id in self.seen_submission_ids

    def remember(self, submission_id: str) -> None:
        self.seen_submission_ids.append(submission_id)
        del self.seen_submission_ids[:-SEEN_SUBMISSIONS_KEPT]

    def move_to(self, stage: LifecycleStage, reason: str, at: datetime) -> bool:
        if not is_forward(self.stage, stage):
            return False
        self.stage_history.append(StageChange(stage=stage, previous=self.stage, reason=reason, at=at))
        del self.stage_history[:-HISTORY_KEPT]
        self.stage = stage
        return True

    def record_failure(self, step: str, message: str, at: datetime) -> None:
        self.failures.append(IntegrationFailure(step=step, message=message, at=at))
        del self.failures[:-HISTORY_KEPT]


class LeadWorkflowInput(BaseModel):
    lead_id: str
    email_hash: str
    # Present only when the run continues as new: the state and the signals not yet handled.
    state: LeadState | None = None
    pending: list[FormSubmitted] = Field(default_factory=list)


class UpsertContactInput(BaseModel):
    lead_id: str
    submission_id: str
    lifecycle_stage: LifecycleStage
    idempotency_key: str


class UpsertContactResult(BaseModel):
    contact_id: str
    created: bool


class EnrollWelcomeInput(BaseModel):
    lead_id: str
    submission_id: str
    list_id: str | None = None
    idempotency_key: str


class EnrollWelcomeResult(BaseModel):
    profile_id: str
    enrolled: bool
    skipped_reason: str | None = None
