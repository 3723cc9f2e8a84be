"""Customer journeys on the time-skipping server: the purchase, onboarding with its deadlines, and
an account's year (usage, surveys, health, expansion, renewal reminders, churn and win-back) through
continue-as-new. Platform calls are recording fakes; the people's lead journeys are stand-ins that
record the enrollments the account's journey asks for."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.connectors import CalendarEventInput, ChatNotifyInput, CrmTaskInput, SendEmailInput, WriteResult
from domain.customers import (
    CUSTOMER_EVENT_SIGNAL,
    CompanyInput,
    CsmAssignment,
    CustomerEvent,
    CustomerInput,
    CustomerPolicy,
    CustomerState,
    OnboardingResult,
    load_customer_policy,
    onboarding_workflow_id,
)
from domain.qualify import EnrollRequest
from runtime.temporal import register_search_attributes
from tests.conftest import _test_server
from tests.workflows.test_account import StandInLead
from workflows.customer import CustomerJourneyWorkflow
from workflows.onboarding import OnboardingWorkflow

POLICY = load_customer_policy(Path(__file__).resolve().parents[2] / "config" / "customer.toml")
CSM = CsmAssignment(
    csm_id="olivia",
    name="Olivia Park",
    email="olivia.park@example.com",
    slack_user_id="U0OLIVIA",
    crm_owner_id="900",
    channel="C0CS",
    reason="fewest accounts",
)


class Platforms:
    """Records every call by activity name."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def _done(self, name: str, data: Any) -> WriteResult:
        self.calls.append((name, data))
        return WriteResult(provider="fake", object_type=name, id=str(len(self.calls)))

    def of(self, name: str) -> list[Any]:
        return [data for called, data in self.calls if called == name]

    def emails(self, template: str) -> list[SendEmailInput]:
        return [e for e in self.of("email.send") if e.template_id == template]

    def slack(self, words: str) -> list[ChatNotifyInput]:
        return [m for m in self.of("notify.post_message") if words in m.text]

    def activities(self) -> list[Any]:
        @activity.defn(name="customers.policy")
        async def policy() -> CustomerPolicy:
            return POLICY

        @activity.defn(name="customers.assign_csm")
        async def assign_csm(account_id: str) -> CsmAssignment:
            self.calls.append(("customers.assign_csm", account_id))
            return CSM

        @activity.defn(name="crm.upsert_company")
        async def upsert_company(data: CompanyInput) -> WriteResult:
            return self._done("crm.upsert_company", data)

        @activity.defn(name="email.send")
        async def send(data: SendEmailInput) -> WriteResult:
            return self._done("email.send", data)

        @activity.defn(name="calendar.create_event")
        async def create_event(data: CalendarEventInput) -> WriteResult:
            return self._done("calendar.create_event", data)

        @activity.defn(name="notify.post_message")
        async def post_message(data: ChatNotifyInput) -> WriteResult:
            return self._done("notify.post_message", data)

        @activity.defn(name="crm.create_task")
        async def create_task(data: CrmTaskInput) -> WriteResult:
            return self._done("crm.create_task", data)

        return [policy, assign_csm, upsert_company, send, create_event, post_message, create_task]


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """One server per test: a year skipped on a server that still holds another test's account
    (its worker gone) stalls the clock."""
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_test_server()
    )
    await register_search_attributes(environment.client)
    yield environment
    await environment.shutdown()


async def eventually(check, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result is not False:
                return
        except (AssertionError, IndexError, KeyError):
            if asyncio.get_running_loop().time() > deadline:
                raise
        else:
            assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


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
        await self.env.client.get_workflow_handle(self.handle.id).signal(CUSTOMER_EVENT_SIGNAL, event)

    async def state(self) -> CustomerState:
        raw = await self.env.client.get_workflow_handle(self.handle.id).query("state")
        return CustomerState.model_validate(raw)

    async def enrollments(self, lead_id: str) -> list[str]:
        raw = await self.env.client.get_workflow_handle(f"lead-{lead_id}").query("requests")
        return [EnrollRequest.model_validate(r).sequence_id for r in raw]


async def start_account(
    env: WorkflowEnvironment, queue: str, buyer: str, history_limit: int = 5000
) -> Account:
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
    await env.client.start_workflow(StandInLead.run, id=f"lead-{lead_id}", task_queue=queue)


def worker(env: WorkflowEnvironment, queue: str, platforms: Platforms) -> Worker:
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[CustomerJourneyWorkflow, OnboardingWorkflow, StandInLead],
        activities=platforms.activities(),
    )


