"""How a lead reacts: pure decisions from its state, an event or a message, the scoring rules and
the time, to the new state and the effects the lead's workflow must carry out.

No I/O, no clock, no randomness: everything a decision needs comes in as an argument, and what it
wants done in the world comes out as a typed effect (`Effect`). The decisions change the state
they are given (the lead's one `LeadState`) and nothing else; the workflow carries the effects
out, in the order given, each in one short coroutine (`workflows/lead_effects.py`).

Two moments:
- `react_to_event`: one event folded in. Its scores, triggers and news for other journeys wait in
  `state.pending`; only the form's sync to the CRM and email platform happens at once.
- `settle`: after a batch of events or a message. The score's totals, the MQL rule, accepted
  hand-offs; then everything pending, drained into effects.

A new behaviour is one effect here, one rule that emits it, and one coroutine that does it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel

from domain.accounts import ContactActivity
from domain.customers import (
    CustomerEvent,
    CustomerEventKind,
    CustomerReport,
    ReferralReport,
    customer_account_id,
    nps_class,
    survey_score,
)
from domain.events import EMAIL_ENGAGEMENT, LOST_DEAL_STAGES, WON_DEAL_STAGES, EventType, LeadEvent
from domain.experiments import EXPERIMENT_VIEWED, ExposureInput
from domain.handoff import SALES_SEQUENCE_ID, HandoffOutcome
from domain.lead import IDENTIFYING, Enrollment, LeadState, LifecycleStage
from domain.lead_work import EXPOSURES_KEPT
from domain.nurture import EventNotice, NurtureEnded
from domain.qualify import EnrollRequest, LeadFacts, SequencesForTrigger
from domain.scoring import ScoringConfig, engagement_of, mql_decision, score_event, totals
from domain.sequences import EnrollmentRecord, LeadContext, SequenceDefinition, may_enroll

# Schedulers that put the meeting in the host's calendar themselves.
SCHEDULERS_WITH_CALENDAR = frozenset({"calendly"})
CUSTOMER_STAGES = frozenset({LifecycleStage.CUSTOMER, LifecycleStage.ADVOCATE})
QUALIFIED_STAGES = frozenset(
    {LifecycleStage.MQL, LifecycleStage.SQL, LifecycleStage.CUSTOMER, LifecycleStage.ADVOCATE}
)
# Stages a person's move ends the hand-off in flight for.
HANDOFF_ENDING_STAGES = frozenset(
    {LifecycleStage.RECYCLED, LifecycleStage.DISQUALIFIED, LifecycleStage.CUSTOMER, LifecycleStage.SQL}
)
SURVEY_EVENT = "survey responded"
ENROLLMENTS_KEPT = 50
# The facts that change fit: who the person is and where they work.
PROFILE_EVENTS = frozenset(
    {EventType.IDENTIFY, EventType.FORM_SUBMITTED, EventType.LEAD_AD_SUBMITTED, EventType.GROUP}
)
CUSTOMER_EVENTS = frozenset({EventType.PURCHASE, EventType.SUBSCRIPTION_STARTED})
# What a nurture may wait for or count as its goal.
FORWARDED = frozenset(
    {*EMAIL_ENGAGEMENT, EventType.FORM_SUBMITTED, EventType.MEETING_BOOKED, EventType.TRACK, EventType.PAGE}
)
CRM_TARGET = "crm"
EMAIL_TARGET = "email"


class LeadFeatures(Protocol):
    """Which behaviours this run has (each one a patch: a run recorded before it replays without)."""

    @property
    def qualify(self) -> bool: ...
    @property
    def customers(self) -> bool: ...
    @property
    def calendar_invites(self) -> bool: ...
    @property
    def page_experiments(self) -> bool: ...
    @property
    def handoff(self) -> bool: ...
    @property
    def sales_outreach(self) -> bool: ...
    @property
    def deal_lost_recycles(self) -> bool: ...


# --- Effects: what the workflow must do in the world, one coroutine each ------------------------


class UpdateSearchAttributes(BaseModel):
    """Stage, score, account or email hash changed: ops find the lead by them."""


class UpdateScoreAttribute(BaseModel):
    """The score or stage changed while settling."""


class SyncForm(BaseModel):
    """A form was submitted: upsert the CRM contact and enroll in the email platform's welcome flow."""

    submission_id: str
    form_id: str | None = None
    welcome_list: str | None = None


