"""The lead's entity workflow, `lead-{lead_id}`: one per identified lead, for the lead's whole life.

It folds each event it is signalled into its state, keeps the CRM and the email platform in
step, and continues as new when the server suggests it, so its history stays bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.events import EventType, LeadEvent
    from domain.handoff import HANDOFF_OUTCOME_SIGNAL, HandoffOutcome
    from domain.ids import idempotency_key
    from domain.lead import (
        EVENTS_SIGNAL,
        IDENTIFYING,
        LEAD_STATE_QUERY,
        LEAD_WORKFLOW_TYPE,
        MERGED_SIGNAL,
        EnrollWelcomeInput,
        EnrollWelcomeResult,
        EventsRecorded,
        LeadMerged,
        LeadState,
        LeadWorkflowInput,
        LifecycleStage,
        UpsertContactInput,
        UpsertContactResult,
        can_move,
    )
    from domain.nurture import NURTURE_ENDED_SIGNAL, NurtureEnded
    from domain.qualify import (
        CHANGE_STAGE_UPDATE,
        ENROLL_SIGNAL,
        RELOAD_RULES_SIGNAL,
        EnrollRequest,
        StageChangeRequest,
        StageChangeResult,
    )
    from domain.search_attributes import (
        ACCOUNT_ID,
        EMAIL_HASH,
        JOURNEY,
        LEAD_ID,
        LEAD_SCORE,
        LIFECYCLE_STAGE,
    )
    from workflows import metrics
    from workflows.policies import PLATFORM_CALL_TIMEOUT, PLATFORM_GIVE_UP_AFTER, PLATFORM_RETRY
    from workflows.qualify import Qualifier

T = TypeVar("T")

# Runs recorded before memos existed replay without them.
MEMO_PATCH = "memo-v1"


def _platform_call(activity: str, argument: object, result_type: type[T], summary: str) -> Awaitable[T]:
    """An activity that writes to a platform: retried through outages, typed failures not retried."""
    return workflow.execute_activity(
        activity,
        argument,
        result_type=result_type,
        start_to_close_timeout=PLATFORM_CALL_TIMEOUT,
        schedule_to_close_timeout=PLATFORM_GIVE_UP_AFTER,
        retry_policy=PLATFORM_RETRY,
        summary=summary,
    )


@workflow.defn(name=LEAD_WORKFLOW_TYPE)
class LeadWorkflow:
    @workflow.init
    def __init__(self, input: LeadWorkflowInput) -> None:
        self._state = input.state or LeadState(lead_id=input.lead_id, email_hash=input.email_hash)
        self._pending: list[LeadEvent] = list(input.pending)
        self._merged: LeadMerged | None = None
        self._qualifier = Qualifier(self._state)
        # The stage last counted in the metrics (a run carried over continues from its stage).
        self._metered_stage = self._state.stage
        self._memos = False

    @workflow.run
    async def run(self, input: LeadWorkflowInput) -> LeadState:
        # Decided at the start of the run: a patch first met inside an update handler (a person's
        # stage change) does not replay in place.
        self._memos = workflow.patched(MEMO_PATCH)
        self._upsert_search_attributes()
        self._qualifier.start()
        while True:
            await workflow.wait_condition(
                lambda: (
                    bool(self._pending)
                    or self._qualifier.has_work()
                    or self._merged is not None
                    or workflow.info().is_continue_as_new_suggested()
                )
            )
            while self._pending:
                await self._handle(self._pending.pop(0))
                if not self._pending and await self._qualifier.settle():
                    self._upsert_search_attributes()
            if self._qualifier.has_work() and await self._qualifier.settle():
                self._upsert_search_attributes()
            if self._merged is not None:
                # The lead lives on under its other id; this run ends with what it knew.
                self._state.merged_into = self._merged.into_lead_id
                workflow.set_current_details(f"Merged into lead `{self._merged.into_lead_id}`")
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._state
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    LeadWorkflowInput(
                        lead_id=self._state.lead_id,
                        email_hash=self._state.email_hash,
                        state=self._state,
                        pending=self._pending,
                    )
                )

    @workflow.signal(name=EVENTS_SIGNAL)
    def events(self, recorded: EventsRecorded) -> None:
        # The outbox delivers at least once; an event is folded once. A signal can carry events
        # in any order (a backfill, a merge, a batch): folded in the order they happened.
        for event in sorted(recorded.events, key=lambda e: e.occurred_at):
            if self._state.has_seen(event.event_id):
                continue
            self._state.remember(event.event_id)
            self._pending.append(event)

    @workflow.signal(name=MERGED_SIGNAL)
    def merged_into(self, merged: LeadMerged) -> None:
        self._merged = merged

    @workflow.signal(name=NURTURE_ENDED_SIGNAL)
    def nurture_ended(self, ended: NurtureEnded) -> None:
        self._qualifier.nurture_ended(ended)

    @workflow.signal(name=ENROLL_SIGNAL)
    def enroll(self, request: EnrollRequest) -> None:
        """Enroll by hand, or (`restart`) move the lead onto the sequence's latest version."""
        self._qualifier.enroll(request)

    @workflow.signal(name=HANDOFF_OUTCOME_SIGNAL)
    def handoff_outcome(self, outcome: HandoffOutcome) -> None:
        """The rep accepted the hand-off: the lead becomes an SQL."""
        self._qualifier.handoff_outcome(outcome)

    @workflow.signal(name=RELOAD_RULES_SIGNAL)
    def reload_rules(self) -> None:
        """Marketing ops changed the scoring file: the next event is scored by the new rules."""
        self._qualifier.reload_rules()

    @workflow.update(name=CHANGE_STAGE_UPDATE)
    async def change_stage(self, request: StageChangeRequest) -> StageChangeResult:
        """A person moves the lead: sales accepts (SQL), disqualifies, or recycles it."""
        previous = self._state.stage
        changed = self._state.move_to(
            request.stage, f"{request.reason} (by {request.by})", workflow.now(), explicit=True
        )
        if changed:
            self._upsert_search_attributes()
            self._qualifier.stage_changed()
            if request.stage in (
                LifecycleStage.RECYCLED,
                LifecycleStage.DISQUALIFIED,
                LifecycleStage.CUSTOMER,
                LifecycleStage.SQL,
            ):
                await self._qualifier.close_handoff(f"lead moved to {request.stage.value} by {request.by}")
            await self._qualifier.settle()
        return StageChangeResult(stage=self._state.stage, previous=previous, changed=changed)

    @change_stage.validator
    def _validate_stage_change(self, request: StageChangeRequest) -> None:
        if request.stage != self._state.stage and not can_move(self._state.stage, request.stage):
            raise ValueError(f"a {self._state.stage.value} lead cannot move to {request.stage.value}")

    @workflow.query(name=LEAD_STATE_QUERY)
    def state(self) -> LeadState:
        return self._state

    async def _handle(self, event: LeadEvent) -> None:
        state = self._state
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
        await self._qualifier.on_event(event, became_lead=became_lead)
        changed = changed or state.stage is not stage_before
        if changed or event.type is EventType.GROUP:
            self._upsert_search_attributes()
        if event.type is EventType.FORM_SUBMITTED and event.submission_id:
            await self._sync_form(event)
        workflow.set_current_details(
            f"Stage **{state.stage.value}**; waiting for the lead's next event "
            f"({state.activity.page_views} page views in {state.activity.sessions} sessions, "
            f"{state.activity.forms_submitted} forms)"
        )

    async def _sync_form(self, form: LeadEvent) -> None:
        assert form.submission_id is not None
        state = self._state
        workflow.set_current_details(f"Syncing form `{form.form_id}` to the CRM and the email platform")
        workflow_id = workflow.info().workflow_id
        crm_call = _platform_call(
            "crm.upsert_contact",
            UpsertContactInput(
                lead_id=state.lead_id,
                submission_id=form.submission_id,
                lifecycle_stage=state.stage,
                idempotency_key=idempotency_key(workflow_id, "form", form.submission_id, "crm-upsert"),
            ),
            UpsertContactResult,
            "Upsert the contact in the CRM",
        )
        email_call = _platform_call(
            "email.enroll_welcome",
            EnrollWelcomeInput(
                lead_id=state.lead_id,
                submission_id=form.submission_id,
                list_id=form.welcome_list,
                idempotency_key=idempotency_key(workflow_id, "form", form.submission_id, "welcome"),
            ),
            EnrollWelcomeResult,
            "Enroll in the email platform's welcome flow",
        )
        crm_result, email_result = await asyncio.gather(crm_call, email_call, return_exceptions=True)
        if isinstance(crm_result, UpsertContactResult):
            state.crm_contact_id = crm_result.contact_id
        else:
            self._record_failure("crm.upsert_contact", crm_result)
        if isinstance(email_result, EnrollWelcomeResult):
            state.email_profile_id = email_result.profile_id
            state.welcome_enrolled = state.welcome_enrolled or email_result.enrolled
            state.welcome_skipped_reason = email_result.skipped_reason
        else:
            self._record_failure("email.enroll_welcome", email_result)

    def _record_failure(self, step: str, error: object) -> None:
        if not isinstance(error, ActivityError):
            # Not a platform failure: a bug. Fail the task so it retries once the code is fixed.
            raise error if isinstance(error, BaseException) else TypeError(repr(error))
        cause = error.cause or error
        workflow.logger.warning("%s gave up: %s", step, cause)
        self._state.record_failure(step, str(cause), workflow.now())

    def _upsert_search_attributes(self) -> None:
        updates: list[SearchAttributeUpdate[Any]] = [
            LEAD_ID.value_set(self._state.lead_id),
            LIFECYCLE_STAGE.value_set(self._state.stage.value),
            LEAD_SCORE.value_set(self._state.score),
            JOURNEY.value_set("lead"),
        ]
        if self._state.email_hash:
            updates.append(EMAIL_HASH.value_set(self._state.email_hash))
        if self._state.account_id:
            updates.append(ACCOUNT_ID.value_set(self._state.account_id))
        workflow.upsert_search_attributes(updates)
        if self._state.stage is not self._metered_stage:
            self._metered_stage = self._state.stage
            metrics.stage_reached(self._state.stage.value)
            if self._memos:
                workflow.upsert_memo(self._memo())

    def _memo(self) -> dict[str, Any]:
        """What the Temporal UI shows on the run's page: why it stands where it stands (no PII)."""
        state = self._state
        last = state.stage_history[-1] if state.stage_history else None
        touch = state.first_touch
        return {
            "stage": state.stage.value,
            "why": last.reason if last else None,
            "since": last.at.isoformat() if last else None,
            "score": state.score,
            "first_touch": " / ".join(p for p in (touch.source, touch.medium, touch.campaign) if p)
            if touch
            else None,
            "owner": state.owner,
        }
