"""The MQL -> sales hand-off, `handoff-{lead_id}-{n}`: assign, tell, wait for acceptance within
the SLA, escalate along the roster's chain, audit every step.

The SLA clock starts when the lead became an MQL, not when this run started. Acceptance is an
update with a validator (only the rep holding the lead, or any rep of the team once the lead is
in the team queue; only once), so a rep's click gets a clear yes or no.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.connectors import CrmDealInput, CrmNoteInput, CrmTaskInput, SyncPersonInput, WriteResult
    from domain.handoff import (
        ACCEPT_UPDATE,
        HANDOFF_CLOSE_SIGNAL,
        HANDOFF_CRM_ACCEPT_SIGNAL,
        HANDOFF_OUTCOME_SIGNAL,
        HANDOFF_STATE_QUERY,
        HANDOFF_WORKFLOW_TYPE,
        AcceptRequest,
        AcceptResult,
        AssignInput,
        Assignment,
        CrmAcceptance,
        HandoffInput,
        HandoffOutcome,
        HandoffPolicy,
        HandoffState,
        Milestone,
        RepNotifyInput,
    )
    from domain.ids import idempotency_key, lead_workflow_id
    from domain.search_attributes import JOURNEY, LEAD_ID, OWNER
    from workflows import metrics
    from workflows.calls import CallPolicy, call
    from workflows.policies import PLATFORM_GIVE_UP_AFTER, PLATFORM_RETRY

# The hand-off's own calls must be fast: a slow platform is retried quickly, not in minutes.
FAST_RETRY = PLATFORM_RETRY.__class__(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=PLATFORM_RETRY.non_retryable_error_types,
)
CALL_TIMEOUT = timedelta(seconds=20)
# One step of the hand-off: fast retries through a platform's outage, given up after a week.
HANDOFF_STEP = CallPolicy(
    start_to_close=CALL_TIMEOUT, retry=FAST_RETRY, schedule_to_close=PLATFORM_GIVE_UP_AFTER
)
# An answer taken later than this after it was given is audited as held up (a worker down, a backlog).
ANSWER_HELD_UP = timedelta(seconds=5)
MEMO_PATCH = "handoff-memo-v1"
# Acceptance opens the deal in the CRM, so the rep's "closed won" there makes the lead a customer.
DEAL_PATCH = "handoff-deal-v1"


@workflow.defn(name=HANDOFF_WORKFLOW_TYPE)
class HandoffWorkflow:
    def __init__(self) -> None:
        self._state = HandoffState()
        self._input: HandoffInput | None = None
        self._closed = False
        self._crm_acceptance: CrmAcceptance | None = None
        self._memos = self._deals = False
        # When the rep holding the lead must have accepted by; None while nothing is due.
        self._due: datetime | None = None

    @workflow.query(name=HANDOFF_STATE_QUERY)
    def state(self) -> HandoffState:
        return self._state

    @workflow.signal(name=HANDOFF_CLOSE_SIGNAL)
    def close(self, reason: str) -> None:
        """The lead moved on without us (recycled, disqualified, customer): stop escalating."""
        if self._state.status not in ("accepted", "closed"):
            self._closed = True
            self._state.close_reason = reason

    @workflow.update(name=ACCEPT_UPDATE)
    async def accept(self, request: AcceptRequest) -> AcceptResult:
        return await self._accept(request.rep_id, request.note, request.clicked_at)

    @workflow.signal(name=HANDOFF_CRM_ACCEPT_SIGNAL)
    def accepted_in_crm(self, acceptance: CrmAcceptance) -> None:
        """The rep took the lead in the CRM: as good as the API's accept, for whoever holds it."""
        if self._state.status in ("waiting", "queued") and self._crm_acceptance is None:
            self._crm_acceptance = acceptance

    async def _accept(self, rep_id: str, note: str, answered_at: datetime | None = None) -> AcceptResult:
        assert self._input is not None
        state, now = self._state, workflow.now()
        # When the rep answered (the API's stamp on the click, the CRM's change): not before the
        # lead was theirs to take, nor after now (another machine's clock).
        earliest = state.assigned_at or self._input.mql_at
        answered = max(min(answered_at, now), earliest) if answered_at is not None else now
        late = answered - self._due if state.status == "waiting" and self._due is not None else None
        state.status, state.accepted_by, state.accepted_at = "accepted", rep_id, answered
        state.log(now, f"accepted{': ' + note if note else ''}", rep_id)
        metrics.handoff_accepted()
        if now - answered > ANSWER_HELD_UP:
            state.log(now, f"the answer of {answered.isoformat()} reached the hand-off late", rep_id)
        if late is not None and late > timedelta(0):
            # The answer and the SLA's timer reached the run together (a busy or restarted worker):
            # the lead is taken, so it is not escalated away; the miss is audited and counted.
            state.log(
                now, f"SLA missed by {late.total_seconds():.1f}s: accepted before the escalation ran", rep_id
            )
            metrics.handoff_escalated("none: accepted late")
        handoff_id = workflow.info().workflow_id
        await self._milestone("accepted", rep_id, at=answered)
        owner = state.assignment.crm_owner_id if state.assignment else None
        if self._deals:
            await call(
                "crm.upsert_deal",
                CrmDealInput(
                    lead_id=self._input.lead_id,
                    idempotency_key=idempotency_key(handoff_id, "accepted", "deal"),
                    deal_key=handoff_id,
                    name="{company}: new business",
                    stage="qualifiedtobuy",
                    owner_id=owner,
                ),
                None,
                "CRM: the deal, owned by the rep",
                policy=HANDOFF_STEP,
                audit=self._audit,
            )
        await asyncio.gather(
            self._tell_lead(
                HandoffOutcome(
                    handoff_id=handoff_id,
                    rep_id=rep_id,
                    accepted_at=answered,
                    crm_owner_id=state.assignment.crm_owner_id if state.assignment else None,
                )
            ),
            call(
                "crm.create_task",
                CrmTaskInput(
                    lead_id=self._input.lead_id,
                    idempotency_key=idempotency_key(handoff_id, "accepted", "first-call"),
                    subject="First call with {name} ({company})",
                    body="Accepted from the MQL hand-off. " + "; ".join(self._input.reasons),
                    due_at=answered + timedelta(hours=1),
                    owner_id=state.assignment.crm_owner_id if state.assignment else None,
                    priority="HIGH",
                ),
                None,
                "Task: first call within the hour",
                policy=HANDOFF_STEP,
                audit=self._audit,
            ),
        )
        acceptance = state.acceptance(handoff_id)
        assert acceptance is not None
        return acceptance

    @accept.validator
    def _only_the_rep_holding_it(self, request: AcceptRequest) -> None:
        state = self._state
        if state.status == "accepted":
            raise ValueError(f"already accepted by {state.accepted_by}")
        if state.status == "closed" or self._closed:
            raise ValueError(f"closed: {state.close_reason}")
        assignment = state.assignment
        if assignment is None:
            raise ValueError("not assigned yet")
        if request.rep_id == assignment.rep_id:
            return
        if state.status == "queued" and request.rep_id in assignment.team_reps:
            return
        holder = "the team queue" if assignment.queue else assignment.rep_id
        raise ValueError(f"{request.rep_id} does not hold this lead ({holder} does)")

    @workflow.run
    async def run(self, input: HandoffInput) -> HandoffState:
        # Decided at the start: the accept update must not be the first to meet a patch.
        self._memos = workflow.patched(MEMO_PATCH)
        self._deals = workflow.patched(DEAL_PATCH)
        self._input = input
        state = self._state
        state.mql_at = input.mql_at
        workflow.upsert_search_attributes([LEAD_ID.value_set(input.lead_id), JOURNEY.value_set("handoff")])
        state.log(input.mql_at, "MQL: " + "; ".join(input.reasons))
        policy, _ = await asyncio.gather(
            call(
                "handoff.policy", None, HandoffPolicy, "Roster: SLA and escalation chain", policy=HANDOFF_STEP
            ),
            self._milestone("mql", None, at=input.mql_at),
        )
        assert isinstance(policy, HandoffPolicy)
        self._due = input.mql_at + policy.sla
        await asyncio.gather(self._assign_and_tell("assigned"), self._enrich())
        chain = list(policy.chain)
        while True:
            remaining = max(self._due - workflow.now(), timedelta(0))
            summary = "SLA: the rep accepts" if not state.tried[1:] else "escalated: accept"
            done = await self._wait_for_outcome(remaining if state.status != "queued" else None, summary)
            if self._crm_acceptance is not None and state.status in ("waiting", "queued"):
                holder = state.assignment.rep_id if state.assignment else None
                acceptance = self._crm_acceptance
                await self._accept(holder or "crm", f"in the CRM: {acceptance.detail}", acceptance.at)
                break
            if done:
                break
            step = chain.pop(0) if chain else "team_queue"
            await self._escalate(step, policy)
            self._due = workflow.now() + policy.step_timeout
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._closed and state.status != "accepted":
            state.status = "closed"
            state.log(workflow.now(), f"closed: {state.close_reason}")
            await self._milestone("closed", None, detail=state.close_reason or "")
            await self._release()
        workflow.set_current_details(self._details())
        return state

    async def _tell_lead(self, outcome: HandoffOutcome) -> None:
        assert self._input is not None
        try:
            await workflow.get_external_workflow_handle(lead_workflow_id(self._input.lead_id)).signal(
                HANDOFF_OUTCOME_SIGNAL, outcome
            )
        except Exception:
            # The lead's run is gone (erased, merged): the acceptance stands in this history.
            self._state.log(workflow.now(), "the lead's journey was not found to tell it")

    async def _wait_for_outcome(self, timeout: timedelta | None, summary: str) -> bool:
        workflow.set_current_details(self._details())
        self._memo()
        try:
            await workflow.wait_condition(
                lambda: self._state.status == "accepted" or self._closed or self._crm_acceptance is not None,
                timeout=timeout,
                timeout_summary=summary,
            )
        except TimeoutError:
            return False
        return True

    def _memo(self) -> None:
        """The run's page in the Temporal UI: why the lead qualified and who holds it now."""
        if self._input is None or not self._memos:
            return
        holder = self._state.assignment
        workflow.upsert_memo(
            {
                "score": self._input.score,
                "band": self._input.score_band,
                "why": "; ".join(self._input.reasons),
                "status": self._state.status,
                "holder": None if holder is None else ("team queue" if holder.queue else holder.rep_id),
            }
        )

    def _details(self) -> str:
        state = self._state
        holder = state.assignment
        who = "nobody" if holder is None else ("the team queue" if holder.queue else f"rep `{holder.rep_id}`")
        return f"Hand-off **{state.status}**: {who}; {len(state.audit)} audited steps"

    async def _assign_and_tell(self, kind: str) -> None:
        assert self._input is not None
        state = self._state
        state.attempt += 1
        handoff_id = workflow.info().workflow_id
        assignment = await call(
            "handoff.assign",
            AssignInput(
                handoff_id=handoff_id, attempt=state.attempt, lead_id=self._input.lead_id, exclude=state.tried
            ),
            Assignment,
            f"Assign a rep (attempt {state.attempt})",
            policy=HANDOFF_STEP,
        )
        assert isinstance(assignment, Assignment)
        state.assignment = assignment
        now = workflow.now()
        if assignment.queue or assignment.rep_id is None:
            state.status = "queued"
            state.log(now, f"no rep available ({assignment.reason}): team queue {assignment.team_id}")
            await self._milestone("assigned", None, detail="team queue")
            await self._notify("queue", assignment.queue_channel, None)
            if state.notified_at is None:
                state.notified_at = workflow.now()
                metrics.handoff_notified((state.notified_at - self._input.mql_at).total_seconds())
            await self._milestone("notified", None, detail="team queue")
            return
        state.tried.append(assignment.rep_id)
        state.status = "waiting"
        state.assigned_at = state.assigned_at or now
        state.log(now, f"{kind}: {assignment.reason}", assignment.rep_id)
        workflow.upsert_search_attributes([OWNER.value_set(assignment.rep_id)])
        await self._milestone("assigned" if kind == "assigned" else "escalated", assignment.rep_id)
        await asyncio.gather(
            self._notify(
                "assigned" if kind == "assigned" else "escalated_to_you",
                assignment.slack_user_id or assignment.queue_channel,
                assignment.rep_id,
            ),
            self._crm_owner(assignment),
        )
        if state.notified_at is None:
            state.notified_at = workflow.now()
            metrics.handoff_notified((state.notified_at - self._input.mql_at).total_seconds())
        state.log(workflow.now(), "notified (Slack and email)", assignment.rep_id)
        await self._milestone("notified", assignment.rep_id)

    async def _escalate(self, step: str, policy: HandoffPolicy) -> None:
        state, now = self._state, workflow.now()
        current = state.assignment
        state.log(now, f"SLA passed: escalating ({step})", current.rep_id if current else None)
        metrics.handoff_escalated(step)
        if step == "next_rep":
            await self._release()
            await self._assign_and_tell("escalated")
        elif step == "manager":
            channel = (
                (current.manager_slack_id if current else None)
                or policy.manager_slack_id
                or (current.queue_channel if current else "")
            )
            await self._notify("manager_alert", channel, current.rep_id if current else None)
            await self._milestone("escalated", current.rep_id if current else None, detail="manager")
        else:
            await self._release()
            if current is not None:
                state.assignment = current.model_copy(update={"queue": True, "rep_id": None})
            state.status = "queued"
            await self._notify("queue", current.queue_channel if current else "", None)
            await self._milestone("escalated", None, detail="team queue")

    async def _release(self) -> None:
        await call(
            "handoff.release",
            AssignInput(
                handoff_id=workflow.info().workflow_id,
                attempt=self._state.attempt,
                lead_id=self._input.lead_id if self._input else "",
            ),
            None,
            "Release the rep's slot",
            policy=HANDOFF_STEP,
            audit=self._audit,
        )

    async def _enrich(self) -> None:
        """The CRM record with the context sales needs: profile, score and why, the events behind it."""
        assert self._input is not None
        handoff_id = workflow.info().workflow_id
        await asyncio.gather(
            call(
                "crm.sync_person",
                SyncPersonInput(
                    lead_id=self._input.lead_id,
                    idempotency_key=idempotency_key(handoff_id, "enrich", "person"),
                    lifecycle_stage="mql",
                    lead_score=self._input.score,
                    score_band=self._input.score_band,
                ),
                WriteResult,
                "CRM: MQL, score",
                policy=HANDOFF_STEP,
                audit=self._audit,
            ),
            call(
                "crm.add_sales_context",
                CrmNoteInput(
                    lead_id=self._input.lead_id,
                    idempotency_key=idempotency_key(handoff_id, "enrich", "context"),
                    body="MQL: " + "; ".join(self._input.reasons),
                    occurred_at=self._input.mql_at,
                ),
                WriteResult,
                "CRM: the lead's context for sales",
                policy=HANDOFF_STEP,
                audit=self._audit,
            ),
        )

    async def _crm_owner(self, assignment: Assignment) -> None:
        if not assignment.crm_owner_id or self._input is None:
            return
        await call(
            "crm.sync_person",
            SyncPersonInput(
                lead_id=self._input.lead_id,
                idempotency_key=idempotency_key(
                    workflow.info().workflow_id, "owner", str(self._state.attempt)
                ),
                owner_id=assignment.crm_owner_id,
            ),
            WriteResult,
            f"CRM owner: {assignment.rep_id}",
            policy=HANDOFF_STEP,
            audit=self._audit,
        )

    async def _notify(self, kind: str, channel: str, rep_id: str | None) -> None:
        assert self._input is not None
        state = self._state
        handoff_id = workflow.info().workflow_id
        waited = (workflow.now() - self._input.mql_at).total_seconds() / 60
        await call(
            "notify.rep",
            RepNotifyInput(
                idempotency_key=idempotency_key(handoff_id, "notify", kind, str(state.attempt)),
                lead_id=self._input.lead_id,
                handoff_id=handoff_id,
                kind=kind,
                rep_id=rep_id,
                slack_channel=channel,
                score=self._input.score,
                score_band=self._input.score_band,
                reasons=self._input.reasons,
                minutes_waiting=round(waited, 1),
            ),
            None,
            f"Notify: {kind}" + (f" {rep_id}" if rep_id else ""),
            policy=HANDOFF_STEP,
            audit=self._audit,
        )

    async def _milestone(self, kind: str, rep_id: str | None, *, at: object = None, detail: str = "") -> None:
        assert self._input is not None
        await call(
            "handoff.record",
            Milestone(
                handoff_id=workflow.info().workflow_id,
                lead_id=self._input.lead_id,
                kind=kind,
                at=at or workflow.now(),
                rep_id=rep_id,
                detail=detail,
            ),
            None,
            f"Record: {kind}",
            policy=HANDOFF_STEP,
            audit=self._audit,
        )

    def _audit(self, step: str, message: str) -> None:
        """A hand-off step that gave up is audited in its log, not fatal (assigning is: it raises)."""
        self._state.log(workflow.now(), f"{step} failed: {message}")
