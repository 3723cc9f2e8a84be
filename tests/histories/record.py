"""Records the histories the replay test checks every change against.

    .venv/bin/python -m tests.histories.record                 # the scenarios without a history yet
    .venv/bin/python -m tests.histories.record SCENARIO ...    # these, anew
    .venv/bin/python -m tests.histories.record --list

A saved history stands for runs already in flight in production, which every later change must still
replay, so none is ever rewritten: a scenario is written to `<scenario>_<date>.json` (today, UTC,
unless `--date`), beside the histories it had, and if that file exists the recorder stops with an
error before it records anything. Run it when a journey gains a behaviour worth pinning, or (from a
checkout of the commit before a patch, `--into` this folder) to record the path a patch left behind.

Every scenario runs on one time-skipping server, each on a worker of its own that ends its runs when
it is done (`tests.helpers.temporal.workflow_worker`), so one scenario's days skipped never stall on
another's runs. A history is fetched before that: it ends where the scenario left the run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from domain.accounts import (
    ACCOUNT_ACTIVITY_SIGNAL,
    AccountJourneyInput,
    AccountState,
    ContactActivity,
    account_workflow_id,
)
from domain.connectors import ConnectorStepsInput, connector_steps_workflow_id
from domain.customers import onboarding_workflow_id
from domain.events import EventType
from domain.handoff import ACCEPT_UPDATE, AcceptRequest, AcceptResult, HandoffOutcome
from domain.lead import EventsRecorded, LeadState, LeadWorkflowInput, LifecycleStage
from domain.qualify import CHANGE_STAGE_UPDATE, StageChangeRequest
from domain.reports import AttributionRunInput, AttributionRunResult, ReportsInput
from tests.helpers.customer import stand_in, start_account
from tests.helpers.fakes import (
    CONNECTOR_STEPS,
    CustomerPlatforms,
    FakeSales,
    RecordingConnectors,
    RecordingPlatforms,
    StandInLead,
    abm_policy,
)
from tests.helpers.handoff import start_handoff
from tests.helpers.lead import (
    START,
    WELCOME,
    engaged_lead_events,
    form,
    form_at,
    lead_context,
    page,
    signal_with_start,
    state_of,
)
from tests.helpers.lead import (
    event as lead_event,
)
from tests.helpers.temporal import time_skipping_server, workflow_worker
from tests.helpers.waiting import eventually
from tests.histories.scenarios import discover
from workers.registry import WORKFLOWS
from workflows.account import AccountJourneyWorkflow
from workflows.connector_steps import ConnectorStepsWorkflow
from workflows.lead import LeadWorkflow
from workflows.nurture import NurtureWorkflow
from workflows.reports import NightlyReportsWorkflow

HERE = Path(__file__).resolve().parent

# Where a scenario keeps what it recorded: history name -> the history, fetched when kept.
Kept = dict[str, WorkflowHistory]


class Recordable(Protocol):
    """What the recorder runs: the histories it keeps, by name, and a run that keeps them. The
    journeys' scenarios (`tests/histories/scenarios/`) have this shape too."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def run(self) -> Callable[[WorkflowEnvironment, Kept], Awaitable[None]]: ...


@dataclass(frozen=True)
class Scenario:
    # The histories it records, by name (a scenario may leave more than one run worth keeping).
    names: tuple[str, ...]
    run: Callable[[WorkflowEnvironment, Kept], Awaitable[None]]


async def keep(kept: Kept, name: str, handle: WorkflowHandle) -> None:
    kept[name] = await handle.fetch_history()


async def settle(handle: WorkflowHandle, submissions: int) -> None:
    """Until the lead has folded `submissions` forms and heard back from the CRM."""

    async def settled() -> bool:
        state: LeadState = await state_of(handle)
        return state.activity.forms_submitted >= submissions and bool(state.crm_contact_id or state.failures)

    await eventually(settled, timeout=10, what=f"{handle.id} to settle")


# --- the lead -------------------------------------------------------------------------------------


async def lead_two_forms_twelve_days_apart(env: WorkflowEnvironment, kept: Kept) -> None:
    platforms = RecordingPlatforms()
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=platforms.all()) as queue:
        lead = str(uuid.uuid4())
        handle = await signal_with_start(env.client, lead, [page("p1", START), page("p2", START)], queue)
        await signal_with_start(env.client, lead, form("s1"), queue)
        await settle(handle, 1)
        await signal_with_start(env.client, lead, form("s1"), queue)
        await env.sleep(timedelta(days=12))
        await signal_with_start(env.client, lead, form("s2", campaign="retarget"), queue)
        await settle(handle, 2)
        await keep(kept, "lead_two_forms_twelve_days_apart", handle)


