"""The qualify phase, inside the lead's workflow: score every event, judge ICP fit and the MQL
rule, push score and stage to the CRM and the email platform, and enroll the lead in nurture
sequences (and tell them when the lead's stage, band or interests change).

`Qualifier` keeps no state of its own beyond the rules: everything lives in `LeadState`, so
continue-as-new carries it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.accounts import ContactActivity
    from domain.connectors import CalendarEventInput, CrmMeetingInput, FlowMark, SyncPersonInput, WriteResult
    from domain.customers import (
        CustomerEvent,
        CustomerReport,
        ReferralReport,
        customer_account_id,
        nps_class,
        survey_score,
    )
    from domain.events import EMAIL_ENGAGEMENT, EventType, LeadEvent
    from domain.experiments import EXPERIMENT_VIEWED, ExposureInput
    from domain.handoff import (
        HANDOFF_CLOSE_SIGNAL,
        HANDOFF_CRM_ACCEPT_SIGNAL,
        HANDOFF_WORKFLOW_TYPE,
        SALES_SEQUENCE_ID,
        CrmAcceptance,
        HandoffInput,
        HandoffOutcome,
        handoff_workflow_id,
    )
    from domain.ids import idempotency_key
    from domain.lead import Enrollment, LeadState, LifecycleStage
    from domain.nurture import (
        NURTURE_CONTEXT_SIGNAL,
        NURTURE_EVENT_SIGNAL,
        NURTURE_WORKFLOW_TYPE,
        EventNotice,
        NurtureEnded,
        NurtureInput,
        nurture_workflow_id,
    )
    from domain.qualify import Enrollable, EnrollRequest, LeadFacts, LeadFactsInput, SequencesForTrigger
    from domain.scoring import ScoringConfig, mql_decision, score_event, totals
    from domain.search_attributes import LEAD_SCORE
    from domain.sequences import EnrollmentRecord, LeadContext, may_enroll
    from workflows.policies import PLATFORM_GIVE_UP_AFTER, PLATFORM_RETRY

QUALIFY_PATCH = "qualify-v1"
HANDOFF_PATCH = "handoff-v1"
MEETING_PATCH = "meeting-log-v1"
SALES_PATCH = "sales-outreach-v1"
ABM_PATCH = "abm-v1"
CRM_ACCEPT_PATCH = "crm-accept-v1"
CUSTOMER_PATCH = "customer-v1"
MEETING_CALENDAR_PATCH = "meeting-calendar-v1"
EXPOSURE_PATCH = "experiment-viewed-v1"
# Schedulers that put the meeting in the host's calendar themselves.
SCHEDULERS_WITH_CALENDAR = frozenset({"calendly"})
CUSTOMER_STAGES = frozenset({LifecycleStage.CUSTOMER, LifecycleStage.ADVOCATE})
SURVEY_EVENT = "survey responded"
ENROLLMENTS_KEPT = 50
LOOKUP_TIMEOUT = timedelta(seconds=30)
PUSH_TIMEOUT = timedelta(seconds=60)
# The facts that change fit: who the person is and where they work.
PROFILE_EVENTS = frozenset(
    {EventType.IDENTIFY, EventType.FORM_SUBMITTED, EventType.LEAD_AD_SUBMITTED, EventType.GROUP}
)
QUALIFIED_STAGES = frozenset(
    {LifecycleStage.MQL, LifecycleStage.SQL, LifecycleStage.CUSTOMER, LifecycleStage.ADVOCATE}
)
CUSTOMER_EVENTS = frozenset({EventType.PURCHASE, EventType.SUBSCRIPTION_STARTED})
# What a nurture may wait for or count as its goal.
FORWARDED = frozenset(
    {*EMAIL_ENGAGEMENT, EventType.FORM_SUBMITTED, EventType.MEETING_BOOKED, EventType.TRACK, EventType.PAGE}
)


def _deal_won(event: LeadEvent) -> bool:
    stage = str(event.properties.get("stage", "")).lower()
    return event.type is EventType.DEAL_STAGE_CHANGED and stage in ("closedwon", "closed_won", "won")


def _engagement(email_engagement: int) -> str:
    return "high" if email_engagement >= 70 else "medium" if email_engagement >= 30 else "low"


class Qualifier:
    def __init__(self, state: LeadState) -> None:
        self._state = state
        self._rules: ScoringConfig | None = None
        self._enabled = False
        self._customers = self._calendar_invites = self._page_experiments = False
        self._facts_due = False
        self._context_due = False
        self._forward: list[EventNotice] = []
        self._triggers: list[SequencesForTrigger] = []
        self._outcomes: list[HandoffOutcome] = []
        self._meetings: list[LeadEvent] = []
        self._stops: list[str] = []
        self._crm_accepts: list[str] = []
        self._intent = 0
        self._meeting_booked = False
        self._customer_events: list[CustomerEvent] = []
        self._referral: ReferralReport | None = None
        self._close_reason: str | None = None
        self._exposures: list[ExposureInput] = []
        self._last_click: str | None = None

    def start(self) -> None:
        # Runs recorded before the qualify phase existed replay without it.
        self._enabled = workflow.patched(QUALIFY_PATCH)
        # Later phases are decided once, here at the start of the run: a patch first met inside an
        # update handler (a person's stage change) does not replay in place.
        self._customers = workflow.patched(CUSTOMER_PATCH)
        self._calendar_invites = workflow.patched(MEETING_CALENDAR_PATCH)
        self._page_experiments = workflow.patched(EXPOSURE_PATCH)

    def reload_rules(self) -> None:
        self._rules = None

    async def _ensure_rules(self) -> ScoringConfig:
        if self._rules is None:
            self._rules = await workflow.execute_local_activity(
                "scoring.config",
                result_type=ScoringConfig,
                start_to_close_timeout=LOOKUP_TIMEOUT,
                retry_policy=PLATFORM_RETRY,
                summary="Load the scoring rules",
            )
        return self._rules

    async def on_event(self, event: LeadEvent, *, became_lead: bool) -> None:
        """The pure part for one event; calls to the outside wait for `settle`."""
        if not self._enabled:
            return
        state = self._state
        rules = await self._ensure_rules()
        hits = score_event(rules, event)
        if hits:
            # A device clock far ahead must not push real history out of the window.
            state.scorecard.apply(hits, min(event.occurred_at, workflow.now()), rules)
        if event.type in PROFILE_EVENTS and state.stage is not LifecycleStage.ANONYMOUS:
            self._facts_due = True
        if became_lead:
            self._facts_due = True
            self._triggers.append(SequencesForTrigger(kind="lead_created"))
        if event.type is EventType.FORM_ABANDONED:
            self._triggers.append(SequencesForTrigger(kind="form_abandoned", form_id=event.form_id))
        for hit in hits:
            if hit.category == "content" and state.stage is not LifecycleStage.ANONYMOUS:
                self._triggers.append(SequencesForTrigger(kind="content_downloaded", topic=hit.topic))
        if event.type in CUSTOMER_EVENTS or _deal_won(event):
            if state.move_to(
                LifecycleStage.CUSTOMER, f"{event.type.value} ({event.source})", event.occurred_at
            ):
                self._close_reason = f"the lead became a customer ({event.type.value})"
        self._note_customer_event(event)
        self._note_exposure(event)
        self._intent += sum(h.points for h in hits if h.points > 0 and h.category != "email")
        if event.type is EventType.SALES_ACCEPTED and state.active_handoff:
            self._crm_accepts.append(f"{event.name} ({event.source})")
        if event.type is EventType.EMAIL_CLICKED:
            self._last_click = event.event_id
        if event.type is EventType.MEETING_BOOKED:
            self._meeting_booked = True
        if event.type is EventType.MEETING_BOOKED and event.properties.get("meeting_start"):
            self._meetings.append(event)
        forwarded = event.type in FORWARDED or (
            event.type in CUSTOMER_EVENTS and self._customers  # a nurture's purchase goal
        )
        if forwarded and any(e.status in ("active", "paused") for e in state.enrollments):
            self._forward.append(
                EventNotice(
                    event_id=event.event_id,
                    type=event.type.value,
                    name=event.name,
                    properties={k: str(v) for k, v in event.properties.items() if isinstance(v, str | int)},
                    occurred_at=event.occurred_at,
                )
            )

    def _note_exposure(self, event: LeadEvent) -> None:
        """Segment's "Experiment Viewed": a landing page (or email) test showed this lead a variant."""
        if event.type is not EventType.TRACK or (event.name or "").strip().casefold() != EXPERIMENT_VIEWED:
            return
        properties = event.properties
        experiment = properties.get("experiment_id") or properties.get("experiment_name")
        variant = properties.get("variation_name") or properties.get("variation_id")
        if not experiment or not variant or len(self._exposures) >= 20:
            return
        self._exposures.append(
            ExposureInput(
                experiment_id=str(experiment)[:200],
                lead_id=self._state.lead_id,
                variant=str(variant)[:100],
                exposed_at=event.occurred_at,
                source="page",
            )
        )

    async def _tell_experiments(self) -> None:
        exposures, self._exposures = self._exposures, []
        if not exposures or self._state.stage is LifecycleStage.ANONYMOUS or not self._page_experiments:
            return
        for exposure in exposures:
            try:
                await workflow.execute_activity(
                    "experiments.expose",
                    exposure,
                    result_type=str,
                    start_to_close_timeout=LOOKUP_TIMEOUT,
                    retry_policy=PLATFORM_RETRY,
                    summary=f"Experiment {exposure.experiment_id}: exposure",
                )
            except ActivityError as exc:
                self._state.record_failure("experiments.expose", str(exc.cause or exc), workflow.now())

    def _note_customer_event(self, event: LeadEvent) -> None:
        """A customer's payments, product use and survey answers, for the account's journey; a
        promoter becomes an Advocate; a referral code names the advocate who brought this lead."""
        state = self._state
        code = event.properties.get("referral_code")
        if isinstance(code, str) and code and state.referred_by is None and code != state.lead_id:
            state.referred_by = code
            self._referral = ReferralReport(
                referral_code=code, new_lead_id=state.lead_id, occurred_at=event.occurred_at
            )
        if state.stage not in CUSTOMER_STAGES:
            return
        kind: str | None = None
        if event.type in CUSTOMER_EVENTS or _deal_won(event):
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
        self._customer_events.append(
            CustomerEvent(
                event_id=event.event_id,
                lead_id=state.lead_id,
                kind=kind,
                name=event.name or event.type.value,
                properties={
                    k: v for k, v in event.properties.items() if isinstance(v, str | int | float | bool)
                },
                occurred_at=event.occurred_at,
            )
        )

    async def _tell_customer(self) -> None:
        """The account's customer journey hears its people's payments, use and answers."""
        events, self._customer_events = self._customer_events, []
        referral, self._referral = self._referral, None
        close, self._close_reason = self._close_reason, None
        if not (events or referral or close) or not self._customers:
            return
        state = self._state
        if close:
            await self.close_handoff(close)
        calls: list[tuple[str, object, str]] = []
        if events:
            account = customer_account_id(state.account_id, state.lead_id)
            calls.append(
                (
                    "customers.report",
                    CustomerReport(account_id=account, events=events),
                    f"Account {account}: " + ", ".join(sorted({e.kind for e in events})),
                )
            )
        if referral:
            calls.append(("customers.report_referral", referral, "Referral: tell the advocate's account"))
        for name, argument, summary in calls:
            try:
                await workflow.execute_activity(
                    name,
                    argument,
                    start_to_close_timeout=LOOKUP_TIMEOUT,
                    schedule_to_close_timeout=PLATFORM_GIVE_UP_AFTER,
                    retry_policy=PLATFORM_RETRY,
                    summary=summary,
                )
            except ActivityError as exc:
                state.record_failure(name, str(exc.cause or exc), workflow.now())

    async def settle(self) -> bool:
        """After a batch of events: facts, totals, the MQL rule, pushes, enrollments, nurture news.

        Returns whether the stage or score changed (for the search attributes).
        """
        if not self._enabled:
            return False
        state = self._state
        rules = await self._ensure_rules()
        before = (state.stage, state.score)
        if self._facts_due and state.stage is not LifecycleStage.ANONYMOUS:
            self._facts_due = False
            try:
                facts = await workflow.execute_activity(
                    "leads.facts",
                    LeadFactsInput(lead_id=state.lead_id),
                    result_type=LeadFacts,
                    start_to_close_timeout=LOOKUP_TIMEOUT,
                    retry_policy=PLATFORM_RETRY,
                    summary="Firmographic fit and time zone",
                )
            except ActivityError as exc:
                state.record_failure("leads.facts", str(exc.cause or exc), workflow.now())
            else:
                state.fit, state.timezone = facts.fit, facts.timezone
                state.country, state.lead_source = facts.country, facts.lead_source
                state.scorecard.set_fit(facts.fit)
        scored = totals(state.scorecard, rules, workflow.now(), state.sessions_counted)
        state.score, state.score_band = scored.total, scored.band
        state.email_engagement, state.content_pieces = scored.email_engagement, scored.content_pieces
        decision = mql_decision(rules.mql, scored, state.sessions_counted, state.fit)
        state.mql_met, state.mql_missing = decision.met, decision.missing
        for outcome in self._outcomes:
            if outcome.handoff_id == state.active_handoff and state.move_to(
                LifecycleStage.SQL,
                f"accepted by {outcome.rep_id} ({outcome.handoff_id})",
                outcome.accepted_at,
            ):
                state.owner, state.active_handoff = outcome.rep_id, None
                state.owner_crm_id = outcome.crm_owner_id
                self._context_due = True
                if workflow.patched(SALES_PATCH):
                    self._triggers.append(SequencesForTrigger(kind="manual", sequence_id=SALES_SEQUENCE_ID))
        self._outcomes.clear()
        if decision.qualified and state.stage in (LifecycleStage.LEAD, LifecycleStage.RECYCLED):
            state.move_to(LifecycleStage.MQL, "MQL rule: " + "; ".join(decision.met), workflow.now())
            if workflow.patched(HANDOFF_PATCH):
                await self._start_handoff(decision.met)
        changed = (state.stage, state.score) != before
        if changed:
            workflow.upsert_search_attributes([LEAD_SCORE.value_set(state.score)])
        await self._log_meetings()
        await self._tell_handoff()
        await self._push()
        await self._stop_enrollments()
        await self._enroll()
        await self._tell_account()
        await self._tell_customer()
        await self._tell_experiments()
        await self._tell_nurtures(changed)
        return changed

    def context(self) -> LeadContext:
        state = self._state
        return LeadContext(
            stage=state.stage.value,
            score=state.score,
            score_band=state.score_band,
            engagement=_engagement(state.email_engagement),
            preferred_topic=state.scorecard.preferred_topic(),
            email_clicks=state.activity.events_by_type.get(EventType.EMAIL_CLICKED.value, 0),
            lead_source=state.lead_source,
            country=state.country,
            timezone=state.timezone,
            owner_crm_id=state.owner_crm_id,
        )

    async def _push(self) -> None:
        """The seed's "lead score change -> PUT to email segmentation", and the CRM's score and stage."""
        state = self._state
        qualified = state.stage in QUALIFIED_STAGES
        # A lead reaches the CRM by a form (the contact exists) or by qualifying; an abandoned form
        # or a Segment identify alone does not make a CRM record. Likewise the email platform.
        targets = [
            (name, summary)
            for name, summary, present in (
                (
                    "crm.sync_person",
                    f"CRM: stage {state.stage.value}, score {state.score}",
                    state.crm_contact_id,
                ),
                (
                    "email.sync_profile",
                    f"Email segmentation: band {state.score_band}",
                    state.email_profile_id,
                ),
            )
            if present or qualified
        ]
        pushed = f"{state.stage.value}:{state.score}:{state.score_band}"
        if pushed == state.pushed or not targets:
            return
        step = idempotency_key(workflow.info().workflow_id, "push", pushed)
        click, self._last_click = self._last_click, None
        data = SyncPersonInput(
            lead_id=state.lead_id,
            idempotency_key=step,
            lifecycle_stage=state.stage.value,
            lead_score=state.score,
            score_band=state.score_band,
            flow=FlowMark(flow="click_to_crm", event_id=click) if click else None,
        )
        results = await asyncio.gather(
            *(
                workflow.execute_activity(
                    name,
                    data,
                    result_type=WriteResult,
                    start_to_close_timeout=PUSH_TIMEOUT,
                    schedule_to_close_timeout=PLATFORM_GIVE_UP_AFTER,
                    retry_policy=PLATFORM_RETRY,
                    summary=summary,
                )
                for name, summary in targets
            ),
            return_exceptions=True,
        )
        for (name, _), result in zip(targets, results, strict=True):
            if isinstance(result, ActivityError):
                state.record_failure(name, str(result.cause or result), workflow.now())
            elif isinstance(result, BaseException):
                raise result
        state.pushed = pushed

    async def _enroll(self) -> None:
        state = self._state
        triggers, self._triggers = self._triggers, []
        for trigger in triggers:
            found = await workflow.execute_activity(
                "sequences.for_trigger",
                trigger,
                result_type=Enrollable,
                start_to_close_timeout=LOOKUP_TIMEOUT,
                retry_policy=PLATFORM_RETRY,
                summary=f"Sequences for {trigger.kind}",
            )
            for sequence in found.sequences:
                mine = [e for e in state.enrollments if e.sequence_id == sequence.id]
                if trigger.restart:
                    await self._replace(mine, sequence.version)
                history = [
                    EnrollmentRecord(
                        sequence_id=e.sequence_id, version=e.version, status=e.status, ended_at=e.ended_at
                    )
                    for e in mine
                ]
                if not trigger.restart and not may_enroll(sequence.reentry, history):
                    continue
                number = max((e.enrollment for e in mine), default=0) + 1
                workflow_id = nurture_workflow_id(state.lead_id, sequence.id, number)
                await workflow.start_child_workflow(
                    NURTURE_WORKFLOW_TYPE,
                    NurtureInput(
                        lead_id=state.lead_id,
                        enrollment=number,
                        sequence=sequence,
                        context=self.context(),
                        frequency_cap=found.frequency_cap,
                        frequency_caps=found.frequency_caps,
                    ),
                    id=workflow_id,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    static_summary=f"{sequence.name} (v{sequence.version}) for lead {state.lead_id}",
                )
                state.enrollments.append(
                    Enrollment(
                        sequence_id=sequence.id,
                        version=sequence.version,
                        enrollment=number,
                        workflow_id=workflow_id,
                        started_at=workflow.now(),
                    )
                )
                self._trim()

    async def _replace(
        self, enrollments: list[Enrollment], version: int, *, reason: str | None = None
    ) -> None:
        """Cancels the enrollments in flight, so the lead can start over on `version`."""
        for enrollment in enrollments:
            if enrollment.status not in ("active", "paused"):
                continue
            try:
                await workflow.get_external_workflow_handle(enrollment.workflow_id).cancel()
            except Exception:
                workflow.logger.info("enrollment %s was already closed", enrollment.workflow_id)
            enrollment.status, enrollment.ended_at = "exited", workflow.now()
            enrollment.reason = reason or f"replaced by version {version}"

    def enroll(self, request: EnrollRequest) -> None:
        if request.stop:
            self._stops.append(request.sequence_id)
            return
        self._triggers.append(
            SequencesForTrigger(kind="manual", sequence_id=request.sequence_id, restart=request.restart)
        )

    async def _tell_handoff(self) -> None:
        accepts, self._crm_accepts = self._crm_accepts, []
        state = self._state
        if not accepts or state.active_handoff is None or not workflow.patched(CRM_ACCEPT_PATCH):
            return
        try:
            await workflow.get_external_workflow_handle(state.active_handoff).signal(
                HANDOFF_CRM_ACCEPT_SIGNAL, CrmAcceptance(detail=accepts[0], at=workflow.now())
            )
        except Exception:
            workflow.logger.info("hand-off %s already closed", state.active_handoff)

    async def _stop_enrollments(self) -> None:
        stops, self._stops = self._stops, []
        for sequence_id in stops:
            await self._replace(
                [e for e in self._state.enrollments if e.sequence_id == sequence_id], 0, reason="stopped"
            )

    async def _tell_account(self) -> None:
        """The account's journey hears its contacts' intent and meetings (account-based outbound)."""
        state = self._state
        intent, meeting = self._intent, self._meeting_booked
        self._intent, self._meeting_booked = 0, False
        if not state.account_id or state.stage is LifecycleStage.ANONYMOUS or not (intent or meeting):
            return
        if not workflow.patched(ABM_PATCH):
            return
        try:
            await workflow.execute_activity(
                "accounts.report",
                ContactActivity(
                    lead_id=state.lead_id,
                    intent_points=intent,
                    fit=state.fit.fit if state.fit else None,
                    meeting_booked=meeting,
                    at=workflow.now(),
                ),
                start_to_close_timeout=LOOKUP_TIMEOUT,
                retry_policy=PLATFORM_RETRY,
                summary=f"Account {state.account_id}: intent +{intent}" + (", meeting" if meeting else ""),
            )
        except ActivityError as exc:
            state.record_failure("accounts.report", str(exc.cause or exc), workflow.now())

    async def _log_meetings(self) -> None:
        """A booked meeting goes on the CRM record at once (the seed: meeting booking, immediate).

        The invite itself is the scheduler's (Calendly puts it in the host's calendar)."""
        meetings, self._meetings = self._meetings, []
        if not meetings or not workflow.patched(MEETING_PATCH):
            return
        for event in meetings:
            start = datetime.fromisoformat(str(event.properties["meeting_start"]).replace("Z", "+00:00"))
            end_value = event.properties.get("meeting_end")
            end = (
                datetime.fromisoformat(str(end_value).replace("Z", "+00:00"))
                if end_value
                else start + timedelta(minutes=30)
            )
            try:
                await workflow.execute_activity(
                    "crm.log_meeting",
                    CrmMeetingInput(
                        lead_id=self._state.lead_id,
                        idempotency_key=idempotency_key(
                            workflow.info().workflow_id, "meeting", event.event_id
                        ),
                        subject=event.name or "Meeting with {name} ({company})",
                        start=start,
                        end=end,
                        description=f"Booked through {event.source}",
                        owner_id=None,
                        flow=FlowMark(flow="meeting_to_crm", event_id=event.event_id),
                    ),
                    result_type=WriteResult,
                    start_to_close_timeout=PUSH_TIMEOUT,
                    schedule_to_close_timeout=PLATFORM_GIVE_UP_AFTER,
                    retry_policy=PLATFORM_RETRY,
                    summary="CRM: log the booked meeting",
                )
            except ActivityError as exc:
                self._state.record_failure("crm.log_meeting", str(exc.cause or exc), workflow.now())
            if event.source not in SCHEDULERS_WITH_CALENDAR and self._calendar_invites:
                await self._meeting_invite(event, start, end)

    async def _meeting_invite(self, event: LeadEvent, start: datetime, end: datetime) -> None:
        """A meeting booked where no scheduler made the invite (a form, the product, a CRM link):
        the event in the owner's calendar, the lead invited."""
        state = self._state
        try:
            await workflow.execute_activity(
                "calendar.create_event",
                CalendarEventInput(
                    idempotency_key=idempotency_key(
                        workflow.info().workflow_id, "meeting-invite", event.event_id
                    ),
                    lead_id=state.lead_id,
                    summary=event.name or "Meeting with {name} ({company})",
                    description=f"Booked through {event.source}",
                    start=start,
                    end=end,
                    host_rep_id=state.owner,
                ),
                result_type=WriteResult,
                start_to_close_timeout=PUSH_TIMEOUT,
                schedule_to_close_timeout=PLATFORM_GIVE_UP_AFTER,
                retry_policy=PLATFORM_RETRY,
                summary="Calendar: the booked meeting",
            )
        except ActivityError as exc:
            state.record_failure("calendar.create_event", str(exc.cause or exc), workflow.now())

    def has_work(self) -> bool:
        return self._enabled and bool(self._triggers or self._context_due or self._outcomes or self._stops)

    def handoff_outcome(self, outcome: HandoffOutcome) -> None:
        self._outcomes.append(outcome)

    async def _start_handoff(self, reasons: list[str]) -> None:
        """The lead is an MQL: sales gets it now (the hand-off runs on its own, with its SLA)."""
        state = self._state
        state.handoffs += 1
        workflow_id = handoff_workflow_id(state.lead_id, state.handoffs)
        await workflow.start_child_workflow(
            HANDOFF_WORKFLOW_TYPE,
            HandoffInput(
                lead_id=state.lead_id,
                number=state.handoffs,
                mql_at=workflow.now(),
                score=state.score,
                score_band=state.score_band,
                reasons=reasons,
            ),
            id=workflow_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"MQL hand-off {state.handoffs} for lead {state.lead_id}",
        )
        state.active_handoff = workflow_id

    async def close_handoff(self, reason: str) -> None:
        """A person moved the lead on (recycled, disqualified, customer): the hand-off stops."""
        state = self._state
        if state.active_handoff is None:
            return
        try:
            await workflow.get_external_workflow_handle(state.active_handoff).signal(
                HANDOFF_CLOSE_SIGNAL, reason
            )
        except Exception:
            workflow.logger.info("hand-off %s already closed", state.active_handoff)
        state.active_handoff = None

    async def _tell_nurtures(self, changed: bool) -> None:
        state = self._state
        events, self._forward = self._forward, []
        context = self.context()
        for enrollment in state.enrollments:
            if enrollment.status not in ("active", "paused"):
                continue
            handle = workflow.get_external_workflow_handle(enrollment.workflow_id)
            try:
                if changed or self._context_due:
                    await handle.signal(NURTURE_CONTEXT_SIGNAL, context)
                for event in events:
                    await handle.signal(NURTURE_EVENT_SIGNAL, event)
            except Exception:
                # The enrollment ended without our hearing (its signal to us was lost with a run).
                enrollment.status, enrollment.ended_at = "completed", workflow.now()
                enrollment.reason = "ended (found closed)"
        self._context_due = False

    def nurture_ended(self, ended: NurtureEnded) -> None:
        for enrollment in self._state.enrollments:
            if enrollment.sequence_id == ended.sequence_id and enrollment.enrollment == ended.enrollment:
                enrollment.status, enrollment.reason = ended.status, ended.reason
                enrollment.ended_at = workflow.now()
        self._trim()

    def stage_changed(self) -> None:
        self._context_due = True

    def _trim(self) -> None:
        enrollments = self._state.enrollments
        if len(enrollments) > ENROLLMENTS_KEPT:
            ended = [e for e in enrollments if e.status in ("completed", "exited")]
            for e in ended[: len(enrollments) - ENROLLMENTS_KEPT]:
                enrollments.remove(e)
