"""What journeys ask of the connector activities, and what they get back.

Inputs name the lead by id: the activity reads the contact details from PostgreSQL, so no email
address or name ever enters a workflow history. Text meant for people (a chat alert, a task)
may carry `{first_name}`, `{last_name}`, `{name}`, `{company}`, `{job_title}`, `{email}` and
`{lead_id}`: they are filled in by the activity, at the last moment, from the profile.
Every write carries an idempotency key built by `domain.ids.idempotency_key` from the workflow id
and the step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from domain.send_gate import SendPurpose

SuppressionReason = Literal["unsubscribed", "bounced", "spam_complaint", "manual"]


class WriteResult(BaseModel):
    provider: str
    object_type: str
    id: str
    # False when the write found an earlier write of the same key (or the same natural key).
    created: bool = True


class FlowMark(BaseModel):
    """Which of the seed's data flows a write completes, and the event that started it (timed in
    `data_flows`, reported at `GET /v1/reports/flows`)."""

    flow: str
    event_id: str


class SyncPersonInput(BaseModel):
    """Pushes the profile and, when given, the stage, score and owner: the CRM's lead properties,
    or the email platform's segmentation properties."""

    lead_id: str
    idempotency_key: str
    lifecycle_stage: str | None = None
    lead_score: int | None = None
    score_band: str | None = None
    owner_id: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    flow: FlowMark | None = None


class CrmTaskInput(BaseModel):
    lead_id: str
    idempotency_key: str
    subject: str
    body: str = ""
    due_at: datetime
    owner_id: str | None = None
    priority: Literal["LOW", "MEDIUM", "HIGH"] = "MEDIUM"


class CrmNoteInput(BaseModel):
    lead_id: str
    idempotency_key: str
    body: str
    occurred_at: datetime


class CrmDealInput(BaseModel):
    lead_id: str
    idempotency_key: str
    deal_key: str
    name: str
    stage: str
    amount: float | None = None
    currency: str | None = None
    owner_id: str | None = None


class CrmMeetingInput(BaseModel):
    lead_id: str
    idempotency_key: str
    subject: str
    start: datetime
    end: datetime
    description: str = ""
    owner_id: str | None = None
    flow: FlowMark | None = None


class ListMembershipInput(BaseModel):
    lead_id: str
    idempotency_key: str
    list_id: str
    member: bool = True


class SendEmailInput(BaseModel):
    lead_id: str
    idempotency_key: str
    template_id: str
    variables: dict[str, Any] = Field(default_factory=dict)
    sequence_id: str | None = None
    step_id: str | None = None
    # What the email is for: the send gate (domain.send_gate) checks it before the platform is
    # called. Unset: marketing, the strictest.
    purpose: SendPurpose | None = None
    # The journey asking (for the gate's record); unset: the sequence, else "email".
    journey: str | None = None


class SuppressInput(BaseModel):
    lead_id: str
    idempotency_key: str
    reason: SuppressionReason


class ChatNotifyInput(BaseModel):
    idempotency_key: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    lead_id: str | None = None
    flow: FlowMark | None = None


class CalendarEventInput(BaseModel):
    idempotency_key: str
    lead_id: str
    summary: str
    description: str = ""
    start: datetime
    end: datetime
    time_zone: str = "UTC"
    calendar_id: str = "primary"
    extra_attendees: list[str] = Field(default_factory=list)
    # The roster's rep who hosts: the event goes in their calendar, with them invited.
    host_rep_id: str | None = None


class AnalyticsEventInput(BaseModel):
    idempotency_key: str
    client_id: str
    lead_id: str | None = None
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = None


class WebhookDeliveryInput(BaseModel):
    idempotency_key: str
    url: str
    event_type: str
    payload: dict[str, Any]


# What a connector-steps run may ask for, and the input each activity takes.
STEP_INPUTS: dict[str, type[BaseModel]] = {
    "crm.sync_person": SyncPersonInput,
    "crm.create_task": CrmTaskInput,
    "crm.add_note": CrmNoteInput,
    "crm.upsert_deal": CrmDealInput,
    "crm.log_meeting": CrmMeetingInput,
    "email.sync_profile": SyncPersonInput,
    "email.set_list_membership": ListMembershipInput,
    "email.send": SendEmailInput,
    "email.suppress": SuppressInput,
    "notify.post_message": ChatNotifyInput,
    "calendar.create_event": CalendarEventInput,
    "analytics.send_event": AnalyticsEventInput,
    "webhook.deliver": WebhookDeliveryInput,
}
CONNECTOR_STEPS_WORKFLOW_TYPE = "connector.steps"


class ConnectorStep(BaseModel):
    activity: str
    # The activity's input without `lead_id` and `idempotency_key`: the run fills both in.
    input: dict[str, Any] = Field(default_factory=dict)


class ConnectorStepsInput(BaseModel):
    """Connector writes for one lead, each exactly once: re-syncs, backfills, one-off pushes.

    `request_id` is the caller's key for the whole request: the same request twice is one run.
    """

    lead_id: str
    request_id: str = Field(min_length=1, max_length=128)
    steps: list[ConnectorStep] = Field(min_length=1, max_length=50)
    parallel: bool = False
    step_timeout_seconds: int = Field(30, ge=1, le=600)

    @model_validator(mode="after")
    def _steps_are_valid(self) -> ConnectorStepsInput:
        for n, step in enumerate(self.steps):
            model = STEP_INPUTS.get(step.activity)
            if model is None:
                raise ValueError(
                    f"steps[{n}].activity: unknown {step.activity!r}; one of {sorted(STEP_INPUTS)}"
                )
            try:
                model.model_validate({**step.input, "lead_id": self.lead_id, "idempotency_key": "check"})
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise ValueError(f"steps[{n}].input ({step.activity}): {problems}") from None
        return self


class StepOutcome(BaseModel):
    activity: str
    status: Literal["done", "failed", "skipped"]
    result: WriteResult | None = None
    error: str | None = None


class ConnectorStepsResult(BaseModel):
    outcomes: list[StepOutcome]


def connector_steps_workflow_id(lead_id: str, request_id: str) -> str:
    return f"connector-steps-{lead_id}-{request_id}"


SUPPRESSING_EVENTS = ("email_unsubscribed", "email_bounced", "email_spam_complaint")


class SendReservationInput(BaseModel):
    """Asks for one email's place under the cross-journey frequency cap, before sending it."""

    lead_id: str
    idempotency_key: str
    journey: str
    marketing: bool = True
    max_sends: int = Field(3, ge=1)
    per_seconds: int = Field(7 * 86400, ge=60)
    # What the email is for (domain.send_gate); unset: marketing, or sales for a sequence that is
    # not marketing (a reservation from before purposes).
    purpose: SendPurpose | None = None

    @property
    def effective_purpose(self) -> SendPurpose:
        return self.purpose or ("marketing" if self.marketing else "sales")


class SendReservation(BaseModel):
    status: Literal["granted", "deferred", "suppressed"]
    retry_at: datetime | None = None
    reason: str | None = None
