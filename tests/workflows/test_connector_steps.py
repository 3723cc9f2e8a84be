"""The connector-steps workflow on the time-skipping server, with recording fake activities."""

import uuid
from datetime import UTC, datetime

from temporalio.client import Client

from domain.connectors import (
    ConnectorStepsInput,
    ConnectorStepsResult,
    CrmTaskInput,
    connector_steps_workflow_id,
)
from tests.helpers.fakes import CONNECTOR_STEPS as STEPS
from tests.helpers.fakes import RecordingConnectors
from tests.helpers.temporal import workflow_worker
from workers.registry import WORKFLOWS
from workflows.connector_steps import ConnectorStepsWorkflow


async def run(
    client: Client, fakes: RecordingConnectors, *, parallel: bool
) -> tuple[str, ConnectorStepsResult]:
    lead_id = str(uuid.uuid4())
    data = ConnectorStepsInput(lead_id=lead_id, request_id="r1", steps=STEPS, parallel=parallel)
    async with workflow_worker(client, workflows=WORKFLOWS, activities=fakes.all()) as queue:
        result = await client.execute_workflow(
            ConnectorStepsWorkflow.run,
            data,
            id=connector_steps_workflow_id(lead_id, "r1"),
            task_queue=queue,
        )
    return connector_steps_workflow_id(lead_id, "r1"), result


async def test_in_order_a_rejected_step_stops_the_rest_and_says_why(time_skipping_env):
    fakes = RecordingConnectors()
    workflow_id, result = await run(time_skipping_env.client, fakes, parallel=False)
    assert [o.status for o in result.outcomes] == ["done", "failed", "skipped"]
    assert "PlatformRejected" in (result.outcomes[1].error or "")
    assert fakes.keys == [
        ("crm.create_task", f"{workflow_id}:step:0:crm.create_task"),
        ("email.send", f"{workflow_id}:step:1:email.send"),
    ]


async def test_in_parallel_every_step_runs_and_retries_keep_their_key(time_skipping_env):
    fakes = RecordingConnectors()
    workflow_id, result = await run(time_skipping_env.client, fakes, parallel=True)
    assert [o.status for o in result.outcomes] == ["done", "failed", "done"]
    assert result.outcomes[2].result is not None and result.outcomes[2].result.provider == "slack"
    chat_keys = [key for name, key in fakes.keys if name == "notify.post_message"]
    # Two 503s, then success: three attempts, one key.
    assert chat_keys == [f"{workflow_id}:step:2:notify.post_message"] * 3


def test_steps_reach_the_activities_with_the_lead_filled_in():
    data = ConnectorStepsInput(lead_id="l-1", request_id="r", steps=STEPS[:1])
    assert data.steps[0].input["due_at"] == "2026-12-01T09:00:00Z"
    task = CrmTaskInput.model_validate({**data.steps[0].input, "lead_id": "l-1", "idempotency_key": "k"})
    assert task.due_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