class AskForConsent(BaseModel):
    """A double opt-in form: the person is asked by email to confirm the consent they gave."""

    submission_id: str
    form_id: str | None = None


class EnrollConfirmed(BaseModel):
    """The person confirmed a double opt-in consent: now the welcome flow subscribes them."""

    submission_id: str
    welcome_list: str | None = None


class FetchFacts(BaseModel):
    """Firmographic fit and time zone must be read (then `apply_facts`)."""


class StartHandoff(BaseModel):
    """The lead is an MQL: sales gets it now."""

    reasons: list[str]


class FollowCrmOwner(BaseModel):
    """The CRM record's owner changed there: the lead's owner becomes the rep it is (if any)."""

    crm_owner_id: str | None


class CloseHandoff(BaseModel):
    """The hand-off in flight ends (the lead moved on)."""

    reason: str


class TellHandoffCrmAccepted(BaseModel):
    """The CRM says a rep took the lead: the hand-off in flight hears it."""

    detail: str


class LogMeeting(BaseModel):
    """A booked meeting goes on the CRM record (the seed: meeting booked -> CRM, immediate)."""

    event_id: str
    subject: str
    start: datetime
    end: datetime
    source: str


class InviteToMeeting(BaseModel):
    """No scheduler made the invite: the event in the owner's calendar, the lead invited."""

    event_id: str
    subject: str
    start: datetime
    end: datetime
    source: str


class PushProfile(BaseModel):
    """Stage, score and band to the CRM and the email platform (the seed's score change -> PUT)."""

    targets: list[str]
    pushed: str
    stage: str
    score: int
    score_band: str
    click_event_id: str | None = None


class StopEnrollments(BaseModel):
    sequence_id: str


class Enroll(BaseModel):
    """Look up the sequences a trigger enrolls in, then `plan_enrollment` for each."""

    trigger: SequencesForTrigger


class ReportToAccount(BaseModel):
    activity: ContactActivity


class ReportToCustomer(BaseModel):
    report: CustomerReport


class ReportReferral(BaseModel):
    referral: ReferralReport


class ExposeToExperiment(BaseModel):
    exposure: ExposureInput


class TellNurtures(BaseModel):
    """The lead's nurtures hear its context (when it changed) and the events they may wait for."""

    context_changed: bool
    events: list[EventNotice]


Effect = (
    UpdateSearchAttributes
    | UpdateScoreAttribute
    | SyncForm
    | AskForConsent
    | EnrollConfirmed
    | FetchFacts
    | StartHandoff
    | CloseHandoff
    | FollowCrmOwner
    | TellHandoffCrmAccepted
    | LogMeeting
    | InviteToMeeting
    | PushProfile
    | StopEnrollments
    | Enroll
    | ReportToAccount
    | ReportToCustomer
    | ReportReferral
    | ExposeToExperiment
    | TellNurtures
)


@dataclass
class Settlement:
    effects: list[Effect] = field(default_factory=list)
    # The stage or score changed (the search attributes follow).
    changed: bool = False


# --- Reactions ------------------------------------------------------------------------------------


def deal_won(event: LeadEvent) -> bool:
    stage = str(event.properties.get("stage", "")).lower()
    return event.type is EventType.DEAL_STAGE_CHANGED and stage in WON_DEAL_STAGES


def deal_lost(event: LeadEvent) -> bool:
    stage = str(event.properties.get("stage", "")).lower()
    return event.type is EventType.DEAL_STAGE_CHANGED and stage in LOST_DEAL_STAGES


