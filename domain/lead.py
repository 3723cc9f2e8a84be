"""The lead entity: its lifecycle, the facts it folds in, and the state its workflow carries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.events import EMAIL_ENGAGEMENT, WEB_ACTIVITY, EventType, LeadEvent, Touch
from domain.lead_work import PendingWork
from domain.scoring import FitResult, Scorecard
from domain.sessions import WebSessions, WebView, campaign_of, engagement_ms
from domain.stages import LifecycleStage

LEAD_WORKFLOW_TYPE = "LeadJourney"
EVENTS_SIGNAL = "events"
MERGED_SIGNAL = "merged_into"
LEAD_STATE_QUERY = "state"
# Bounded so that a lead's state, carried through continue-as-new, cannot grow without limit.
SEEN_EVENTS_KEPT = 500
HISTORY_KEPT = 100
TIMELINE_KEPT = 50


_FORWARD_ORDER = [
    LifecycleStage.ANONYMOUS,
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.CUSTOMER,
    LifecycleStage.ADVOCATE,
]


def _rank(stage: LifecycleStage) -> int | None:
    # A recycled lead stands where a lead does: it can qualify again.
    if stage is LifecycleStage.RECYCLED:
        return _FORWARD_ORDER.index(LifecycleStage.LEAD)
    return _FORWARD_ORDER.index(stage) if stage in _FORWARD_ORDER else None


def is_forward(current: LifecycleStage, target: LifecycleStage) -> bool:
    """Stages only move forward along the funnel; recycling and disqualifying are explicit moves.

    A disqualified lead moves on only by buying (customer, advocate).
    """
    if current is LifecycleStage.DISQUALIFIED:
        return target in (LifecycleStage.CUSTOMER, LifecycleStage.ADVOCATE)
    here, there = _rank(current), _rank(target)
    if here is None or there is None or target is LifecycleStage.RECYCLED:
        return False
    return there > here


# The explicit moves sales and ops may make, besides moving forward.
_EXPLICIT_MOVES: dict[LifecycleStage, frozenset[LifecycleStage]] = {
    LifecycleStage.DISQUALIFIED: frozenset(
        {LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL, LifecycleStage.RECYCLED}
    ),
    LifecycleStage.RECYCLED: frozenset({LifecycleStage.MQL, LifecycleStage.SQL, LifecycleStage.DISQUALIFIED}),
}


def can_move(current: LifecycleStage, target: LifecycleStage) -> bool:
    """Forward, or an explicit disqualify (from a pre-customer stage) or recycle (from MQL, SQL or
    disqualified)."""
    return is_forward(current, target) or current in _EXPLICIT_MOVES.get(target, frozenset())


class EventsRecorded(BaseModel):
    """Signal: events were durably recorded for this lead. Redeliveries are folded once."""

    events: list[LeadEvent]
    # The lead these events were moved from by a merge (they were that lead's, synced by it).
    merged_from: str | None = None


class LeadMerged(BaseModel):
    """Signal: this lead turned out to be another; its events now live there."""

    into_lead_id: str


class StageChange(BaseModel):
    stage: LifecycleStage
    previous: LifecycleStage
    reason: str
    at: datetime


class IntegrationFailure(BaseModel):
    step: str
    message: str
    at: datetime


class TimelineEntry(BaseModel):
    event_id: str
    type: EventType
    name: str | None = None
    at: datetime


class Activity(BaseModel):
    """Counters the scoring and MQL rules read."""

    events_by_type: dict[str, int] = Field(default_factory=dict)
    page_views: int = 0
    # Derived from the views' own times (domain/sessions.py): 30 minutes apart or a new campaign.
    sessions: int = 0
    last_web_activity_at: datetime | None = None
    email_engagements: int = 0
    forms_submitted: int = 0
    # What the pages reported as engaged time (`engagement_time_msec`), over every event.
    engagement_seconds: float = 0.0
    web: WebSessions = Field(default_factory=WebSessions)

    def fold(self, event: LeadEvent) -> None:
        self.events_by_type[event.type.value] = self.events_by_type.get(event.type.value, 0) + 1
        engaged = engagement_ms(event.properties)
        self.engagement_seconds += engaged / 1000
        if event.type in WEB_ACTIVITY:
            self.page_views += 1
            if not self.web.views and not self.web.closed_sessions:
                # A state from before sessions were derived: what it counted stands.
                self.web.closed_sessions = self.sessions
            self.web.add(WebView(at=event.occurred_at, campaign=campaign_of(event.touch), engaged_ms=engaged))
            self.sessions = self.web.count
            last = self.last_web_activity_at
            if last is None or event.occurred_at > last:
                self.last_web_activity_at = event.occurred_at
        if event.type in EMAIL_ENGAGEMENT:
            self.email_engagements += 1
        if event.type is EventType.FORM_SUBMITTED:
            self.forms_submitted += 1


class Enrollment(BaseModel):
    """One enrollment, as the lead's workflow remembers it."""

    sequence_id: str
    version: int
    enrollment: int
    workflow_id: str
    status: Literal["active", "paused", "completed", "exited"] = "active"
    started_at: datetime
    ended_at: datetime | None = None
    reason: str | None = None


