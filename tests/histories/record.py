"""Records the histories the replay test checks every change against.

    .venv/bin/python -m tests.histories.record

Run it when a journey gains a behaviour worth pinning. It writes only the files that do not exist
yet (`--force` rewrites all): the old ones stand for runs already in flight in production, which
the new code must still replay.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.accounts import (
    ACCOUNT_ACTIVITY_SIGNAL,
    AccountJourneyInput,
    AccountState,
    ContactActivity,
    account_workflow_id,
)
from domain.connectors import ConnectorStepsInput, connector_steps_workflow_id
from domain.customers import onboarding_workflow_id
from domain.handoff import ACCEPT_UPDATE, AcceptRequest, AcceptResult, HandoffInput, handoff_workflow_id
from domain.lead import LeadState, LeadWorkflowInput, LifecycleStage
from domain.qualify import CHANGE_STAGE_UPDATE, StageChangeRequest
from domain.reports import AttributionRunInput, AttributionRunResult, ReportsInput
from runtime.temporal import register_search_attributes
from tests.conftest import _test_server
from tests.workflows.test_account import policy as abm_policy
from tests.workflows.test_connector_steps import STEPS, RecordingConnectors
from tests.workflows.test_customer import Platforms as CustomerPlatforms
from tests.workflows.test_customer import StandInLead, stand_in, start_account
from tests.workflows.test_handoff import FakeSales
from tests.workflows.test_lead_workflow import START, RecordingPlatforms, form, page, signal_with_start
from tests.workflows.test_nurture import context
from tests.workflows.test_qualify import WELCOME, engaged_lead_events, form_at
from workers.registry import WORKFLOWS
from workflows.account import AccountJourneyWorkflow
from workflows.connector_steps import ConnectorStepsWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.lead import LeadWorkflow
from workflows.nurture import NurtureWorkflow
from workflows.reports import NightlyReportsWorkflow

HERE = Path(__file__).resolve().parent


async def settle(handle: WorkflowHandle, submissions: int) -> None:
    for _ in range(200):
        state = await handle.query(LeadWorkflow.state)
        if state.activity.forms_submitted >= submissions and (state.crm_contact_id or state.failures):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(handle.id)


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_test_server()
    )
    await register_search_attributes(env.client)
    platforms = RecordingPlatforms()
    connectors = RecordingConnectors()
    queue = "record"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=[*platforms.all(), *connectors.all()[:1], connectors.post_message],
    ):
        recorded: dict[str, WorkflowHandle] = {}

        lead = str(uuid.uuid4())
        handle = await signal_with_start(env.client, lead, [page("p1", START), page("p2", START)], queue)
        await signal_with_start(env.client, lead, form("s1"), queue)
        await settle(handle, 1)
        await signal_with_start(env.client, lead, form("s1"), queue)
        await env.sleep(timedelta(days=12))
        await signal_with_start(env.client, lead, form("s2", campaign="retarget"), queue)
        await settle(handle, 2)
        recorded["lead_two_forms_twelve_days_apart"] = handle

        platforms.crm_rejects = True
        handle = await signal_with_start(env.client, str(uuid.uuid4()), form("s1"), queue)
        await settle(handle, 1)
        recorded["lead_crm_rejects_the_write"] = handle
        platforms.crm_rejects = False

        lead = str(uuid.uuid4())
        earlier = LeadState(lead_id=lead, email_hash="h" * 64)
        earlier.activity.forms_submitted = 3
        earlier.move_to(LifecycleStage.LEAD, "earlier run", datetime(2026, 1, 1, tzinfo=UTC))
        handle = await env.client.start_workflow(
            LeadWorkflow.run,
            LeadWorkflowInput(lead_id=lead, email_hash="h" * 64, state=earlier, pending=[form("s9")]),
            id=f"lead-{lead}",
            task_queue=queue,
        )
        await settle(handle, 4)
        recorded["lead_resumed_from_carried_state"] = handle

        for parallel in (False, True):
            lead = str(uuid.uuid4())
            handle = await env.client.start_workflow(
                ConnectorStepsWorkflow.run,
                ConnectorStepsInput(lead_id=lead, request_id="r1", steps=STEPS, parallel=parallel),
                id=connector_steps_workflow_id(lead, "r1"),
                task_queue=queue,
            )
            await handle.result()
            recorded[f"connector_steps_{'parallel' if parallel else 'in_order'}"] = handle

        platforms.sequences = [WELCOME]
        lead = str(uuid.uuid4())
        now = await env.get_current_time()
        handle = await signal_with_start(env.client, lead, form_at(now - timedelta(hours=6)), queue)
        await signal_with_start(env.client, lead, engaged_lead_events(now), queue)
        for _ in range(200):
            state = await handle.query(LeadWorkflow.state)
            if state.stage is LifecycleStage.MQL and state.enrollments:
                break
            await asyncio.sleep(0.05)
        await handle.execute_update(
            CHANGE_STAGE_UPDATE,
            StageChangeRequest(stage=LifecycleStage.RECYCLED, reason="no budget", by="sdr"),
        )
        recorded["lead_qualifies_then_is_recycled"] = handle
        nurture = env.client.get_workflow_handle(state.enrollments[0].workflow_id)
        await nurture.signal(NurtureWorkflow.lead_context, context(stage="customer"))
        await nurture.result()
        recorded["nurture_welcome_paused_resumed_exited"] = nurture
        platforms.sequences = []

        # A person moves an anonymous visitor's lead by the change_stage update: the update handler
        # is the first to change the stage (a patch first met there did not replay in place).
        lead = str(uuid.uuid4())
        handle = await signal_with_start(env.client, lead, page("p9", START), queue)
        await handle.execute_update(
            CHANGE_STAGE_UPDATE,
            StageChangeRequest(stage=LifecycleStage.LEAD, reason="known to sales", by="ops"),
        )
        await handle.execute_update(
            CHANGE_STAGE_UPDATE,
            StageChangeRequest(stage=LifecycleStage.DISQUALIFIED, reason="a competitor", by="ops"),
        )
        recorded["lead_moved_by_updates"] = handle

        # An account targeted by two contacts' intent, its outreach stopped by a booked meeting.
    async with Worker(
        env.client,
        task_queue="record-accounts",
        workflows=[AccountJourneyWorkflow, StandInLead],
        activities=[abm_policy],
    ):
        leads = [str(uuid.uuid4()) for _ in range(2)]
        for lead in leads:
            await env.client.start_workflow(StandInLead.run, id=f"lead-{lead}", task_queue="record-accounts")
        now = await env.get_current_time()
        account_id = f"acct-{uuid.uuid4().hex[:6]}"
        handle = await env.client.start_workflow(
            AccountJourneyWorkflow.run,
            AccountJourneyInput(account_id=account_id),
            id=account_workflow_id(account_id),
            task_queue="record-accounts",
            start_signal=ACCOUNT_ACTIVITY_SIGNAL,
            start_signal_args=[ContactActivity(lead_id=leads[0], intent_points=40, fit=True, at=now)],
        )
        await handle.signal(
            ACCOUNT_ACTIVITY_SIGNAL, ContactActivity(lead_id=leads[1], intent_points=25, fit=False, at=now)
        )
        await handle.signal(
            ACCOUNT_ACTIVITY_SIGNAL, ContactActivity(lead_id=leads[1], meeting_booked=True, at=now)
        )
        for _ in range(200):
            if AccountState.model_validate(await handle.query("state")).status == "engaged":
                break
            await asyncio.sleep(0.05)
        recorded["account_targeted_then_engaged"] = handle

    await save(recorded)
    await env.shutdown()


async def save(recorded: dict[str, WorkflowHandle]) -> None:
    force = "--force" in sys.argv
    for name, handle in recorded.items():
        if (HERE / f"{name}.json").exists() and not force:
            print(f"kept {name}.json")
            continue
        history = await handle.fetch_history()
        (HERE / f"{name}.json").write_text(history.to_json())
        print(f"wrote {name}.json ({len(history.events)} events)")


async def record_sales_and_customers() -> None:
    """On a server of their own: skipping days past runs whose workers are gone stalls its clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_test_server()
    )
    await register_search_attributes(env.client)
    recorded: dict[str, WorkflowHandle] = {}
    # A hand-off that escalates past the SLA to the next rep, who accepts.
    sales = FakeSales(["ana", "ben"])
    async with Worker(env.client, task_queue="record-sales", workflows=WORKFLOWS, activities=sales.all()):
        lead = str(uuid.uuid4())
        handle = await env.client.start_workflow(
            HandoffWorkflow.run,
            HandoffInput(
                lead_id=lead,
                mql_at=await env.get_current_time(),
                score=82,
                score_band="hot",
                reasons=["email engagement 74 >= 70"],
            ),
            id=handoff_workflow_id(lead, 1),
            task_queue="record-sales",
        )
        await env.sleep(timedelta(minutes=6))
        await handle.execute_update(ACCEPT_UPDATE, AcceptRequest(rep_id="ben"), result_type=AcceptResult)
        await handle.result()
        recorded["handoff_escalated_then_accepted"] = handle

        # A hand-off the rep accepts in time, by a click the API stamped before the worker took it.
        lead = str(uuid.uuid4())
        handle = await env.client.start_workflow(
            HandoffWorkflow.run,
            HandoffInput(lead_id=lead, mql_at=await env.get_current_time(), score=75, score_band="hot"),
            id=handoff_workflow_id(lead, 1),
            task_queue="record-sales",
        )
        await env.sleep(timedelta(seconds=90))
        clicked_at = await env.get_current_time() - timedelta(seconds=20)
        await handle.execute_update(
            ACCEPT_UPDATE, AcceptRequest(rep_id="ana", clicked_at=clicked_at), result_type=AcceptResult
        )
        await handle.result()
        recorded["handoff_accepted_by_its_stamped_click"] = handle

    # A customer's first month: welcome, onboarding with a missed milestone, a promoter's answer.
    customers = CustomerPlatforms()
    async with Worker(
        env.client,
        task_queue="record-customers",
        workflows=[*WORKFLOWS, StandInLead],
        activities=customers.activities(),
    ):
        buyer = str(uuid.uuid4())
        await stand_in(env, "record-customers", buyer)
        account = await start_account(env, "record-customers", buyer)
        await account.send(buyer, "usage", "Logged In")
        await env.sleep(timedelta(days=16))
        await account.send(buyer, "usage", "User Invited")
        await account.send(buyer, "survey_response", "Survey Responded", score=10, survey="nps-1")
        await env.sleep(timedelta(days=20))
        onboarding = env.client.get_workflow_handle(onboarding_workflow_id(account.account_id))
        await onboarding.result()
        recorded["onboarding_one_milestone_missed"] = onboarding
        recorded["customer_first_month"] = account.handle

    # The nightly batch over a two-day range.
    @activity.defn(name="reports.attribution")
    async def attribution(data: AttributionRunInput) -> AttributionRunResult:
        return AttributionRunResult(model=data.model, journeys=3, revenue=1500.0, channels=4)

    @activity.defn(name="reports.integration_rollup")
    async def rollup(day: date) -> int:
        return 5

    async with Worker(
        env.client,
        task_queue="record-reports",
        workflows=[NightlyReportsWorkflow],
        activities=[attribution, rollup],
    ):
        reports = await env.client.start_workflow(
            NightlyReportsWorkflow.run,
            ReportsInput(start=date(2026, 11, 1), end=date(2026, 11, 3)),
            id="reports-2026-11-01-2026-11-03",
            task_queue="record-reports",
        )
        await reports.result()
        recorded["reports_two_days"] = reports

    await save(recorded)
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    asyncio.run(record_sales_and_customers())