async def lead_crm_rejects_the_write(env: WorkflowEnvironment, kept: Kept) -> None:
    platforms = RecordingPlatforms()
    platforms.crm_rejects = True
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=platforms.all()) as queue:
        handle = await signal_with_start(env.client, str(uuid.uuid4()), form("s1"), queue)
        await settle(handle, 1)
        await keep(kept, "lead_crm_rejects_the_write", handle)


async def lead_resumed_from_carried_state(env: WorkflowEnvironment, kept: Kept) -> None:
    platforms = RecordingPlatforms()
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=platforms.all()) as queue:
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
        await keep(kept, "lead_resumed_from_carried_state", handle)


async def lead_qualifies_then_is_recycled(env: WorkflowEnvironment, kept: Kept) -> None:
    """Its welcome nurture too: paused at MQL, resumed by the recycle, exited at customer."""
    platforms = RecordingPlatforms()
    platforms.sequences = [WELCOME]
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=platforms.all()) as queue:
        lead = str(uuid.uuid4())
        now = await env.get_current_time()
        handle = await signal_with_start(env.client, lead, form_at(now - timedelta(hours=6)), queue)
        await signal_with_start(env.client, lead, engaged_lead_events(now), queue)

        async def qualified() -> LeadState:
            state = await state_of(handle)
            assert state.stage is LifecycleStage.MQL and state.enrollments, state.stage
            return state

        state = await eventually(qualified, timeout=10)
        await handle.execute_update(
            CHANGE_STAGE_UPDATE,
            StageChangeRequest(stage=LifecycleStage.RECYCLED, reason="no budget", by="sdr"),
        )
        await keep(kept, "lead_qualifies_then_is_recycled", handle)
        nurture = env.client.get_workflow_handle(state.enrollments[0].workflow_id)
        await nurture.signal(NurtureWorkflow.lead_context, lead_context(stage="customer"))
        await nurture.result()
        await keep(kept, "nurture_welcome_paused_resumed_exited", nurture)


async def lead_accepted_then_deal_lost(env: WorkflowEnvironment, kept: Kept) -> None:
    """An SQL whose record a manager gives to another rep in the CRM, then whose deal is lost
    there: recycled (deal-lost-recycle-v1), its welcome nurture resumed."""
    platforms = RecordingPlatforms()
    platforms.sequences = [WELCOME]
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=platforms.all()) as queue:
        lead = str(uuid.uuid4())
        now = await env.get_current_time()
        handle = await signal_with_start(env.client, lead, [form_at(now), *engaged_lead_events(now)], queue)

        async def handed_off() -> str:
            state = await state_of(handle)
            assert state.active_handoff is not None
            return state.active_handoff

        handoff_id = await eventually(handed_off, timeout=10)
        await handle.signal(
            LeadWorkflow.handoff_outcome,
            HandoffOutcome(handoff_id=handoff_id, rep_id="ana", accepted_at=now, crm_owner_id="owner-ana"),
        )
        await eventually(lambda: stage_is(handle, LifecycleStage.SQL), timeout=10)
        reassigned = lead_event(EventType.CRM_OWNER_CHANGED, now, 1, properties={"crm_owner_id": "owner-ben"})
        lost = lead_event(
            EventType.DEAL_STAGE_CHANGED, now, 2, name="closedlost", properties={"stage": "closedlost"}
        )
        await handle.signal(LeadWorkflow.events, EventsRecorded(events=[reassigned, lost]))
        await eventually(lambda: stage_is(handle, LifecycleStage.RECYCLED), timeout=10)
        await keep(kept, "lead_accepted_then_deal_lost", handle)


async def stage_is(handle: WorkflowHandle, stage: LifecycleStage) -> bool:
    return (await state_of(handle)).stage is stage


async def lead_moved_by_updates(env: WorkflowEnvironment, kept: Kept) -> None:
    """A person moves an anonymous visitor's lead by the change_stage update: the update handler is
    the first to change the stage (a patch first met there did not replay in place)."""
    platforms = RecordingPlatforms()
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=platforms.all()) as queue:
        handle = await signal_with_start(env.client, str(uuid.uuid4()), page("p9", START), queue)
        await handle.execute_update(
            CHANGE_STAGE_UPDATE,
            StageChangeRequest(stage=LifecycleStage.LEAD, reason="known to sales", by="ops"),
        )
        await handle.execute_update(
            CHANGE_STAGE_UPDATE,
            StageChangeRequest(stage=LifecycleStage.DISQUALIFIED, reason="a competitor", by="ops"),
        )
        await keep(kept, "lead_moved_by_updates", handle)


# --- connector steps, accounts, hand-offs, customers, reports --------------------------------------