# The stages a lost deal sends back to marketing: the person was with sales (a customer's lost
# upsell leaves them a customer).
RECYCLED_BY_LOST_DEAL = frozenset({LifecycleStage.MQL, LifecycleStage.SQL})


def react_to_event(
    state: LeadState, event: LeadEvent, rules: ScoringConfig | None, features: LeadFeatures, now: datetime
) -> list[Effect]:
    """One new event: folded into the state; what it asks of the outside waits in `state.pending`,
    except the form's sync. `rules` is None only for runs from before the qualify phase."""
    state.fold(event)
    changed = False
    if event.email_hash and event.email_hash != state.email_hash:
        state.email_hash = event.email_hash
        changed = True
    became_lead = event.type in IDENTIFYING and state.move_to(
        LifecycleStage.LEAD, f"{event.type.value} ({event.form_id or event.source})", event.occurred_at
    )
    changed = changed or became_lead
    stage_before = state.stage
    _note_crm_record(state, event)
    if rules is not None:
        _qualify(state, event, rules, features, now, became_lead=became_lead)
    changed = changed or state.stage is not stage_before
    effects: list[Effect] = []
    if changed or event.type is EventType.GROUP:
        effects.append(UpdateSearchAttributes())
    if event.type is EventType.FORM_SUBMITTED and event.submission_id:
        effects.append(
            SyncForm(
                submission_id=event.submission_id, form_id=event.form_id, welcome_list=event.welcome_list
            )
        )
        if event.properties.get("consent_requested") is True:
            effects.append(AskForConsent(submission_id=event.submission_id, form_id=event.form_id))
    if event.type is EventType.CONSENT_CONFIRMED and event.submission_id:
        effects.append(EnrollConfirmed(submission_id=event.submission_id, welcome_list=event.welcome_list))
    return effects


def _note_crm_record(state: LeadState, event: LeadEvent) -> None:
    """What happened to the person's CRM record there: a new owner, a merge, a deletion, a rep's
    call or completed task (which tells the hand-off in flight a rep is working the lead)."""
    pending = state.pending
    if event.type is EventType.CRM_OWNER_CHANGED:
        owner = event.properties.get("crm_owner_id")
        owner = str(owner) if owner else None
        if owner != state.owner_crm_id:
            state.owner_crm_id = owner
            # The nurtures' emails from the owner come from the new one.
            pending.owner_due = pending.context_due = True
    elif event.type is EventType.CRM_RECORD_MERGED:
        kept = event.properties.get("contact_id")
        if kept:
            state.crm_contact_id, state.crm_deleted = str(kept), False
    elif event.type is EventType.CRM_RECORD_DELETED:
        deleted = event.properties.get("contact_id")
        if state.crm_contact_id in (None, str(deleted)):
            # Not recreated by the next push. A hand-off in flight goes on: a deleted record is
            # not a rep's decision on the person (a duplicate cleaned up looks the same).
            state.crm_contact_id, state.crm_deleted = None, True
    elif event.type is EventType.SALES_ACTIVITY and state.active_handoff:
        pending.crm_accepts.append(f"{event.name} ({event.source})")


