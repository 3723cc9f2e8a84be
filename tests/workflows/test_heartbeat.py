"""The worker beats for a call that outlasts its heartbeat timeout (runtime/heartbeat.py), so a
heartbeat timeout ends only calls whose worker is gone, never a slow call still under way."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

from runtime.heartbeat import beat_interval, keep_alive_options
from tests.helpers.temporal import workflow_worker
from workflows.calls import CallPolicy, call

SLOW_CALL = CallPolicy(
    start_to_close=timedelta(seconds=30),
    retry=RetryPolicy(maximum_attempts=1),
    heartbeat=timedelta(seconds=1),
)


@workflow.defn(name="SlowCall", sandboxed=False)
class SlowCall:
    @workflow.run
    async def run(self, seconds: float) -> int:
        return await call("test.slow_call", seconds, int, "a slow platform", policy=SLOW_CALL)


@activity.defn(name="test.slow_call")
async def slow_call(seconds: float) -> int:
    """Takes `seconds` of real time, as a platform holding its answer does; returns its attempt."""
    await asyncio.sleep(seconds)
    return activity.info().attempt


async def _run(client, options: dict[str, Any]) -> int:
    async with workflow_worker(client, workflows=[SlowCall], activities=[slow_call], **options) as queue:
        return await client.execute_workflow(SlowCall.run, 3.0, id=f"slow-{uuid.uuid4()}", task_queue=queue)


async def test_a_call_three_times_its_heartbeat_timeout_ends_on_its_first_attempt(time_skipping_env):
    # The options every worker that runs real calls takes (the production worker's among them).
    assert await _run(time_skipping_env.client, keep_alive_options()) == 1


async def test_without_the_beats_the_same_call_is_ended_by_its_heartbeat_timeout(time_skipping_env):
    # What the interceptor is for: the timeout every call now carries would cut it.
    with pytest.raises(WorkflowFailureError) as failed:
        await _run(time_skipping_env.client, {})
    cause = failed.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, TimeoutError)
    assert cause.cause.type == TimeoutType.HEARTBEAT


def test_two_beats_may_be_lost_before_the_server_gives_up():
    assert beat_interval(10.0) == pytest.approx(10 / 3)
    assert beat_interval(0.01) == 0.05