async def connector_steps(env: WorkflowEnvironment, kept: Kept) -> None:
    """The chat step fails twice before it answers; every step succeeds in the end."""
    connectors = RecordingConnectors()
    connectors.email_rejects = False
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=connectors.all()) as queue:
        for parallel in (False, True):
            lead = str(uuid.uuid4())
            handle = await env.client.start_workflow(
                ConnectorStepsWorkflow.run,
                ConnectorStepsInput(lead_id=lead, request_id="r1", steps=CONNECTOR_STEPS, parallel=parallel),
                id=connector_steps_workflow_id(lead, "r1"),
                task_queue=queue,
            )
            await handle.result()
            await keep(kept, f"connector_steps_{'parallel' if parallel else 'in_order'}", handle)


async def account_targeted_then_engaged(env: WorkflowEnvironment, kept: Kept) -> None:
    """Targeted by two contacts' intent, its outreach stopped by a booked meeting."""
    async with workflow_worker(
        env.client, workflows=[AccountJourneyWorkflow, StandInLead], activities=[abm_policy]
    ) as queue:
        leads = [str(uuid.uuid4()) for _ in range(2)]
        for lead in leads:
            await env.client.start_workflow(StandInLead.run, id=f"lead-{lead}", task_queue=queue)
        now = await env.get_current_time()
        account_id = f"acct-{uuid.uuid4().hex[:6]}"
        handle = await env.client.start_workflow(
            AccountJourneyWorkflow.run,
            AccountJourneyInput(account_id=account_id),
            id=account_workflow_id(account_id),
            task_queue=queue,
            start_signal=ACCOUNT_ACTIVITY_SIGNAL,
            start_signal_args=[ContactActivity(lead_id=leads[0], intent_points=40, fit=True, at=now)],
        )
        await handle.signal(
            ACCOUNT_ACTIVITY_SIGNAL, ContactActivity(lead_id=leads[1], intent_points=25, fit=False, at=now)
        )
        await handle.signal(
            ACCOUNT_ACTIVITY_SIGNAL, ContactActivity(lead_id=leads[1], meeting_booked=True, at=now)
        )

        async def engaged() -> bool:
            return AccountState.model_validate(await handle.query("state")).status == "engaged"

        await eventually(engaged, timeout=10)
        await keep(kept, "account_targeted_then_engaged", handle)


async def handoffs(env: WorkflowEnvironment, kept: Kept) -> None:
    """One escalates past the SLA to the next rep, who accepts; one the rep accepts in time, by a
    click the API stamped before the worker took it."""
    sales = FakeSales(["ana", "ben"])
    async with workflow_worker(env.client, workflows=WORKFLOWS, activities=sales.all()) as queue:
        handle = await start_handoff(env, queue)
        await env.sleep(timedelta(minutes=6))
        await handle.execute_update(ACCEPT_UPDATE, AcceptRequest(rep_id="ben"), result_type=AcceptResult)
        await handle.result()
        await keep(kept, "handoff_escalated_then_accepted", handle)

        handle = await start_handoff(env, queue, score=75, reasons=())
        await env.sleep(timedelta(seconds=90))
        clicked_at = await env.get_current_time() - timedelta(seconds=20)
        await handle.execute_update(
            ACCEPT_UPDATE, AcceptRequest(rep_id="ana", clicked_at=clicked_at), result_type=AcceptResult
        )
        await handle.result()
        await keep(kept, "handoff_accepted_by_its_stamped_click", handle)


async def customer_first_month(env: WorkflowEnvironment, kept: Kept) -> None:
    """Welcome, onboarding with a missed milestone, a promoter's answer."""
    customers = CustomerPlatforms()
    async with workflow_worker(
        env.client, workflows=[*WORKFLOWS, StandInLead], activities=customers.activities()
    ) as queue:
        buyer = str(uuid.uuid4())
        await stand_in(env, queue, buyer)
        account = await start_account(env, queue, buyer)
        await account.send(buyer, "usage", "Logged In")
        await env.sleep(timedelta(days=16))
        await account.send(buyer, "usage", "User Invited")
        await account.send(buyer, "survey_response", "Survey Responded", score=10, survey="nps-1")
        await env.sleep(timedelta(days=20))
        onboarding = env.client.get_workflow_handle(onboarding_workflow_id(account.account_id))
        await onboarding.result()
        await keep(kept, "onboarding_one_milestone_missed", onboarding)
        await keep(kept, "customer_first_month", account.handle)


@activity.defn(name="reports.attribution")
async def attribution(data: AttributionRunInput) -> AttributionRunResult:
    return AttributionRunResult(model=data.model, journeys=3, revenue=1500.0, channels=4)


@activity.defn(name="reports.integration_rollup")
async def rollup(day: date) -> int:
    return 5