def _qualify(
    state: LeadState,
    event: LeadEvent,
    rules: ScoringConfig,
    features: LeadFeatures,
    now: datetime,
    *,
    became_lead: bool,
) -> None:
    pending = state.pending
    hits = score_event(rules, event)
    if hits:
        # A device clock far ahead must not push real history out of the window.
        state.scorecard.apply(hits, min(event.occurred_at, now), rules)
    if event.type in PROFILE_EVENTS and state.stage is not LifecycleStage.ANONYMOUS:
        pending.facts_due = True
    if became_lead:
        pending.facts_due = True
        pending.triggers.append(SequencesForTrigger(kind="lead_created"))
    if event.type is EventType.FORM_ABANDONED:
        pending.triggers.append(SequencesForTrigger(kind="form_abandoned", form_id=event.form_id))
    for hit in hits:
        if hit.category == "content" and state.stage is not LifecycleStage.ANONYMOUS:
            pending.triggers.append(SequencesForTrigger(kind="content_downloaded", topic=hit.topic))
    if event.type in CUSTOMER_EVENTS or deal_won(event):
        if state.move_to(LifecycleStage.CUSTOMER, f"{event.type.value} ({event.source})", event.occurred_at):
            pending.close_reason = f"the lead became a customer ({event.type.value})"
    _note_customer_event(state, event)
    _note_exposure(state, event)
    pending.intent += sum(h.points for h in hits if h.points > 0 and h.category != "email")
    if event.type is EventType.SALES_ACCEPTED and state.active_handoff:
        pending.crm_accepts.append(f"{event.name} ({event.source})")
    if (
        features.deal_lost_recycles
        and deal_lost(event)
        and state.stage in RECYCLED_BY_LOST_DEAL
        and state.move_to(
            LifecycleStage.RECYCLED, f"deal lost ({event.source})", event.occurred_at, explicit=True
        )
    ):
        # Back to marketing: the nurtures held while sales had the lead resume, and it qualifies
        # again on new behaviour only (the score starts over).
        pending.context_due = True
        if state.active_handoff:
            pending.close_reason = f"the lead's deal was lost ({event.source})"
    if event.type is EventType.SALES_DISQUALIFIED and state.move_to(
        LifecycleStage.DISQUALIFIED, f"{event.name} ({event.source})", event.occurred_at, explicit=True
    ):
        # As the API's disqualify: the hand-off in flight ends, the nurtures hear the new stage.
        pending.context_due = True
        if state.active_handoff:
            pending.close_reason = f"the lead was disqualified in the CRM ({event.source})"
    if event.type is EventType.EMAIL_CLICKED:
        pending.last_click = event.event_id
    if event.type is EventType.MEETING_BOOKED:
        pending.meeting_booked = True
        if event.properties.get("meeting_start"):
            pending.meetings.append(event)
    forwarded = event.type in FORWARDED or (
        event.type in CUSTOMER_EVENTS and features.customers  # a nurture's purchase goal
    )
    if forwarded and any(e.status in ("active", "paused") for e in state.enrollments):
        pending.forward.append(
            EventNotice(
                event_id=event.event_id,
                type=event.type.value,
                name=event.name,
                properties={k: str(v) for k, v in event.properties.items() if isinstance(v, str | int)},
                occurred_at=event.occurred_at,
            )
        )
    pending.bound()


def _note_exposure(state: LeadState, event: LeadEvent) -> None:
    """Segment's "Experiment Viewed": a landing page (or email) test showed this lead a variant."""
    if event.type is not EventType.TRACK or (event.name or "").strip().casefold() != EXPERIMENT_VIEWED:
        return
    properties = event.properties
    experiment = properties.get("experiment_id") or properties.get("experiment_name")
    variant = properties.get("variation_name") or properties.get("variation_id")
    if not experiment or not variant or len(state.pending.exposures) >= EXPOSURES_KEPT:
        return
    state.pending.exposures.append(
        ExposureInput(
            experiment_id=str(experiment)[:200],
            lead_id=state.lead_id,
            variant=str(variant)[:100],
            exposed_at=event.occurred_at,
            source="page",
        )
    )


