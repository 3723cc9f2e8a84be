"""The shared time-skipping server's clock: a hold a terminated run leaves on it is given back, and
the client's own hold stays, so the next test's skip ends and `result()` can still lock and unlock;
a run no test worker serves is ended when a test worker goes."""

import asyncio
import uuid
from datetime import timedelta

from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import WorkflowExecutionStatus

from tests.helpers.temporal import free_the_clock, workflow_worker
from workers.registry import WORKFLOWS


async def test_a_hold_left_on_the_clock_is_given_back_and_the_clients_own_stays(time_skipping_env):
    env = time_skipping_env
    service = env.client.test_service
    # What a run terminated with a workflow task in flight leaves: one lock nobody will release.
    await service.lock_time_skipping(LockTimeSkippingRequest())
    await service.lock_time_skipping(LockTimeSkippingRequest())

    # Two at least: on a server earlier tests used, the skip may fire timers of their runs (a run
    # no worker will ever serve takes a hold when its timer fires), and those are given back too.
    assert await free_the_clock(env.client) >= 2

    before = await env.get_current_time()
    await asyncio.wait_for(env.sleep(timedelta(days=3)), timeout=10)
    assert await env.get_current_time() - before >= timedelta(days=3)
    assert await free_the_clock(env.client) == 0
    # The holds the server keeps of its own are still there: one unlock is balanced (the server
    # refuses an unlock it has no lock for, as `result()` would find), and the lock puts it back.
    await service.unlock_time_skipping(UnlockTimeSkippingRequest())
    await service.lock_time_skipping(LockTimeSkippingRequest())


async def test_a_run_no_worker_serves_is_ended_when_a_test_worker_goes(time_skipping_env):
    env = time_skipping_env
    # Started on a queue nobody polls: its first workflow task holds the clock from the start.
    orphan = await env.client.start_workflow(
        "NobodyRunsThis", id=f"orphan-{uuid.uuid4()}", task_queue=f"nobody-{uuid.uuid4()}"
    )
    async with workflow_worker(env.client, workflows=WORKFLOWS):
        pass

    assert (await orphan.describe()).status == WorkflowExecutionStatus.TERMINATED
    await asyncio.wait_for(env.sleep(timedelta(days=3)), timeout=10)