async def reports_two_days(env: WorkflowEnvironment, kept: Kept) -> None:
    """The nightly batch over a two-day range."""
    async with workflow_worker(
        env.client, workflows=[NightlyReportsWorkflow], activities=[attribution, rollup]
    ) as queue:
        reports = await env.client.start_workflow(
            NightlyReportsWorkflow.run,
            ReportsInput(start=date(2026, 11, 1), end=date(2026, 11, 3)),
            id="reports-2026-11-01-2026-11-03",
            task_queue=queue,
        )
        await reports.result()
        await keep(kept, "reports_two_days", reports)


SCENARIOS: list[Recordable] = [
    Scenario(("lead_two_forms_twelve_days_apart",), lead_two_forms_twelve_days_apart),
    Scenario(("lead_crm_rejects_the_write",), lead_crm_rejects_the_write),
    Scenario(("lead_resumed_from_carried_state",), lead_resumed_from_carried_state),
    Scenario(("connector_steps_in_order", "connector_steps_parallel"), connector_steps),
    Scenario(
        ("lead_qualifies_then_is_recycled", "nurture_welcome_paused_resumed_exited"),
        lead_qualifies_then_is_recycled,
    ),
    Scenario(("lead_moved_by_updates",), lead_moved_by_updates),
    Scenario(("lead_accepted_then_deal_lost",), lead_accepted_then_deal_lost),
    Scenario(("account_targeted_then_engaged",), account_targeted_then_engaged),
    Scenario(("handoff_escalated_then_accepted", "handoff_accepted_by_its_stamped_click"), handoffs),
    Scenario(("onboarding_one_milestone_missed", "customer_first_month"), customer_first_month),
    Scenario(("reports_two_days",), reports_two_days),
    *discover(),
]


# --- files ---------------------------------------------------------------------------------------


def histories_of(name: str, folder: Path) -> list[Path]:
    """The saved histories of `name`: `<name>.json` (from before dated names) and `<name>_<date>.json`."""
    pattern = re.compile(rf"{re.escape(name)}(_\d{{4}}-\d{{2}}-\d{{2}})?\.json")
    return sorted(p for p in folder.glob(f"{name}*.json") if pattern.fullmatch(p.name))


def dated(name: str, folder: Path, day: date) -> Path:
    return folder / f"{name}_{day.isoformat()}.json"


class HistoryExists(Exception):
    """A history file to be written is already there: a saved history is never rewritten."""


def plan(asked: list[str], folder: Path, day: date) -> list[Recordable]:
    """The scenarios to run: those naming an asked history, or (none asked) those with a history not
    recorded yet. Refuses, before anything runs, to write over any file."""
    known = {name for scenario in SCENARIOS for name in scenario.names}
    unknown = sorted(set(asked) - known)
    if unknown:
        raise SystemExit(f"no such scenario: {', '.join(unknown)} (see --list)")
    if asked:
        chosen = [s for s in SCENARIOS if set(s.names) & set(asked)]
    else:
        chosen = [s for s in SCENARIOS if any(not histories_of(n, folder) for n in s.names)]
    existing = [dated(n, folder, day) for s in chosen for n in s.names if dated(n, folder, day).exists()]
    if existing:
        raise HistoryExists(
            "a saved history is never rewritten (it stands for runs in flight); these exist: "
            + ", ".join(str(p) for p in existing)
            + " (record under another --date, or delete the file first if it was never committed)"
        )
    return chosen


async def record(chosen: list[Recordable], folder: Path, day: date) -> list[Path]:
    written: list[Path] = []
    async with time_skipping_server() as env:
        for scenario in chosen:
            kept: Kept = {}
            await scenario.run(env, kept)
            for name in scenario.names:
                path = dated(name, folder, day)
                # Exclusive creation: a file that appeared meanwhile is not written over either.
                with path.open("x", encoding="utf-8") as out:
                    out.write(kept[name].to_json())
                written.append(path)
                print(f"wrote {path.name} ({len(kept[name].events)} events)")
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.histories.record", description=__doc__.split("\n")[0]
    )
    parser.add_argument("scenarios", nargs="*", help="history names to record anew (default: the missing)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and their saved histories")
    parser.add_argument("--into", type=Path, default=HERE, help="the folder of histories (default: here)")
    parser.add_argument(
        "--date", type=date.fromisoformat, default=None, help="the name's date (default: today, UTC)"
    )
    args = parser.parse_args(argv)
    folder: Path = args.into.resolve()
    if args.list:
        for scenario in SCENARIOS:
            for name in scenario.names:
                print(f"{name}: {', '.join(p.name for p in histories_of(name, folder)) or 'none yet'}")
        return 0
    day = args.date or datetime.now(UTC).date()
    try:
        chosen = plan(args.scenarios, folder, day)
    except HistoryExists as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    if not chosen:
        print("every scenario has a history; name one to record it anew")
        return 0
    asyncio.run(record(chosen, folder, day))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