class LeadState(BaseModel):
    """Everything the lead's workflow knows, in one model so continue-as-new can carry it whole."""

    lead_id: str
    email_hash: str | None = None
    stage: LifecycleStage = LifecycleStage.ANONYMOUS
    stage_history: list[StageChange] = Field(default_factory=list)
    first_touch: Touch | None = None
    last_touch: Touch | None = None
    activity: Activity = Field(default_factory=Activity)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    seen_event_ids: list[str] = Field(default_factory=list)
    account_id: str | None = None
    # The advocate whose referral code brought this lead (their lead id).
    referred_by: str | None = None
    crm_contact_id: str | None = None
    # A rep deleted the CRM record: the engine does not make it again until the person next
    # submits a form (a new hand-raise).
    crm_deleted: bool = False
    email_profile_id: str | None = None
    welcome_enrolled: bool = False
    welcome_skipped_reason: str | None = None
    failures: list[IntegrationFailure] = Field(default_factory=list)
    last_activity_at: datetime | None = None
    merged_into: str | None = None
    # The qualify phase: score, fit, the facts journeys branch on, and nurture enrollments.
    scorecard: Scorecard = Field(default_factory=Scorecard)
    score: int = 0
    score_band: str = "cold"
    email_engagement: int = 0
    content_pieces: int = 0
    fit: FitResult | None = None
    mql_met: list[str] = Field(default_factory=list)
    mql_missing: list[str] = Field(default_factory=list)
    timezone: str | None = None
    country: str | None = None
    lead_source: str | None = None
    enrollments: list[Enrollment] = Field(default_factory=list)
    # What the CRM and the email platform were last told (score, band, stage).
    pushed: str | None = None
    # Sessions before the last recycle: the MQL rule counts the ones since.
    sessions_before_recycle: int = 0
    # Hand-offs to sales: how many there were, and the one in flight.
    handoffs: int = 0
    active_handoff: str | None = None
    owner: str | None = None
    owner_crm_id: str | None = None
    # What the lead's events and messages asked for that is not done yet (carried by continue-as-new).
    pending: PendingWork = Field(default_factory=PendingWork)

    def has_seen(self, event_id: str) -> bool:
        return event_id in self.seen_event_ids

    def remember(self, event_id: str) -> None:
        self.seen_event_ids.append(event_id)
        del self.seen_event_ids[:-SEEN_EVENTS_KEPT]

    def fold(self, event: LeadEvent) -> None:
        """The pure part of taking in an event: counters, touches, timeline."""
        self.activity.fold(event)
        if not event.touch.is_empty():
            if self.first_touch is None:
                self.first_touch = event.touch
            self.last_touch = event.touch
        if self.last_activity_at is None or event.occurred_at > self.last_activity_at:
            self.last_activity_at = event.occurred_at
        if event.type is EventType.GROUP and event.properties.get("group_id"):
            self.account_id = str(event.properties["group_id"])
        self.timeline.append(
            TimelineEntry(event_id=event.event_id, type=event.type, name=event.name, at=event.occurred_at)
        )
        del self.timeline[:-TIMELINE_KEPT]

    def move_to(self, stage: LifecycleStage, reason: str, at: datetime, *, explicit: bool = False) -> bool:
        """Forward moves only, unless `explicit` (a person's decision): then recycle and disqualify too."""
        allowed = can_move(self.stage, stage) if explicit else is_forward(self.stage, stage)
        if not allowed:
            return False
        if stage is LifecycleStage.RECYCLED:
            # A recycled lead qualifies again on new behaviour, not on what qualified it before.
            fit, self.scorecard = self.scorecard.fit, Scorecard()
            if fit is not None:
                self.scorecard.set_fit(fit)
            self.sessions_before_recycle = self.activity.sessions
        self.stage_history.append(StageChange(stage=stage, previous=self.stage, reason=reason, at=at))
        del self.stage_history[:-HISTORY_KEPT]
        self.stage = stage
        return True

    @property
    def sessions_counted(self) -> int:
        return self.activity.sessions - self.sessions_before_recycle

    def record_failure(self, step: str, message: str, at: datetime) -> None:
        self.failures.append(IntegrationFailure(step=step, message=message, at=at))
        del self.failures[:-HISTORY_KEPT]


# Events that show who the person is: an anonymous visitor becomes a lead.
IDENTIFYING = frozenset(
    {EventType.IDENTIFY, EventType.FORM_SUBMITTED, EventType.FORM_ABANDONED, EventType.LEAD_AD_SUBMITTED}
)


class LeadWorkflowInput(BaseModel):
    lead_id: str
    email_hash: str | None = None
    # Present only when the run continues as new: the state and the events not yet handled.
    state: LeadState | None = None
    pending: list[LeadEvent] = Field(default_factory=list)
    # Continue as new past this many history events even if the server has not suggested it (tests
    # that cross a run's end; None: when the server suggests).
    history_limit: int | None = Field(default=None, ge=10)


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
