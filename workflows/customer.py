"""An account's life as a customer, `customer-{account_id}`: the purchase (a CSM, the CRM company,
a welcome email, the kickoff invitation, onboarding), then health, expansion, surveys, renewal,
churn and win-back, for years. Its people's journeys report what they do; the policy is data.

The state is one model: the run continues as new with it when its history grows, so an account of
ten years replays as fast as one of ten days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from domain.connectors import (
        CalendarEventInput,
        ChatNotifyInput,
        CrmTaskInput,
        FlowMark,
        SendEmailInput,
        WriteResult,
    )
    from domain.customers import (
        CUSTOMER_EVENT_SIGNAL,
        CUSTOMER_STATE_QUERY,
        CUSTOMER_WORKFLOW_TYPE,
        ONBOARDING_RESULT_SIGNAL,
        ONBOARDING_USAGE_SIGNAL,
        ONBOARDING_WORKFLOW_TYPE,
        CompanyInput,
        CsmAssignment,
        CustomerEvent,
        CustomerInput,
        CustomerPolicy,
        CustomerState,
        OnboardingInput,
        OnboardingResult,
        SurveyAnswer,
        UsageNotice,
        expansion_reason,
        health_band,
        health_score,
        next_due,
        nps_class,
        onboarding_workflow_id,
        reminder_key,
        reminders_due,
        renews_until,
        survey_score,
    )
    from domain.ids import idempotency_key, lead_workflow_id
    from domain.qualify import ENROLL_SIGNAL, EnrollRequest
    from domain.search_attributes import ACCOUNT_ID, JOURNEY
    from domain.send_gate import SendPurpose
    from workflows import metrics
    from workflows.calls import PLATFORM_WRITE, CallPolicy, call
    from workflows.policies import PLATFORM_RETRY

# The journey's policy, read inside the workflow's task before anything else.
POLICY_READ = CallPolicy(start_to_close=timedelta(seconds=10), retry=PLATFORM_RETRY, local=True)
# A survey goes to the buyer and the account's most active people, this many in all.
SURVEY_RECIPIENTS = 5


@workflow.defn(name=CUSTOMER_WORKFLOW_TYPE)
class CustomerJourneyWorkflow:
    @workflow.init
    def __init__(self, input: CustomerInput) -> None:
        self._state = input.state or CustomerState(account_id=input.account_id)
        self._pending: list[CustomerEvent] = []
        self._onboarding: list[OnboardingResult] = []
        self._memo_shown: dict[str, object] = {}

    @workflow.signal(name=CUSTOMER_EVENT_SIGNAL)
    def customer_event(self, event: CustomerEvent) -> None:
        self._pending.append(event)

    @workflow.signal(name=ONBOARDING_RESULT_SIGNAL)
    def onboarding_result(self, result: OnboardingResult) -> None:
        self._onboarding.append(result)

    @workflow.query(name=CUSTOMER_STATE_QUERY)
    def state(self) -> CustomerState:
        return self._state

    @workflow.run
    async def run(self, input: CustomerInput) -> CustomerState:
        workflow.upsert_search_attributes(
            [ACCOUNT_ID.value_set(input.account_id), JOURNEY.value_set("customer")]
        )
        state = self._state
        policy = await call(
            "customers.policy", None, CustomerPolicy, "Customer journey policy", policy=POLICY_READ
        )
        while True:
            while self._pending:
                await self._take(self._pending.pop(0), policy)
            while self._onboarding:
                await self._onboarding_done(self._onboarding.pop(0), policy)
            await self._due(policy)
            workflow.set_current_details(self._details())
            self._memo()
            if self._history_full(input):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not (self._pending or self._onboarding):
                    state.runs += 1
                    workflow.continue_as_new(
                        CustomerInput(
                            account_id=input.account_id, state=state, history_limit=input.history_limit
                        )
                    )
                continue
            due = next_due(policy, state)
            timeout = None if due is None else max(due - workflow.now(), timedelta(seconds=1))
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending or self._onboarding) or self._history_full(input),
                    timeout=timeout,
                    timeout_summary="next check, survey or renewal date",
                )
            except TimeoutError:
                pass

    @staticmethod
    def _history_full(input: CustomerInput) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > input.history_limit

    def _memo(self) -> None:
        """The run's page in the Temporal UI: the account at a glance (no PII), when it changes."""
        s = self._state
        memo: dict[str, object] = {
            "status": s.status,
            "health": s.health,
            "band": s.health_band,
            "csm": s.csm.csm_id if s.csm else None,
            "renews": s.subscription_ends_at.date().isoformat() if s.subscription_ends_at else None,
        }
        if memo != self._memo_shown:
            self._memo_shown = memo
            workflow.upsert_memo(memo)

    def _details(self) -> str:
        s = self._state
        health = f"health {s.health} ({s.health_band})" if s.health is not None else "health not scored yet"
        ends = f", renews {s.subscription_ends_at:%Y-%m-%d}" if s.subscription_ends_at else ""
        who = f", CSM `{s.csm.csm_id}`" if s.csm and s.csm.csm_id else ""
        return f"Customer **{s.status}**: {health}; onboarding {s.onboarding}{ends}{who}"

    # --- events -----------------------------------------------------------------------------------

    async def _take(self, event: CustomerEvent, policy: CustomerPolicy) -> None:
        state = self._state
        if not state.first_time(event.event_id):
            return
        state.add_contact(event.lead_id)
        if event.kind in ("purchase", "subscription_started"):
            await self._purchase(event, policy)
        elif event.kind == "usage":
            await self._usage(event, policy)
        elif event.kind == "subscription_renewed":
            state.subscription_ends_at = renews_until(state, event, policy.renewal.term)
            state.term_number += 1
            state.renewals += 1
            state.reminders_sent = []
            state.log(event.occurred_at, f"renewed until {state.subscription_ends_at:%Y-%m-%d}")
            if state.status == "churned":
                await self._won_back(event)
        elif event.kind == "subscription_cancelled":
            await self._churn(policy, "the subscription was cancelled")
        elif event.kind == "survey_response":
            await self._survey_answer(event, policy)
        elif event.kind == "referral":
            new_lead = str(event.properties.get("new_lead_id", ""))
            if new_lead and new_lead not in state.referrals:
                state.referrals.append(new_lead)
                del state.referrals[:-200]
                state.log(event.occurred_at, f"advocate {event.lead_id} referred lead {new_lead}")

    async def _purchase(self, event: CustomerEvent, policy: CustomerPolicy) -> None:
        state = self._state
        self._seats(event)
        if state.status == "new":
            await self._welcome(event, policy)
        elif state.status == "churned":
            state.subscription_ends_at = renews_until(state, event, policy.renewal.term)
            state.term_number += 1
            state.reminders_sent = []
            await self._won_back(event)
        elif "period_end" in event.properties:
            state.subscription_ends_at = renews_until(state, event, policy.renewal.term)
        else:
            state.log(event.occurred_at, f"{event.kind}: {event.name}")

    def _seats(self, event: CustomerEvent) -> None:
        for key, field in (("seats", "seats"), ("quantity", "seats"), ("seats_used", "seats_used")):
            value = event.properties.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                setattr(self._state, field, int(value))

    async def _welcome(self, event: CustomerEvent, policy: CustomerPolicy) -> None:
        """The seed's "purchase -> customer success (immediate)"."""
        state, now = self._state, workflow.now()
        state.status, state.buyer_lead_id, state.purchased_at = "onboarding", event.lead_id, event.occurred_at
        state.subscription_ends_at = renews_until(state, event, policy.renewal.term)
        state.log(now, f"purchase by lead {event.lead_id}: {event.name or event.kind}")
        found = await call(
            "customers.assign_csm",
            state.account_id,
            CsmAssignment,
            "Assign the customer-success manager",
            policy=PLATFORM_WRITE,
            audit=self._audit,
        )
        csm = (
            found
            if isinstance(found, CsmAssignment)
            else CsmAssignment(csm_id=None, reason="assignment failed")
        )
        state.csm = csm
        state.log(now, f"CSM: {csm.csm_id or 'none'} ({csm.reason})")
        key = workflow.info().workflow_id
        kickoff = self._kickoff_time(event.occurred_at, policy)
        calls = [
            call(
                "crm.upsert_company",
                CompanyInput(
                    account_id=state.account_id,
                    lead_id=event.lead_id,
                    idempotency_key=idempotency_key(key, "company", "customer"),
                    owner_id=csm.crm_owner_id,
                    properties={
                        "lifecyclestage": "customer",
                        "customer_since": event.occurred_at.date().isoformat(),
                    },
                ),
                WriteResult,
                "CRM: the customer's company, owned by the CSM",
                policy=PLATFORM_WRITE,
                audit=self._audit,
            ),
            self._email(event.lead_id, policy.welcome_template, ("welcome",), {"csm_name": csm.name}),
            self._tell_csm(
                ("new-customer",),
                f"New customer: {{company}} (account {state.account_id}). Kickoff invitation sent for "
                f"{kickoff:%a %d %b %H:%M} UTC; onboarding started.",
                event.lead_id,
                flow=FlowMark(flow="purchase_to_customer_success", event_id=event.event_id),
            ),
        ]
        if csm.email:
            calls.append(
                call(
                    "calendar.create_event",
                    CalendarEventInput(
                        idempotency_key=idempotency_key(key, "kickoff"),
                        lead_id=event.lead_id,
                        summary="Kickoff: {company} and " + (csm.name or "your success manager"),
                        description="Welcome aboard: goals, the onboarding plan, who does what.",
                        start=kickoff,
                        end=kickoff + policy.kickoff_length,
                        calendar_id=csm.email,
                        extra_attendees=[csm.email],
                    ),
                    WriteResult,
                    "Calendar: the kickoff meeting",
                    policy=PLATFORM_WRITE,
                    audit=self._audit,
                )
            )
        await asyncio.gather(*calls)
        try:
            await workflow.start_child_workflow(
                ONBOARDING_WORKFLOW_TYPE,
                OnboardingInput(
                    account_id=state.account_id,
                    lead_id=event.lead_id,
                    started_at=event.occurred_at,
                    milestones=policy.onboarding.milestones,
                    csm=csm,
                ),
                id=onboarding_workflow_id(state.account_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"Onboarding of account {state.account_id}",
            )
            state.onboarding = "running"
        except WorkflowAlreadyStartedError:
            state.onboarding = "running"
        state.next_survey_at = event.occurred_at + policy.surveys.first_nps_after
        state.next_health_at = now + policy.health.check_every

    @staticmethod
    def _kickoff_time(purchased_at: datetime, policy: CustomerPolicy) -> datetime:
        """`kickoff_after` the purchase, moved to the next weekday, at 15:00 UTC (morning in the
        Americas, afternoon in Europe)."""
        day = (purchased_at + policy.kickoff_after).replace(hour=15, minute=0, second=0, microsecond=0)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return day

    async def _usage(self, event: CustomerEvent, policy: CustomerPolicy) -> None:
        state = self._state
        self._seats(event)
        tracked = {n.casefold() for n in policy.usage_events} | {
            s.event.casefold() for s in policy.health.signals
        }
        if policy.expansion.heavy_use_event:
            tracked.add(policy.expansion.heavy_use_event.casefold())
        if event.name.casefold() in tracked:
            state.record_usage(event.name, event.lead_id, event.occurred_at, policy.health.window)
        if state.onboarding == "running":
            try:
                await workflow.get_external_workflow_handle(onboarding_workflow_id(state.account_id)).signal(
                    ONBOARDING_USAGE_SIGNAL,
                    UsageNotice(name=event.name, lead_id=event.lead_id, at=event.occurred_at),
                )
            except Exception:
                state.onboarding = "incomplete"
                state.log(workflow.now(), "onboarding was found closed")
        if state.status in ("active", "onboarding", "at_risk"):
            reason = expansion_reason(policy.expansion, state, workflow.now(), policy.health.window)
            if reason:
                await self._expansion(reason, policy)

    async def _expansion(self, reason: str, policy: CustomerPolicy) -> None:
        state, now = self._state, workflow.now()
        state.expansion_offered_at = now
        state.log(now, f"expansion signal: {reason}")
        buyer = state.buyer_lead_id or (state.contacts[0] if state.contacts else None)
        if buyer is None:
            return
        await asyncio.gather(
            self._enroll([buyer], policy.expansion.sequence_id),
            self._task(
                buyer,
                ("expansion", now.date().isoformat()),
                "Expansion: {company} is ready to grow",
                f"{reason}. Talk seats and plan before they hit the limit.",
                due=now + timedelta(days=2),
            ),
        )

    async def _survey_answer(self, event: CustomerEvent, policy: CustomerPolicy) -> None:
        state = self._state
        score = survey_score(event.properties)
        survey = str(event.properties.get("survey", "nps"))
        if score is None:
            state.log(
                event.occurred_at, f"a survey answer from {event.lead_id} without a 0-10 score: ignored"
            )
            return
        state.add_survey(
            SurveyAnswer(lead_id=event.lead_id, survey=survey, score=score, at=event.occurred_at)
        )
        kind = nps_class(score)
        state.log(event.occurred_at, f"{survey} {score} from {event.lead_id}: {kind}")
        if kind == "promoter" and event.lead_id not in state.advocates:
            state.advocates.append(event.lead_id)
            await self._email(
                event.lead_id,
                policy.surveys.referral_template,
                ("referral", event.lead_id),
                {"referral_code": event.lead_id, "score": score},
                # Asking for a referral promotes: it needs marketing consent.
                purpose="marketing",
            )
        elif kind == "detractor":
            await asyncio.gather(
                self._tell_csm(
                    ("detractor", event.event_id),
                    f"Detractor: {{name}} at {{company}} answered {survey} with {score}. "
                    f"Account {state.account_id}; reach out within a day.",
                    event.lead_id,
                ),
                self._task(
                    event.lead_id,
                    ("detractor", event.event_id),
                    "Call {name}: " + f"{survey} {score}",
                    "A detractor: learn what went wrong and agree a fix.",
                    due=workflow.now() + timedelta(days=1),
                ),
            )
        await self._health(policy)

    async def _onboarding_done(self, result: OnboardingResult, policy: CustomerPolicy) -> None:
        state = self._state
        state.onboarding = "completed" if result.completed else "incomplete"
        state.onboarding_missed = result.missed
        state.log(
            result.finished_at,
            f"onboarding {state.onboarding}"
            + (f" (missed {', '.join(result.missed)})" if result.missed else ""),
        )
        if state.status == "onboarding":
            state.status = "active"
        if policy.surveys.csat_after_onboarding and not state.csat_sent and state.buyer_lead_id:
            state.csat_sent = True
            await self._email(state.buyer_lead_id, "csat_survey", ("csat",), {"survey": "csat_onboarding"})

    # --- the clock ---------------------------------------------------------------------------------

    async def _due(self, policy: CustomerPolicy) -> None:
        state, now = self._state, workflow.now()
        if state.status in ("new", "churned"):
            return
        for before in reminders_due(policy.renewal, state, now):
            await self._reminder(before)
        if state.subscription_ends_at and now >= state.subscription_ends_at + policy.renewal.grace:
            await self._churn(
                policy, f"the subscription ended {state.subscription_ends_at:%Y-%m-%d} without a renewal"
            )
            return
        if state.next_survey_at and now >= state.next_survey_at:
            state.surveys_sent += 1
            while state.next_survey_at <= now:
                state.next_survey_at += policy.surveys.nps_every
            survey = f"nps-{state.surveys_sent}"
            people = state.play_contacts()[:SURVEY_RECIPIENTS]
            state.log(now, f"{survey} sent to {len(people)}")
            await asyncio.gather(
                *(self._email(lead, "nps_survey", (survey, lead), {"survey": survey}) for lead in people)
            )
        if state.next_health_at and now >= state.next_health_at:
            while state.next_health_at <= now:
                state.next_health_at += policy.health.check_every
            await self._health(policy)

    async def _reminder(self, before: timedelta) -> None:
        state, now = self._state, workflow.now()
        key = reminder_key(state, before)
        state.reminders_sent.append(key)
        assert state.subscription_ends_at is not None
        days = max((state.subscription_ends_at - now).days, 0)
        state.log(now, f"renewal reminder: {days} days left")
        buyer = state.buyer_lead_id
        if buyer is None:
            return
        await asyncio.gather(
            self._email(
                buyer,
                "renewal_reminder",
                ("renewal", key),
                {"days_left": days, "ends_at": state.subscription_ends_at.date().isoformat()},
            ),
            self._task(
                buyer,
                ("renewal", key),
                f"Renewal in {days} days: {{company}}",
                f"Health {state.health} ({state.health_band}). Confirm the renewal and the plan.",
                due=now + timedelta(days=min(days, 3) or 1),
            ),
        )

    async def _health(self, policy: CustomerPolicy) -> None:
        state, now = self._state, workflow.now()
        state.prune(now, policy.health.window)
        score, reasons = health_score(policy.health, state, now)
        before = state.health_band
        band = health_band(policy.health, score)
        state.health, state.health_band, state.health_reasons = score, band, reasons
        if band == before:
            return
        state.log(now, f"health {score}: {before or 'unscored'} -> {band}")
        metrics.customer_health_changed(band)
        if band == "at_risk" and state.status in ("active", "onboarding"):
            state.status = "at_risk"
            await asyncio.gather(
                self._tell_csm(
                    ("at-risk", now.date().isoformat()),
                    f"At risk: {{company}} (account {state.account_id}), health {score}. "
                    + "; ".join(reasons[1:]),
                    state.buyer_lead_id,
                ),
                self._enroll(state.play_contacts(), policy.reengagement_sequence),
            )
        elif before == "at_risk" and state.status == "at_risk":
            state.status = "active"

    async def _churn(self, policy: CustomerPolicy, reason: str) -> None:
        state, now = self._state, workflow.now()
        if state.status == "churned":
            return
        state.status, state.churned_at = "churned", now
        state.log(now, f"churned: {reason}")
        metrics.customer_churned()
        key = workflow.info().workflow_id
        calls: list[Coroutine[Any, Any, object]] = [
            self._tell_csm(
                ("churned", str(state.term_number)), f"Churned: {{company}}: {reason}.", state.buyer_lead_id
            ),
            self._enroll(state.play_contacts(), policy.renewal.win_back_sequence),
        ]
        someone = state.buyer_lead_id or (state.contacts[0] if state.contacts else None)
        if someone:
            calls.append(
                call(
                    "crm.upsert_company",
                    CompanyInput(
                        account_id=state.account_id,
                        lead_id=someone,
                        idempotency_key=idempotency_key(key, "company", "churned", str(state.term_number)),
                        properties={"customer_status": "churned", "churned_on": now.date().isoformat()},
                    ),
                    WriteResult,
                    "CRM: the company churned",
                    policy=PLATFORM_WRITE,
                    audit=self._audit,
                )
            )
        await asyncio.gather(*calls)

    async def _won_back(self, event: CustomerEvent) -> None:
        state = self._state
        state.status, state.churned_at = "active", None
        state.log(event.occurred_at, "won back")
        await self._tell_csm(
            ("won-back", str(state.term_number)), "Won back: {company} bought again.", state.buyer_lead_id
        )

    # --- calls -------------------------------------------------------------------------------------

    async def _enroll(self, leads: list[str], sequence_id: str) -> None:
        for lead in leads:
            try:
                await workflow.get_external_workflow_handle(lead_workflow_id(lead)).signal(
                    ENROLL_SIGNAL, EnrollRequest(sequence_id=sequence_id)
                )
            except Exception:
                self._state.log(workflow.now(), f"lead {lead} not found to enroll in {sequence_id}")

    async def _email(
        self,
        lead_id: str,
        template: str,
        step: tuple[str, ...],
        variables: dict[str, object],
        purpose: SendPurpose = "service",
    ) -> None:
        await call(
            "email.send",
            SendEmailInput(
                lead_id=lead_id,
                idempotency_key=idempotency_key(workflow.info().workflow_id, "email", template, *step),
                template_id=template,
                variables={"account_id": self._state.account_id, **variables},
                # Renewal, surveys, the customer's own account: service, not marketing.
                purpose=purpose,
                journey="customer",
            ),
            WriteResult,
            f"Email: {template}",
            policy=PLATFORM_WRITE,
            audit=self._audit,
        )

    async def _tell_csm(
        self, step: tuple[str, ...], text: str, lead_id: str | None, *, flow: FlowMark | None = None
    ) -> None:
        csm = self._state.csm
        channel = (csm.slack_user_id or csm.channel) if csm else ""
        if not channel:
            return
        await call(
            "notify.post_message",
            ChatNotifyInput(
                idempotency_key=idempotency_key(workflow.info().workflow_id, "csm", *step),
                channel=channel,
                text=text,
                lead_id=lead_id,
                flow=flow,
            ),
            WriteResult,
            "CSM: " + step[0],
            policy=PLATFORM_WRITE,
            audit=self._audit,
        )

    async def _task(
        self, lead_id: str, step: tuple[str, ...], subject: str, body: str, *, due: datetime
    ) -> None:
        csm = self._state.csm
        await call(
            "crm.create_task",
            CrmTaskInput(
                lead_id=lead_id,
                idempotency_key=idempotency_key(workflow.info().workflow_id, "task", *step),
                subject=subject,
                body=body,
                due_at=due,
                owner_id=csm.crm_owner_id if csm else None,
                priority="HIGH",
            ),
            WriteResult,
            f"CRM task: {step[0]}",
            policy=PLATFORM_WRITE,
            audit=self._audit,
        )

    def _audit(self, step: str, message: str) -> None:
        """A platform step that gave up is audited in the journey's log, not fatal."""
        self._state.log(workflow.now(), f"{step} failed: {message}")
