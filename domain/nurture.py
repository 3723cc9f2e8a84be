"""A nurture enrollment: what its workflow is given, what it keeps, and what it hears.

The sequence definition is snapshotted into the input when the lead enrolls, so editing the
sequence file never changes a journey in flight: a new version applies to new enrollments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.sequences import FrequencyCap, LeadContext, SequenceDefinition

NURTURE_WORKFLOW_TYPE = "Nurture"
NURTURE_CONTEXT_SIGNAL = "lead_context"
NURTURE_EVENT_SIGNAL = "lead_event"
NURTURE_STATE_QUERY = "state"
NURTURE_ENDED_SIGNAL = "nurture_ended"
STEP_LOG_KEPT = 100

NurtureStatus = Literal["active", "paused", "completed", "exited"]


def nurture_workflow_id(lead_id: str, sequence_id: str, enrollment: int) -> str:
    return f"nurture-{lead_id}-{sequence_id}-{enrollment}"


def parse_nurture_workflow_id(workflow_id: str) -> tuple[str, str, int] | None:
    """(lead id, sequence id, enrollment) of a nurture run's id; None for any other id."""
    prefix = "nurture-"
    if not workflow_id.startswith(prefix) or len(workflow_id) < len(prefix) + 36 + 4:
        return None
    lead_id, rest = workflow_id[len(prefix) : len(prefix) + 36], workflow_id[len(prefix) + 36 :]
    sequence_id, _, number = rest[1:].rpartition("-")
    if not rest.startswith("-") or not sequence_id or not number.isdigit():
        return None
    return lead_id, sequence_id, int(number)


class EventNotice(BaseModel):
    """An event of the lead, as a nurture needs it: for `wait_until` steps and the goal."""

    event_id: str
    type: str
    name: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    occurred_at: datetime


class StepLog(BaseModel):
    step_id: str
    kind: str
    at: datetime
    detail: str = ""


class NurtureState(BaseModel):
    status: NurtureStatus = "active"
    current: str
    enrolled_at: datetime
    visits: dict[str, int] = Field(default_factory=dict)
    variants: dict[str, str] = Field(default_factory=dict)
    sends: int = 0
    # The end of the wait the current step is in (so a continued run, or a resume, keeps it).
    deadline: datetime | None = None
    exit_reason: str | None = None
    pause_reason: str | None = None
    steps_taken: int = 0
    log: list[StepLog] = Field(default_factory=list)

    def record(self, step_id: str, kind: str, at: datetime, detail: str = "") -> None:
        self.log.append(StepLog(step_id=step_id, kind=kind, at=at, detail=detail))
        del self.log[:-STEP_LOG_KEPT]


class NurtureInput(BaseModel):
    lead_id: str
    enrollment: int = 1
    sequence: SequenceDefinition
    context: LeadContext
    frequency_cap: FrequencyCap = Field(default_factory=FrequencyCap)
    # The seed's "lead score -> email frequency": a cap per score band, else `frequency_cap`.
    frequency_caps: dict[str, FrequencyCap] = Field(default_factory=dict)
    # Present when the run continues as new.
    state: NurtureState | None = None
    pending_events: list[EventNotice] = Field(default_factory=list)
    # A run continues as new after this many steps, so a long sequence keeps a short history.
    max_steps_per_run: int = Field(200, ge=2)


class NurtureEnded(BaseModel):
    """Signal to the lead's workflow: an enrollment finished (completed, exited)."""

    sequence_id: str
    enrollment: int
    status: NurtureStatus
    reason: str | None = None
