"""The lead's entity workflow, `lead-{lead_id}`: one per identified lead, for the lead's whole life.

It only carries out what `domain.reactions` decides: each event is folded in by
`react_to_event`, each batch (and each message that needs it) settled by `settle`, and the
effects they return are done by `workflows.lead_effects`. All its state is one `LeadState`, the
work in waiting included, so continue-as-new carries everything. It continues as new when the
server suggests it, so its history stays bounded.

A person's stage change (`change_stage`) is validated by the update's validator, then queued for
the main loop, which settles the lead; the update answers once that is done. So settling never
runs twice at once, and continue-as-new waits for the answer.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from domain import reactions
    from domain.events import LeadEvent
    from domain.handoff import HANDOFF_OUTCOME_SIGNAL, HandoffOutcome
    from domain.lead import (
        EVENTS_SIGNAL,
        LEAD_STATE_QUERY,
        LEAD_WORKFLOW_TYPE,
        MERGED_SIGNAL,
        EventsRecorded,
        LeadMerged,
        LeadState,
        LeadWorkflowInput,
        can_move,
    )
    from domain.nurture import NURTURE_ENDED_SIGNAL, NurtureEnded
    from domain.qualify import (
        CHANGE_STAGE_UPDATE,
        ENROLL_SIGNAL,
        RELOAD_RULES_SIGNAL,
        EnrollRequest,
        LeadFacts,
        LeadFactsInput,
        StageChangeRequest,
        StageChangeResult,
    )
    from domain.scoring import ScoringConfig
    from domain.search_attributes import (
        ACCOUNT_ID,
        EMAIL_HASH,
        JOURNEY,
        LEAD_ID,
        LEAD_SCORE,
        LIFECYCLE_STAGE,
    )
    from workflows import metrics
    from workflows.calls import LOCAL_LOOKUP, LOOKUP, call
    from workflows.lead_effects import LeadEffects
    from workflows.lead_patches import LeadPatches


@workflow.defn(name=LEAD_WORKFLOW_TYPE)
class LeadWorkflow:
    @workflow.init
    def __init__(self, input: LeadWorkflowInput) -> None:
        self._state = input.state or LeadState(lead_id=input.lead_id, email_hash=input.email_hash)
        self._events: list[LeadEvent] = list(input.pending)
        self._merged: LeadMerged | None = None
        self._rules_loaded: ScoringConfig | None = None
        self._patches = LeadPatches()
        self._effects = LeadEffects(self._state, self._patches, self._rules, self._upsert_search_attributes)
        # Stage changes waiting for the main loop, and their answers, by update id. Empty whenever
        # all handlers have finished, so continue-as-new never has one to carry.
        self._stage_requests: list[tuple[str, StageChangeRequest]] = []
        self._stage_results: dict[str, StageChangeResult] = {}
        # The stage last counted in the metrics (a run carried over continues from its stage).
        self._metered_stage = self._state.stage
        self._history_limit = input.history_limit

    @workflow.run
    async def run(self, input: LeadWorkflowInput) -> LeadState:
        # Every patch is decided here, at the start of the run (runs from before EFFECTS_PATCH decide
        # some where first needed, as they were recorded).
        self._patches.decide_first()
        self._upsert_search_attributes()
        self._patches.decide_at_start()
        while True:
            await workflow.wait_condition(
                lambda: (
                    bool(self._events)
                    or bool(self._stage_requests)
                    or reactions.has_work(self._state, self._patches)
                    or self._merged is not None
                    or self._continue_as_new_due()
                )
            )
            while self._events:
                await self._take(self._events.pop(0))
                if not self._events and await self._settle():
                    self._upsert_search_attributes()
            while self._stage_requests:
                update_id, request = self._stage_requests.pop(0)
                self._stage_results[update_id] = await self._change_stage(request)
            if reactions.has_work(self._state, self._patches) and await self._settle():
                self._upsert_search_attributes()
            if self._merged is not None:
                # The lead lives on under its other id; this run ends with what it knew.
                self._state.merged_into = self._merged.into_lead_id
                workflow.set_current_details(f"Merged into lead `{self._merged.into_lead_id}`")
                if not await self._handlers_finished():
                    continue
                return self._state
            if self._continue_as_new_due():
                if not await self._handlers_finished():
                    continue
                workflow.continue_as_new(
                    LeadWorkflowInput(
                        lead_id=self._state.lead_id,
                        email_hash=self._state.email_hash,
                        state=self._state,
                        pending=self._events,
                        history_limit=self._history_limit,
                    )
                )

    async def _handlers_finished(self) -> bool:
        """Waits until every handler has finished, or a stage change is queued: that one waits for
        the main loop (False: carry it out first)."""
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or bool(self._stage_requests))
        return not self._stage_requests

    def _continue_as_new_due(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        return self._history_limit is not None and info.get_current_history_length() > self._history_limit

    @workflow.signal(name=EVENTS_SIGNAL)
    def events(self, recorded: EventsRecorded) -> None:
        # The outbox delivers at least once; an event is folded once. A signal can carry events
        # in any order (a backfill, a merge, a batch): folded in the order they happened.
        for event in sorted(recorded.events, key=lambda e: e.occurred_at):
            if self._state.has_seen(event.event_id):
                continue
            self._state.remember(event.event_id)
            if recorded.merged_from is not None and event.submission_id:
                # The merged lead synced its form to the CRM itself: syncing it again from here
                # would make again the record a CRM merge took away.
                event = event.model_copy(update={"submission_id": None})
            self._events.append(event)

    @workflow.signal(name=MERGED_SIGNAL)
    def merged_into(self, merged: LeadMerged) -> None:
        self._merged = merged

    @workflow.signal(name=NURTURE_ENDED_SIGNAL)
    def nurture_ended(self, ended: NurtureEnded) -> None:
        reactions.record_nurture_ended(self._state, ended, workflow.now())

    @workflow.signal(name=ENROLL_SIGNAL)
    def enroll(self, request: EnrollRequest) -> None:
        """Enroll by hand, or (`restart`) move the lead onto the sequence's latest version."""
        reactions.request_enrollment(self._state, request)

    @workflow.signal(name=HANDOFF_OUTCOME_SIGNAL)
    def handoff_outcome(self, outcome: HandoffOutcome) -> None:
        """The rep accepted the hand-off: the lead becomes an SQL."""
        reactions.record_handoff_outcome(self._state, outcome)

    @workflow.signal(name=RELOAD_RULES_SIGNAL)
    def reload_rules(self) -> None:
        """Marketing ops changed the scoring file: the next event is scored by the new rules."""
        self._rules_loaded = None

    @workflow.update(name=CHANGE_STAGE_UPDATE)
    async def change_stage(self, request: StageChangeRequest) -> StageChangeResult:
        """A person moves the lead: sales accepts (SQL), disqualifies, or recycles it."""
        if not self._patches.effects:
            # Runs recorded before the main loop carried stage changes out: as they were recorded.
            return await self._change_stage(request)
        update = workflow.current_update_info()
        assert update is not None
        self._stage_requests.append((update.id, request))
        await workflow.wait_condition(lambda: update.id in self._stage_results)
        return self._stage_results.pop(update.id)

    @change_stage.validator
    def _validate_stage_change(self, request: StageChangeRequest) -> None:
        if request.stage != self._state.stage and not can_move(self._state.stage, request.stage):
            raise ValueError(f"a {self._state.stage.value} lead cannot move to {request.stage.value}")

    @workflow.query(name=LEAD_STATE_QUERY)
    def state(self) -> LeadState:
        return self._state

    async def _rules(self) -> ScoringConfig:
        if self._rules_loaded is None:
            self._rules_loaded = await call(
                "scoring.config", None, ScoringConfig, "Load the scoring rules", policy=LOCAL_LOOKUP
            )
        return self._rules_loaded

    async def _take(self, event: LeadEvent) -> None:
        state = self._state
        rules = await self._rules() if self._patches.qualify else None
        effects = reactions.react_to_event(state, event, rules, self._patches, workflow.now())
        await self._effects.carry_out(effects)
        workflow.set_current_details(
            f"Stage **{state.stage.value}**; waiting for the lead's next event "
            f"({state.activity.page_views} page views in {state.activity.sessions} sessions, "
            f"{state.activity.forms_submitted} forms)"
        )

    async def _settle(self) -> bool:
        """After a batch of events or a message: facts, then the decisions, then their effects.

        Returns whether the stage or score changed (for the search attributes)."""
        if not self._patches.qualify:
            return False
        state = self._state
        rules = await self._rules()
        if reactions.facts_needed(state):
            reactions.facts_fetched(state)
            facts = await call(
                "leads.facts",
                LeadFactsInput(lead_id=state.lead_id),
                LeadFacts,
                "Firmographic fit and time zone",
                policy=LOOKUP,
                audit=self._effects.audit,
            )
            if facts is not None:
                reactions.apply_facts(state, facts)
        settlement = reactions.settle(state, rules, self._patches, workflow.now())
        await self._effects.carry_out(settlement.effects)
        return settlement.changed

    async def _change_stage(self, request: StageChangeRequest) -> StageChangeResult:
        state = self._state
        previous = state.stage
        changed = state.move_to(
            request.stage, f"{request.reason} (by {request.by})", workflow.now(), explicit=True
        )
        if changed:
            self._upsert_search_attributes()
            reactions.stage_changed_by_hand(state)
            if request.stage in reactions.HANDOFF_ENDING_STAGES:
                await self._effects.carry_out(
                    [reactions.CloseHandoff(reason=f"lead moved to {request.stage.value} by {request.by}")]
                )
            await self._settle()
        return StageChangeResult(stage=state.stage, previous=previous, changed=changed)

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
            if self._patches.memos:
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
