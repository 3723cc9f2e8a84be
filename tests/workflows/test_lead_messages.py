"""Messages to a lead's run are never lost: an `enroll` and a `handoff_outcome` that arrive while
a person's stage change is still being carried out, with the run about to continue as new, are
done (by this run or the next), on the time-skipping server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateStage

from domain.connectors import SyncPersonInput, WriteResult
from domain.handoff import HandoffOutcome
from domain.lead import LeadState, LeadWorkflowInput, LifecycleStage
from domain.qualify import EnrollRequest, StageChangeRequest
from domain.sequences import load_sequences
from runtime.settings import PROJECT_ROOT
from tests.helpers.fakes import RecordingPlatforms
from tests.helpers.lead import START, state_of
from tests.helpers.temporal import workflow_worker
from tests.helpers.waiting import eventually
from workers.registry import WORKFLOWS
from workflows.lead import LeadWorkflow

WELCOME = load_sequences(PROJECT_ROOT / "config" / "sequences")["welcome_nurture"]


class HeldCrm:
    """The CRM push, held until the test lets it go: the stage change stays in flight."""

    def __init__(self, platforms: RecordingPlatforms) -> None:
        self.platforms = platforms
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn(name="crm.sync_person")
    async def sync_person(self, data: SyncPersonInput) -> WriteResult:
        self.platforms.record(data)
        self.entered.set()
        await self.release.wait()
        return WriteResult(provider="hubspot", object_type="contact", id="c-1")


def activities(platforms: RecordingPlatforms, held: HeldCrm) -> list[Any]:
    others = [a for a in platforms.all() if a.__name__ != "crm_sync_person"]
    return [*others, held.sync_person]


async def test_enroll_and_handoff_outcome_during_a_stage_change_survive_continue_as_new(time_skipping_env):
    client = time_skipping_env.client
    platforms = RecordingPlatforms()
    platforms.sequences = [WELCOME]
    held = HeldCrm(platforms)
    lead_id = str(uuid.uuid4())
    handoff_id = f"handoff-{lead_id}-1"
    # A lead with its records made and a hand-off in flight.
    state = LeadState(lead_id=lead_id, email_hash="e" * 64, crm_contact_id="c-1", email_profile_id="p-1")
    state.move_to(LifecycleStage.LEAD, "form (demo)", START)
    state.active_handoff, state.handoffs = handoff_id, 1
    async with workflow_worker(client, workflows=WORKFLOWS, activities=activities(platforms, held)) as queue:
        handle = await client.start_workflow(
            LeadWorkflow.run,
            # Past 10 events the run continues as new at its next chance: the stage change below is
            # in flight when it wants to.
            LeadWorkflowInput(lead_id=lead_id, email_hash="e" * 64, state=state, history_limit=10),
            id=f"lead-{lead_id}",
            task_queue=queue,
        )
        first_run = (await handle.describe()).run_id
        update = await handle.start_update(
            LeadWorkflow.change_stage,
            StageChangeRequest(stage=LifecycleStage.MQL, reason="marked by hand", by="ops"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        await asyncio.wait_for(held.entered.wait(), timeout=20)
        # The stage change is pushing to the CRM; meanwhile a person enrolls the lead and the rep
        # accepts the hand-off.
        await handle.signal(LeadWorkflow.enroll, EnrollRequest(sequence_id=WELCOME.id))
        await handle.signal(
            LeadWorkflow.handoff_outcome,
            HandoffOutcome(handoff_id=handoff_id, rep_id="rep-7", accepted_at=START + timedelta(minutes=3)),
        )
        held.release.set()
        result = await update.result()
        assert result.changed and result.stage is LifecycleStage.MQL

        async def continued_as_new() -> None:
            first = await client.get_workflow_handle(handle.id, run_id=first_run).describe()
            assert first.status is WorkflowExecutionStatus.CONTINUED_AS_NEW

        await eventually(continued_as_new, what="the run continued as new")

        async def both_messages_done() -> LeadState:
            latest = await state_of(client.get_workflow_handle(handle.id))
            assert latest.stage is LifecycleStage.SQL, "the accepted hand-off made an SQL"
            assert latest.owner == "rep-7" and latest.active_handoff is None
            assert [e.sequence_id for e in latest.enrollments] == [WELCOME.id], "the enroll request was done"
            return latest

        latest = await eventually(both_messages_done, what="the enroll and the hand-off outcome were done")
        assert latest.pending.triggers == [] and latest.pending.outcomes == []
        pushes = [d.idempotency_key for d in platforms.of("crm.sync_person")]
        assert len(pushes) == len(set(pushes)), "settling never ran twice at once (no push was made twice)"
        manual = [q for q in platforms.triggers if q.kind == "manual"]
        assert [q.sequence_id for q in manual if q.sequence_id == WELCOME.id] == [WELCOME.id], "enrolled once"
