"""The qualify phase as the lead's workflow sees it: facts about the lead, enrollments, stage requests."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from domain.scoring import FitResult
from domain.sequences import FrequencyCap, SequenceDefinition
from domain.stages import LifecycleStage

CHANGE_STAGE_UPDATE = "change_stage"
RELOAD_RULES_SIGNAL = "reload_rules"


class LeadFactsInput(BaseModel):
    lead_id: str


class LeadFacts(BaseModel):
    """What the database knows that scoring and send windows need, without personal data."""

    fit: FitResult
    timezone: str | None = None
    country: str | None = None
    lead_source: str | None = None
    consent: bool = False


class SequencesForTrigger(BaseModel):
    kind: Literal["manual", "lead_created", "form_abandoned", "content_downloaded"]
    form_id: str | None = None
    topic: str | None = None
    # A manual enrollment names its sequence, whatever the sequence's own trigger.
    sequence_id: str | None = None
    # Replace an enrollment in flight (to move a lead onto a new version of its sequence).
    restart: bool = False


ENROLL_SIGNAL = "enroll"


class EnrollRequest(BaseModel):
    """Signal: enroll the lead in a sequence by hand, or move it onto the sequence's latest version."""

    sequence_id: str = Field(min_length=1, max_length=100)
    restart: bool = False
    # Ends the lead's enrollments in the sequence (an account's outreach stopped by a meeting).
    stop: bool = False


class Enrollable(BaseModel):
    """The sequences a trigger enrolls a lead in (snapshots), and the cap their sends share."""

    sequences: list[SequenceDefinition] = Field(default_factory=list)
    frequency_cap: FrequencyCap = Field(default_factory=FrequencyCap)
    frequency_caps: dict[str, FrequencyCap] = Field(default_factory=dict)


class StageChangeRequest(BaseModel):
    """Update: sales or ops move a lead by hand (SQL on acceptance, disqualify, recycle)."""

    stage: LifecycleStage
    reason: str = Field(min_length=3, max_length=500)
    by: str = Field(min_length=1, max_length=200)


class StageChangeResult(BaseModel):
    stage: LifecycleStage
    previous: LifecycleStage
    changed: bool