def _note_customer_event(state: LeadState, event: LeadEvent) -> None:
    """A customer's payments, product use and survey answers, for the account's journey; a
    promoter becomes an Advocate; a referral code names the advocate who brought this lead."""
    code = event.properties.get("referral_code")
    if isinstance(code, str) and code and state.referred_by is None and code != state.lead_id:
        state.referred_by = code
        state.pending.referral = ReferralReport(
            referral_code=code, new_lead_id=state.lead_id, occurred_at=event.occurred_at
        )
    if state.stage not in CUSTOMER_STAGES:
        return
    kind: CustomerEventKind | None = None
    if event.type in CUSTOMER_EVENTS or deal_won(event):
        kind = "purchase" if event.type is not EventType.SUBSCRIPTION_STARTED else "subscription_started"
    elif event.type is EventType.SUBSCRIPTION_RENEWED:
        kind = "subscription_renewed"
    elif event.type is EventType.SUBSCRIPTION_CANCELLED:
        kind = "subscription_cancelled"
    elif event.type is EventType.TRACK and (event.name or "").strip().casefold() == SURVEY_EVENT:
        kind = "survey_response"
        score = survey_score(event.properties)
        if score is not None and nps_class(score) == "promoter":
            state.move_to(LifecycleStage.ADVOCATE, f"promoter: answered {score}", event.occurred_at)
    elif event.type is EventType.TRACK:
        kind = "usage"
    if kind is None:
        return
    state.pending.customer_events.append(
        CustomerEvent(
            event_id=event.event_id,
            lead_id=state.lead_id,
            kind=kind,
            name=event.name or event.type.value,
            properties={k: v for k, v in event.properties.items() if isinstance(v, str | int | float | bool)},
            occurred_at=event.occurred_at,
        )
    )


# --- Messages from people and other journeys -----------------------------------------------------


def request_enrollment(state: LeadState, request: EnrollRequest) -> None:
    """Enroll by hand, move onto a sequence's latest version (`restart`), or end its enrollments."""
    if request.stop:
        state.pending.stops.append(request.sequence_id)
    else:
        state.pending.triggers.append(
            SequencesForTrigger(kind="manual", sequence_id=request.sequence_id, restart=request.restart)
        )
    state.pending.bound()


def record_handoff_outcome(state: LeadState, outcome: HandoffOutcome) -> None:
    state.pending.outcomes.append(outcome)
    state.pending.bound()


def record_nurture_ended(state: LeadState, ended: NurtureEnded, now: datetime) -> None:
    for enrollment in state.enrollments:
        if enrollment.sequence_id == ended.sequence_id and enrollment.enrollment == ended.enrollment:
            enrollment.status, enrollment.reason = ended.status, ended.reason
            enrollment.ended_at = now
    trim_enrollments(state)


def stage_changed_by_hand(state: LeadState) -> None:
    state.pending.context_due = True


def has_work(state: LeadState, features: LeadFeatures) -> bool:
    """Messages that need the lead settled even though no event came."""
    pending = state.pending
    return features.qualify and bool(
        pending.triggers or pending.context_due or pending.outcomes or pending.stops
    )


# --- Settling ----------------------------------------------------------------------------------


def facts_needed(state: LeadState) -> bool:
    return state.pending.facts_due and state.stage is not LifecycleStage.ANONYMOUS


def facts_fetched(state: LeadState) -> None:
    """The look-up ran (answered or gave up): it is not asked again until the facts change."""
    state.pending.facts_due = False


def apply_facts(state: LeadState, facts: LeadFacts) -> None:
    state.fit, state.timezone = facts.fit, facts.timezone
    state.country, state.lead_source = facts.country, facts.lead_source
    state.scorecard.set_fit(facts.fit)


