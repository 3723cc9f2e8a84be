"""The lead workflow's hands: each effect `domain.reactions` decides, carried out by one short
coroutine. Nothing here decides what the lead is; it only does what was decided, records what
came back, and audits a platform that gave up.

To add a behaviour: an effect and the rule that emits it in `domain/reactions.py`, then one
coroutine here, named in `LeadEffects.carry_out`'s table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy

with workflow.unsafe.imports_passed_through():
    from domain.connectors import CalendarEventInput, CrmMeetingInput, FlowMark, SyncPersonInput, WriteResult
    from domain.consent import ConsentRequestInput
    from domain.handoff import (
        HANDOFF_CLOSE_SIGNAL,
        HANDOFF_CRM_ACCEPT_SIGNAL,
        HANDOFF_WORKFLOW_TYPE,
        CrmAcceptance,
        CrmOwnerInput,
        CrmOwnerRep,
        HandoffInput,
        handoff_workflow_id,
    )
    from domain.ids import idempotency_key
    from domain.lead import (
        Enrollment,
        EnrollWelcomeInput,
        EnrollWelcomeResult,
        LeadState,
        UpsertContactInput,
        UpsertContactResult,
    )
    from domain.nurture import (
        NURTURE_CONTEXT_SIGNAL,
        NURTURE_EVENT_SIGNAL,
        NURTURE_WORKFLOW_TYPE,
        NurtureInput,
        nurture_workflow_id,
    )
    from domain.qualify import Enrollable
    from domain.reactions import (
        CRM_TARGET,
        AskForConsent,
        CloseHandoff,
        Effect,
        Enroll,
        EnrollConfirmed,
        ExposeToExperiment,
        FollowCrmOwner,
        InviteToMeeting,
        LogMeeting,
        PushProfile,
        ReportReferral,
        ReportToAccount,
        ReportToCustomer,
        StartHandoff,
        StopEnrollments,
        SyncForm,
        TellHandoffCrmAccepted,
        TellNurtures,
        UpdateScoreAttribute,
        UpdateSearchAttributes,
        enrolled,
        enrollment_ended,
        lead_context,
        plan_enrollment,
    )
    from domain.scoring import ScoringConfig
    from domain.search_attributes import LEAD_SCORE
    from workflows.calls import LOOKUP, PLATFORM_PUSH, PLATFORM_WRITE, call
    from workflows.lead_patches import LeadPatches

CarryOut = Callable[[Any], Awaitable[None]]


class LeadEffects:
    """Carries out a lead's effects on the state it is given."""

    def __init__(
        self,
        state: LeadState,
        patches: LeadPatches,
        rules: Callable[[], Awaitable[ScoringConfig]],
        upsert_search_attributes: Callable[[], None],
    ) -> None:
        self._state = state
        self._patches = patches
        self._rules = rules
        self._upsert_search_attributes = upsert_search_attributes
        self._table: dict[type[Any], CarryOut] = {
            UpdateSearchAttributes: self._search_attributes,
            UpdateScoreAttribute: self._score_attribute,
            SyncForm: self._sync_form,
            AskForConsent: self._ask_for_consent,
            EnrollConfirmed: self._enroll_confirmed,
            StartHandoff: self._start_handoff,
            CloseHandoff: self._close_handoff,
            TellHandoffCrmAccepted: self._tell_handoff_crm_accepted,
            FollowCrmOwner: self._follow_crm_owner,
            LogMeeting: self._log_meeting,
            InviteToMeeting: self._invite_to_meeting,
            PushProfile: self._push_profile,
            StopEnrollments: self._stop_enrollments,
            Enroll: self._enroll,
            ReportToAccount: self._report_to_account,
            ReportToCustomer: self._report_to_customer,
            ReportReferral: self._report_referral,
            ExposeToExperiment: self._expose,
            TellNurtures: self._tell_nurtures,
        }

    async def carry_out(self, effects: list[Effect]) -> None:
        for effect in effects:
            await self._table[type(effect)](effect)

    def audit(self, step: str, message: str) -> None:
        self._state.record_failure(step, message, workflow.now())

    @property
    def _workflow_id(self) -> str:
        return workflow.info().workflow_id

    async def _search_attributes(self, _: UpdateSearchAttributes) -> None:
        self._upsert_search_attributes()

    async def _score_attribute(self, _: UpdateScoreAttribute) -> None:
        workflow.upsert_search_attributes([LEAD_SCORE.value_set(self._state.score)])

    async def _sync_form(self, form: SyncForm) -> None:
        state = self._state
        workflow.set_current_details(f"Syncing form `{form.form_id}` to the CRM and the email platform")
        crm, email = await asyncio.gather(
            call(
                "crm.upsert_contact",
                UpsertContactInput(
                    lead_id=state.lead_id,
                    submission_id=form.submission_id,
                    lifecycle_stage=state.stage,
                    idempotency_key=idempotency_key(
                        self._workflow_id, "form", form.submission_id, "crm-upsert"
                    ),
                ),
                UpsertContactResult,
                "Upsert the contact in the CRM",
                audit=self.audit,
            ),
            call(
                "email.enroll_welcome",
                EnrollWelcomeInput(
                    lead_id=state.lead_id,
                    submission_id=form.submission_id,
                    list_id=form.welcome_list,
                    idempotency_key=idempotency_key(self._workflow_id, "form", form.submission_id, "welcome"),
                ),
                EnrollWelcomeResult,
                "Enroll in the email platform's welcome flow",
                audit=self.audit,
            ),
        )
        if crm is not None:
            state.crm_contact_id, state.crm_deleted = crm.contact_id, False
        if email is not None:
            state.email_profile_id = email.profile_id
            state.welcome_enrolled = state.welcome_enrolled or email.enrolled
            state.welcome_skipped_reason = email.skipped_reason

    async def _ask_for_consent(self, ask: AskForConsent) -> None:
        """Double opt-in: the confirmation email (a service message: asking needs no consent)."""
        await call(
            "email.ask_for_consent",
            ConsentRequestInput(
                lead_id=self._state.lead_id,
                submission_id=ask.submission_id,
                idempotency_key=idempotency_key(self._workflow_id, "form", ask.submission_id, "confirm"),
            ),
            WriteResult,
            "Ask the person to confirm their consent",
            audit=self.audit,
        )

    async def _enroll_confirmed(self, confirmed: EnrollConfirmed) -> None:
        """The consent confirmed: the welcome flow subscribes the person now."""
        state = self._state
        enrolled = await call(
            "email.enroll_welcome",
            EnrollWelcomeInput(
                lead_id=state.lead_id,
                submission_id=confirmed.submission_id,
                list_id=confirmed.welcome_list,
                idempotency_key=idempotency_key(
                    self._workflow_id, "form", confirmed.submission_id, "welcome-confirmed"
                ),
            ),
            EnrollWelcomeResult,
            "Enroll in the welcome flow, consent confirmed",
            audit=self.audit,
        )
        if enrolled is not None:
            state.email_profile_id = enrolled.profile_id
            state.welcome_enrolled = state.welcome_enrolled or enrolled.enrolled
            state.welcome_skipped_reason = enrolled.skipped_reason

    async def _start_handoff(self, start: StartHandoff) -> None:
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
                reasons=start.reasons,
            ),
            id=workflow_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"MQL hand-off {state.handoffs} for lead {state.lead_id}",
        )
        state.active_handoff = workflow_id

    async def _close_handoff(self, close: CloseHandoff) -> None:
        """The lead moved on (recycled, disqualified, customer): the hand-off stops."""
        state = self._state
        if state.active_handoff is None:
            return
        try:
            await workflow.get_external_workflow_handle(state.active_handoff).signal(
                HANDOFF_CLOSE_SIGNAL, close.reason
            )
        except Exception:
            workflow.logger.info("hand-off %s already closed", state.active_handoff)
        state.active_handoff = None

    async def _tell_handoff_crm_accepted(self, accepted: TellHandoffCrmAccepted) -> None:
        state = self._state
        if state.active_handoff is None or not self._patches.crm_accept:
            return
        try:
            await workflow.get_external_workflow_handle(state.active_handoff).signal(
                HANDOFF_CRM_ACCEPT_SIGNAL, CrmAcceptance(detail=accepted.detail, at=workflow.now())
            )
        except Exception:
            workflow.logger.info("hand-off %s already closed", state.active_handoff)

    async def _follow_crm_owner(self, follow: FollowCrmOwner) -> None:
        """Someone reassigned the record in the CRM: the lead's owner is that rep from now on
        (none when the new owner is not on the roster, or the record was left unassigned)."""
        if follow.crm_owner_id is None:
            self._state.owner = None
            return
        found = await call(
            "handoff.rep_for_crm_owner",
            CrmOwnerInput(crm_owner_id=follow.crm_owner_id),
            CrmOwnerRep,
            "Which rep the new CRM owner is",
            policy=LOOKUP,
            audit=self.audit,
        )
        if found is not None and self._state.owner_crm_id == follow.crm_owner_id:
            self._state.owner = found.rep_id

    async def _log_meeting(self, meeting: LogMeeting) -> None:
        """The invite itself is the scheduler's (Calendly puts it in the host's calendar)."""
        if not self._patches.meeting_log:
            return
        await call(
            "crm.log_meeting",
            CrmMeetingInput(
                lead_id=self._state.lead_id,
                idempotency_key=idempotency_key(self._workflow_id, "meeting", meeting.event_id),
                subject=meeting.subject,
                start=meeting.start,
                end=meeting.end,
                description=f"Booked through {meeting.source}",
                owner_id=None,
                flow=FlowMark(flow="meeting_to_crm", event_id=meeting.event_id),
            ),
            WriteResult,
            "CRM: log the booked meeting",
            policy=PLATFORM_PUSH,
            audit=self.audit,
        )

    async def _invite_to_meeting(self, meeting: InviteToMeeting) -> None:
        if not self._patches.meeting_log:
            return
        await call(
            "calendar.create_event",
            CalendarEventInput(
                idempotency_key=idempotency_key(self._workflow_id, "meeting-invite", meeting.event_id),
                lead_id=self._state.lead_id,
                summary=meeting.subject,
                description=f"Booked through {meeting.source}",
                start=meeting.start,
                end=meeting.end,
                host_rep_id=self._state.owner,
            ),
            WriteResult,
            "Calendar: the booked meeting",
            policy=PLATFORM_PUSH,
            audit=self.audit,
        )

    async def _push_profile(self, push: PushProfile) -> None:
        data = SyncPersonInput(
            lead_id=self._state.lead_id,
            idempotency_key=idempotency_key(self._workflow_id, "push", push.pushed),
            lifecycle_stage=push.stage,
            lead_score=push.score,
            score_band=push.score_band,
            flow=FlowMark(flow="click_to_crm", event_id=push.click_event_id) if push.click_event_id else None,
        )
        await asyncio.gather(
            *(
                call(
                    "crm.sync_person",
                    data,
                    WriteResult,
                    f"CRM: stage {push.stage}, score {push.score}",
                    policy=PLATFORM_PUSH,
                    audit=self.audit,
                )
                if target == CRM_TARGET
                else call(
                    "email.sync_profile",
                    data,
                    WriteResult,
                    f"Email segmentation: band {push.score_band}",
                    policy=PLATFORM_PUSH,
                    audit=self.audit,
                )
                for target in push.targets
            )
        )
        self._state.pushed = push.pushed

    async def _end_enrollments(self, enrollments: list[Enrollment], reason: str) -> None:
        """Cancels the enrollments in flight."""
        for enrollment in enrollments:
            if enrollment.status not in ("active", "paused"):
                continue
            try:
                await workflow.get_external_workflow_handle(enrollment.workflow_id).cancel()
            except Exception:
                workflow.logger.info("enrollment %s was already closed", enrollment.workflow_id)
            enrollment_ended(enrollment, reason, workflow.now())

    async def _stop_enrollments(self, stop: StopEnrollments) -> None:
        mine = [e for e in self._state.enrollments if e.sequence_id == stop.sequence_id]
        await self._end_enrollments(mine, "stopped")

    async def _enroll(self, enroll: Enroll) -> None:
        state = self._state
        found = await call(
            "sequences.for_trigger",
            enroll.trigger,
            Enrollable,
            f"Sequences for {enroll.trigger.kind}",
            policy=LOOKUP,
        )
        for sequence in found.sequences:
            plan = plan_enrollment(state, enroll.trigger, sequence)
            await self._end_enrollments(plan.replace, f"replaced by version {sequence.version}")
            if plan.number is None:
                continue
            workflow_id = nurture_workflow_id(state.lead_id, sequence.id, plan.number)
            await workflow.start_child_workflow(
                NURTURE_WORKFLOW_TYPE,
                NurtureInput(
                    lead_id=state.lead_id,
                    enrollment=plan.number,
                    sequence=sequence,
                    context=lead_context(state, await self._rules()),
                    frequency_cap=found.frequency_cap,
                    frequency_caps=found.frequency_caps,
                ),
                id=workflow_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"{sequence.name} (v{sequence.version}) for lead {state.lead_id}",
            )
            enrolled(
                state,
                Enrollment(
                    sequence_id=sequence.id,
                    version=sequence.version,
                    enrollment=plan.number,
                    workflow_id=workflow_id,
                    started_at=workflow.now(),
                ),
            )

    async def _report_to_account(self, report: ReportToAccount) -> None:
        """The account's journey hears its contacts' intent and meetings (account-based outbound)."""
        if not self._patches.abm:
            return
        activity = report.activity
        await call(
            "accounts.report",
            activity,
            None,
            f"Account {self._state.account_id}: intent +{activity.intent_points}"
            + (", meeting" if activity.meeting_booked else ""),
            policy=LOOKUP,
            audit=self.audit,
        )

    async def _report_to_customer(self, report: ReportToCustomer) -> None:
        kinds = ", ".join(sorted({e.kind for e in report.report.events}))
        await call(
            "customers.report",
            report.report,
            None,
            f"Account {report.report.account_id}: {kinds}",
            policy=PLATFORM_WRITE,
            audit=self.audit,
        )

    async def _report_referral(self, report: ReportReferral) -> None:
        await call(
            "customers.report_referral",
            report.referral,
            None,
            "Referral: tell the advocate's account",
            policy=PLATFORM_WRITE,
            audit=self.audit,
        )

    async def _expose(self, expose: ExposeToExperiment) -> None:
        await call(
            "experiments.expose",
            expose.exposure,
            str,
            f"Experiment {expose.exposure.experiment_id}: exposure",
            policy=LOOKUP,
            audit=self.audit,
        )

    async def _tell_nurtures(self, tell: TellNurtures) -> None:
        state = self._state
        if not tell.events and not tell.context_changed:
            return
        context = lead_context(state, await self._rules())
        for enrollment in state.enrollments:
            if enrollment.status not in ("active", "paused"):
                continue
            handle = workflow.get_external_workflow_handle(enrollment.workflow_id)
            try:
                if tell.context_changed:
                    await handle.signal(NURTURE_CONTEXT_SIGNAL, context)
                for event in tell.events:
                    await handle.signal(NURTURE_EVENT_SIGNAL, event)
            except Exception:
                # The enrollment ended without our hearing (its signal to us was lost with a run).
                enrollment.status, enrollment.ended_at = "completed", workflow.now()
                enrollment.reason = "ended (found closed)"
