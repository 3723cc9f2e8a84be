"""A hand-off in workflow tests: started as the lead's workflow starts one for a hot MQL."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.handoff import HandoffInput, handoff_workflow_id
from workflows.handoff import HandoffWorkflow


async def start_handoff(
    env: WorkflowEnvironment,
    queue: str,
    *,
    score: int = 82,
    reasons: tuple[str, ...] = ("email engagement 74 >= 70",),
) -> WorkflowHandle:
    """A new lead's first hand-off, its MQL now (on the server's clock)."""
    lead_id = str(uuid.uuid4())
    return await env.client.start_workflow(
        HandoffWorkflow.run,
        HandoffInput(
            lead_id=lead_id,
            mql_at=await env.get_current_time(),
            score=score,
            score_band="hot",
            reasons=list(reasons),
        ),
        id=handoff_workflow_id(lead_id, 1),
        task_queue=queue,
    )