async def test_a_purchase_welcomes_the_customer_and_onboarding_tracks_its_deadlines(env):
    queue, platforms, buyer = f"customer-{uuid.uuid4()}", Platforms(), str(uuid.uuid4())
    async with worker(env, queue, platforms):
        await stand_in(env, queue, buyer)
        account = await start_account(env, queue, buyer)

        def welcomed() -> None:
            company = platforms.of("crm.upsert_company")
            assert company and company[0].owner_id == "900"
            assert company[0].properties["lifecyclestage"] == "customer"
            assert platforms.emails("customer_welcome")[0].lead_id == buyer
            kickoff = platforms.of("calendar.create_event")[0]
            assert kickoff.calendar_id == CSM.email and CSM.email in kickoff.extra_attendees
            assert kickoff.start.weekday() < 5
            assert platforms.slack("New customer")[0].channel == "U0OLIVIA"

        await eventually(welcomed)

        async def onboarding_runs() -> bool:
            s = await account.state()
            return s.status == "onboarding" and s.onboarding == "running"

        await eventually(onboarding_runs)
        state = await account.state()
        assert state.csm is not None and state.csm.csm_id == "olivia"

        await account.send(buyer, "usage", "Logged In")  # first login: on day one
        await env.sleep(timedelta(days=15))  # the key feature was due on day 14
        await eventually(lambda: len(platforms.emails("onboarding_key_feature")) == 1)
        assert platforms.emails("onboarding_first_login") == []
        await account.send(buyer, "usage", "User Invited")  # within 21 days
        await env.sleep(timedelta(days=3))  # 3 days after the nudge: the CSM hears of it
        await eventually(lambda: len(platforms.slack("Key feature activated")) == 1)
        assert platforms.slack("Key feature activated")[0].channel == "U0OLIVIA"

        onboarding = env.client.get_workflow_handle(
            onboarding_workflow_id(account.account_id), result_type=OnboardingResult
        )
        result = await onboarding.result()
        assert result.done == ["first_login", "teammates_invited"]
        assert result.missed == ["key_feature"] and not result.completed

        async def onboarded() -> bool:
            s = await account.state()
            return s.onboarding == "incomplete"

        await eventually(onboarded)
        state = await account.state()
        # One login in 18 days: past onboarding, and already at risk by the weekly health check.
        assert state.status == "at_risk"
        assert state.onboarding_missed == ["key_feature"]
        await eventually(lambda: len(platforms.emails("csat_survey")) == 1)
        # Nothing was sent twice, whatever the retries and replays.
        keys = [data.idempotency_key for _, data in platforms.calls if hasattr(data, "idempotency_key")]
        assert len(keys) == len(set(keys))