def settle(state: LeadState, rules: ScoringConfig, features: LeadFeatures, now: datetime) -> Settlement:
    """Totals, the MQL rule and accepted hand-offs, then every pending piece of work as effects, in
    the order the workflow must carry them out."""
    pending = state.pending
    before = (state.stage, state.score)
    scored = totals(state.scorecard, rules, now, state.sessions_counted)
    state.score, state.score_band = scored.total, scored.band
    state.email_engagement, state.content_pieces = scored.email_engagement, scored.content_pieces
    decision = mql_decision(rules.mql, scored, state.sessions_counted, state.fit)
    state.mql_met, state.mql_missing = decision.met, decision.missing
    for outcome in pending.outcomes:
        if outcome.handoff_id == state.active_handoff and state.move_to(
            LifecycleStage.SQL, f"accepted by {outcome.rep_id} ({outcome.handoff_id})", outcome.accepted_at
        ):
            state.owner, state.active_handoff = outcome.rep_id, None
            state.owner_crm_id = outcome.crm_owner_id
            pending.context_due = True
            if features.sales_outreach:
                pending.triggers.append(SequencesForTrigger(kind="manual", sequence_id=SALES_SEQUENCE_ID))
    pending.outcomes.clear()
    settlement = Settlement()
    effects = settlement.effects
    if decision.qualified and state.stage in (LifecycleStage.LEAD, LifecycleStage.RECYCLED):
        state.move_to(LifecycleStage.MQL, "MQL rule: " + "; ".join(decision.met), now)
        if features.handoff:
            effects.append(StartHandoff(reasons=decision.met))
    settlement.changed = (state.stage, state.score) != before
    if settlement.changed:
        effects.append(UpdateScoreAttribute())
    effects.extend(_meetings(state, features))
    if pending.owner_due:
        pending.owner_due = False
        effects.append(FollowCrmOwner(crm_owner_id=state.owner_crm_id))
    crm_accepts, pending.crm_accepts = pending.crm_accepts, []
    if crm_accepts and state.active_handoff is not None:
        effects.append(TellHandoffCrmAccepted(detail=crm_accepts[0]))
    push = _push(state)
    if push is not None:
        effects.append(push)
    stops, pending.stops = pending.stops, []
    effects.extend(StopEnrollments(sequence_id=s) for s in stops)
    triggers, pending.triggers = pending.triggers, []
    effects.extend(Enroll(trigger=t) for t in triggers)
    account = _account_activity(state, now)
    if account is not None:
        effects.append(account)
    effects.extend(_customer_effects(state, features))
    exposures, pending.exposures = pending.exposures, []
    if state.stage is not LifecycleStage.ANONYMOUS and features.page_experiments:
        effects.extend(ExposeToExperiment(exposure=e) for e in exposures)
    events, pending.forward = pending.forward, []
    effects.append(TellNurtures(context_changed=settlement.changed or pending.context_due, events=events))
    pending.context_due = False
    return settlement


def _meetings(state: LeadState, features: LeadFeatures) -> list[Effect]:
    meetings, state.pending.meetings = state.pending.meetings, []
    effects: list[Effect] = []
    for event in meetings:
        start = _moment(event.properties["meeting_start"])
        end_value = event.properties.get("meeting_end")
        end = _moment(end_value) if end_value else start + timedelta(minutes=30)
        subject = event.name or "Meeting with {name} ({company})"
        effects.append(
            LogMeeting(event_id=event.event_id, subject=subject, start=start, end=end, source=event.source)
        )
        if event.source not in SCHEDULERS_WITH_CALENDAR and features.calendar_invites:
            effects.append(
                InviteToMeeting(
                    event_id=event.event_id, subject=subject, start=start, end=end, source=event.source
                )
            )
    return effects


def _moment(value: object) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _push(state: LeadState) -> PushProfile | None:
    """A lead reaches the CRM by a form (the contact exists) or by qualifying; an abandoned form or a
    Segment identify alone does not make a CRM record. Likewise the email platform."""
    qualified = state.stage in QUALIFIED_STAGES
    targets = [
        target
        for target, present, deleted in (
            (CRM_TARGET, state.crm_contact_id, state.crm_deleted),
            (EMAIL_TARGET, state.email_profile_id, False),
        )
        if (present or qualified) and not deleted
    ]
    pushed = f"{state.stage.value}:{state.score}:{state.score_band}"
    if pushed == state.pushed or not targets:
        return None
    click, state.pending.last_click = state.pending.last_click, None
    return PushProfile(
        targets=targets,
        pushed=pushed,
        stage=state.stage.value,
        score=state.score,
        score_band=state.score_band,
        click_event_id=click,
    )


