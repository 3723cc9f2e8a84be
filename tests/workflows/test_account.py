"""Account-based outbound on the time-skipping server: contacts' intent makes a target account,
every contact is enrolled, and one booked meeting stops the outreach for all of them. The leads'
journeys are stand-ins that record what the account's journey tells them."""

import uuid
from functools import partial

from temporalio.testing import WorkflowEnvironment

from domain.accounts import (
    ACCOUNT_ACTIVITY_SIGNAL,
    AccountJourneyInput,
    AccountState,
    ContactActivity,
    account_workflow_id,
)
from domain.qualify import EnrollRequest
from tests.helpers.fakes import StandInLead, abm_policy
from tests.helpers.temporal import workflow_worker
from tests.helpers.waiting import eventually
from workflows.account import AccountJourneyWorkflow


async def requests_of(env: WorkflowEnvironment, lead_id: str) -> list[EnrollRequest]:
    raw = await env.client.get_workflow_handle(f"lead-{lead_id}").query("requests")
    return [EnrollRequest.model_validate(r) for r in raw]


async def test_intent_targets_the_account_and_a_meeting_stops_everyone(time_skipping_env):
    env = time_skipping_env
    account = f"acct-{uuid.uuid4().hex[:6]}"
    leads = [str(uuid.uuid4()) for _ in range(3)]
    async with workflow_worker(
        env.client, workflows=[AccountJourneyWorkflow, StandInLead], activities=[abm_policy]
    ) as queue:
        for lead in leads:
            await env.client.start_workflow(StandInLead.run, id=f"lead-{lead}", task_queue=queue)
        now = await env.get_current_time()
        handle = await env.client.start_workflow(
            AccountJourneyWorkflow.run,
            AccountJourneyInput(account_id=account),
            id=account_workflow_id(account),
            task_queue=queue,
            start_signal=ACCOUNT_ACTIVITY_SIGNAL,
            start_signal_args=[ContactActivity(lead_id=leads[0], intent_points=40, fit=True, at=now)],
        )

        async def state() -> AccountState:
            return AccountState.model_validate(await handle.query("state"))

        await eventually(lambda: _contacts(state, 1))
        # One keen contact is not an account: still watching.
        assert (await state()).status == "watching"
        await handle.signal(
            ACCOUNT_ACTIVITY_SIGNAL, ContactActivity(lead_id=leads[1], intent_points=25, fit=False, at=now)
        )
        await eventually(lambda: _status(state, "targeted"))
        targeted = await state()
        assert "intent 65" in (targeted.reason or "") and "from 2 contacts" in (targeted.reason or "")
        # A contact seen later joins the play.
        await handle.signal(
            ACCOUNT_ACTIVITY_SIGNAL, ContactActivity(lead_id=leads[2], intent_points=5, at=now)
        )
        for lead in leads:
            await eventually(partial(_requested, env, lead, stop=False))
        await handle.signal(
            ACCOUNT_ACTIVITY_SIGNAL, ContactActivity(lead_id=leads[2], meeting_booked=True, at=now)
        )
        await eventually(lambda: _status(state, "engaged"))
        for lead in leads:
            await eventually(partial(_requested, env, lead, stop=True))
            asked = await requests_of(env, lead)
            assert [r.stop for r in asked] == [False, True] and asked[0].sequence_id == "abm_outreach"
        assert (await state()).engaged_by == leads[2]


async def _contacts(state, n: int) -> bool:
    return len((await state()).contacts) >= n


async def _status(state, status: str) -> bool:
    return (await state()).status == status


async def _requested(env, lead: str, *, stop: bool) -> bool:
    return any(r.stop is stop for r in await requests_of(env, lead))