async def test_an_accounts_year_through_continue_as_new(env):
    queue, platforms = f"customer-{uuid.uuid4()}", Platforms()
    buyer, teammate = str(uuid.uuid4()), str(uuid.uuid4())
    async with worker(env, queue, platforms):
        for lead in (buyer, teammate):
            await stand_in(env, queue, lead)
        account = await start_account(env, queue, buyer, history_limit=150)
        started = await account.now()
        await eventually(lambda: len(platforms.emails("customer_welcome")) == 1)

        async def week(logins: int, by: str = buyer) -> None:
            for _ in range(logins):
                await account.send(by, "usage", "Logged In")
            await env.sleep(timedelta(days=7))

        # Onboarding done in the first week; steady use for 5 weeks.
        await account.send(buyer, "usage", "Logged In")
        await account.send(buyer, "usage", "Feature Activated")
        await account.send(teammate, "usage", "User Invited")
        for _ in range(5):
            await week(6, teammate)
        await eventually(lambda: len(platforms.emails("nps_survey")) >= 1)  # day 30
        assert {e.lead_id for e in platforms.emails("nps_survey")} >= {buyer}
        await account.send(buyer, "survey_response", "Survey Responded", score=10, survey="nps-1")
        await eventually(lambda: len(platforms.emails("referral_invite")) == 1)
        assert platforms.emails("referral_invite")[0].variables["referral_code"] == buyer

        # Then the team goes quiet and a detractor answers: at risk, the CSM hears, re-engagement.
        await account.send(teammate, "survey_response", "Survey Responded", score=2, survey="nps-1")
        await eventually(lambda: len(platforms.slack("Detractor")) == 1)
        assert any("nps-1 2" in t.subject for t in platforms.of("crm.create_task"))
        for _ in range(5):
            await week(0)

        async def at_risk() -> bool:
            return (await account.state()).status == "at_risk"

        await eventually(at_risk)
        assert platforms.slack("At risk")
        assert "customer_reengagement" in await account.enrollments(buyer)

        # Back in the product: healthy again; then near the seat limit: expansion.
        for _ in range(4):
            await week(8)

        async def recovered() -> bool:
            return (await account.state()).status == "active"

        await eventually(recovered)
        await account.send(buyer, "usage", "Seats Changed", seats=10, seats_used=9)
        await eventually(lambda: any("ready to grow" in t.subject for t in platforms.of("crm.create_task")))
        assert "expansion" in await account.enrollments(buyer)

        # Through the rest of the year with use; no renewal comes.
        while (await account.now()) < started + timedelta(days=364):
            await week(3)
        await eventually(lambda: len(platforms.emails("renewal_reminder")) == 3)
        days_left = sorted(e.variables["days_left"] for e in platforms.emails("renewal_reminder"))
        assert days_left[0] <= 7 and 28 <= days_left[1] <= 30 and 58 <= days_left[2] <= 60
        await env.sleep(timedelta(days=10))  # past the end and the grace

        async def churned() -> bool:
            return (await account.state()).status == "churned"

        await eventually(churned)
        assert platforms.slack("Churned")
        assert "win_back" in await account.enrollments(buyer)
        assert platforms.of("crm.upsert_company")[-1].properties["customer_status"] == "churned"

        state = await account.state()
        assert state.runs > 1, "the year ran in more than one run (continue-as-new)"
        assert state.advocates == [buyer]
        assert {s.score for s in state.surveys} >= {10, 2}
        assert len(state.usage) <= 31 and len(state.audit) <= 100
        # Every run's history stayed bounded.
        history = await env.client.get_workflow_handle(account.handle.id).fetch_history()
        assert len(history.events) < 400

        # Buying again wins the account back.
        await account.send(buyer, "purchase", "Checkout completed")

        async def won_back() -> bool:
            s = await account.state()
            return s.status == "active" and s.term_number == 2

        await eventually(won_back)
        assert platforms.slack("Won back")
        keys = [data.idempotency_key for _, data in platforms.calls if hasattr(data, "idempotency_key")]
        assert len(keys) == len(set(keys))


async def test_a_renewal_moves_the_end_and_no_churn_follows(env):
    queue, platforms, buyer = f"customer-{uuid.uuid4()}", Platforms(), str(uuid.uuid4())
    async with worker(env, queue, platforms):
        await stand_in(env, queue, buyer)
        account = await start_account(env, queue, buyer)
        started = await account.now()
        await eventually(lambda: len(platforms.emails("customer_welcome")) == 1)
        await account.send(buyer, "usage", "Logged In")
        await account.send(buyer, "usage", "Feature Activated")
        await account.send(buyer, "usage", "User Invited")
        await env.sleep(timedelta(days=340))
        await eventually(lambda: len(platforms.emails("renewal_reminder")) == 2)  # 60 and 30 days
        await account.send(buyer, "subscription_renewed", "Invoice paid")
        await env.sleep(timedelta(days=40))
        state = await account.state()
        assert state.status != "churned" and state.renewals == 1 and state.term_number == 2
        assert state.subscription_ends_at is not None
        assert state.subscription_ends_at >= started + timedelta(days=365 + 365, minutes=-1)
        assert len(platforms.emails("renewal_reminder")) == 2  # the new term's are months away