def _account_activity(state: LeadState, now: datetime) -> ReportToAccount | None:
    """The account's journey hears its contacts' intent and meetings (account-based outbound)."""
    pending = state.pending
    intent, meeting = pending.intent, pending.meeting_booked
    pending.intent, pending.meeting_booked = 0, False
    if not state.account_id or state.stage is LifecycleStage.ANONYMOUS or not (intent or meeting):
        return None
    return ReportToAccount(
        activity=ContactActivity(
            lead_id=state.lead_id,
            intent_points=intent,
            fit=state.fit.fit if state.fit else None,
            meeting_booked=meeting,
            at=now,
        )
    )


def _customer_effects(state: LeadState, features: LeadFeatures) -> list[Effect]:
    """The account's customer journey hears its people's payments, use and answers."""
    pending = state.pending
    events, pending.customer_events = pending.customer_events, []
    referral, pending.referral = pending.referral, None
    close, pending.close_reason = pending.close_reason, None
    if not (events or referral or close) or not features.customers:
        return []
    effects: list[Effect] = []
    if close:
        effects.append(CloseHandoff(reason=close))
    if events:
        account = customer_account_id(state.account_id, state.lead_id)
        effects.append(ReportToCustomer(report=CustomerReport(account_id=account, events=events)))
    if referral:
        effects.append(ReportReferral(referral=referral))
    return effects


def lead_context(state: LeadState, rules: ScoringConfig) -> LeadContext:
    """What a nurture's branches may look at."""
    return LeadContext(
        stage=state.stage.value,
        score=state.score,
        score_band=state.score_band,
        engagement=engagement_of(rules.engagement, state.email_engagement),
        preferred_topic=state.scorecard.preferred_topic(),
        email_clicks=state.activity.events_by_type.get(EventType.EMAIL_CLICKED.value, 0),
        lead_source=state.lead_source,
        country=state.country,
        timezone=state.timezone,
        owner_crm_id=state.owner_crm_id,
    )


# --- Enrollment ----------------------------------------------------------------------------------


@dataclass
class EnrollmentPlan:
    """For one sequence a trigger found: the enrollments to end first, and the one to start."""

    sequence: SequenceDefinition
    replace: list[Enrollment]
    number: int | None


def plan_enrollment(
    state: LeadState, trigger: SequencesForTrigger, sequence: SequenceDefinition
) -> EnrollmentPlan:
    mine = [e for e in state.enrollments if e.sequence_id == sequence.id]
    number = max((e.enrollment for e in mine), default=0) + 1
    if trigger.restart:
        # Moving onto the latest version: whatever the re-entry rule, the ones in flight end first.
        return EnrollmentPlan(
            sequence=sequence, replace=[e for e in mine if e.status in ("active", "paused")], number=number
        )
    history = [
        EnrollmentRecord(sequence_id=e.sequence_id, version=e.version, status=e.status, ended_at=e.ended_at)
        for e in mine
    ]
    if not may_enroll(sequence.reentry, history):
        return EnrollmentPlan(sequence=sequence, replace=[], number=None)
    return EnrollmentPlan(sequence=sequence, replace=[], number=number)


def enrollment_ended(enrollment: Enrollment, reason: str, now: datetime) -> None:
    enrollment.status, enrollment.ended_at = "exited", now
    enrollment.reason = reason


def enrolled(state: LeadState, enrollment: Enrollment) -> None:
    state.enrollments.append(enrollment)
    trim_enrollments(state)


def trim_enrollments(state: LeadState) -> None:
    enrollments = state.enrollments
    if len(enrollments) > ENROLLMENTS_KEPT:
        ended = [e for e in enrollments if e.status in ("completed", "exited")]
        for e in ended[: len(enrollments) - ENROLLMENTS_KEPT]:
            enrollments.remove(e)
