"""The connector-steps workflow on the time-skipping server, with recording fake activities."""

import uuid
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from domain.connectors import (
    ChatNotifyInput,
    ConnectorStepsInput,
    ConnectorStepsResult,
    CrmTaskInput,
    SendEmailInput,
    WriteResult,
    connector_steps_workflow_id,
)
from workers.registry import WORKFLOWS
from workflows.connector_steps import ConnectorStepsWorkflow


class RecordingConnectors:
    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.chat_failures_left = 2
        self.email_rejects = True

    @activity.defn(name="crm.create_task")
    async def create_task(self, data: CrmTaskInput) -> WriteResult:
        self.keys.append(("crm.create_task", data.idempotency_key))
        return WriteResult(provider="hubspot", object_type="task", id="t-1")

    @activity.defn(name="notify.post_message")
    async def post_message(self, data: ChatNotifyInput) -> WriteResult:
        self.keys.append(("notify.post_message", data.idempotency_key))
        if self.chat_failures_left:
            self.chat_failures_left -= 1
            raise ApplicationError("slack: 503", type="PlatformUnavailable")
        return WriteResult(provider="slack", object_type="message", id="1712345678.000100")

    @activity.defn(name="email.send")
    async def send(self, data: SendEmailInput) -> WriteResult:
        self.keys.append(("email.send", data.idempotency_key))
        if self.email_rejects:
            raise ApplicationError("klaviyo: 400 bad template", type="PlatformRejected", non_retryable=True)
        return WriteResult(provider="klaviyo", object_type="event", id=data.idempotency_key)

    def all(self) -> list:
        return [self.create_task, self.post_message, self.send]


STEPS = [
    {"activity": "crm.create_task", "input": {"subject": "Call {name}", "due_at": "2026-12-01T09:00:00Z"}},
    {"activity": "email.send", "input": {"template_id": "nurture-1"}},
    {"activity": "notify.post_message", "input": {"channel": "C1", "text": "{name} is an MQL"}},
]


async def run(
    client: Client, fakes: RecordingConnectors, *, parallel: bool
) -> tuple[str, ConnectorStepsResult]:
    lead_id = str(uuid.uuid4())
    data = ConnectorStepsInput(lead_id=lead_id, request_id="r1", steps=STEPS, parallel=parallel)
    queue = f"steps-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=fakes.all()):
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
