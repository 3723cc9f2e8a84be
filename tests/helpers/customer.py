"""A customer account's journey in workflow tests: started by its first purchase, told of events,
read back; its people's lead journeys are stand-ins (`fakes.StandInLead`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from domain.customers import CUSTOMER_EVENT_SIGNAL, CustomerEvent, CustomerInput, CustomerState
from domain.qualify import EnrollRequest
from tests.helpers.fakes import StandInLead
from workflows.customer import CustomerJourneyWorkflow

T = TypeVar("T")


async def past_continue_as_new(call: Callable[[], Awaitable[T]]) -> T:
    """`call` (a signal or query by workflow id), again if it met a run in the instant it continued
    as new: the time-skipping server resolves the id to the running run and then finds it closed,
    answering NOT_FOUND "Completed workflow" where the real server routes to the new run. Nothing
    was delivered, so sending again is the same as the real server's answer."""
    for _ in range(20):
        try:
            return await call()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND or "Completed workflow" not in err.message:
                raise
            await asyncio.sleep(0.05)
    return await call()


class Account:
    def __init__(self, env: WorkflowEnvironment, queue: str, handle: WorkflowHandle, account_id: str) -> None:
        self.env, self.queue, self.handle, self.account_id = env, queue, handle, account_id
        self._n = 0

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def send(self, lead_id: str, kind: str, name: str = "", **properties: Any) -> None:
        self._n += 1
        event = CustomerEvent(
            event_id=f"{self.account_id}-{self._n}",
            lead_id=lead_id,
            kind=kind,
            name=name,
            properties=properties,
            occurred_at=await self.now(),
        )
        handle = self.env.client.get_workflow_handle(self.handle.id)
        await past_continue_as_new(lambda: handle.signal(CUSTOMER_EVENT_SIGNAL, event))

    async def state(self) -> CustomerState:
        handle = self.env.client.get_workflow_handle(self.handle.id)
        raw = await past_continue_as_new(lambda: handle.query("state"))
        return CustomerState.model_validate(raw)

    async def enrollments(self, lead_id: str) -> list[str]:
        """The sequences the account asked `lead_id`'s (stand-in) journey to enroll in."""
        raw = await self.env.client.get_workflow_handle(f"lead-{lead_id}").query("requests")
        return [EnrollRequest.model_validate(r).sequence_id for r in raw]


async def start_account(
    env: WorkflowEnvironment, queue: str, buyer: str, history_limit: int = 5000
) -> Account:
    """A new account's journey, started by `buyer`'s purchase (10 seats, 12,000)."""
    account_id = f"acct-{uuid.uuid4().hex[:8]}"
    first = CustomerEvent(
        event_id=f"{account_id}-purchase",
        lead_id=buyer,
        kind="purchase",
        name="Checkout completed",
        properties={"amount": 12000, "seats": 10},
        occurred_at=await env.get_current_time(),
    )
    handle = await env.client.start_workflow(
        CustomerJourneyWorkflow.run,
        CustomerInput(account_id=account_id, history_limit=history_limit),
        id=f"customer-{account_id}",
        task_queue=queue,
        start_signal=CUSTOMER_EVENT_SIGNAL,
        start_signal_args=[first],
    )
    return Account(env, queue, handle, account_id)


async def stand_in(env: WorkflowEnvironment, queue: str, lead_id: str) -> None:
    """A stand-in for `lead_id`'s lead journey, recording what it is asked to enroll in."""
    await env.client.start_workflow(StandInLead.run, id=f"lead-{lead_id}", task_queue=queue)
