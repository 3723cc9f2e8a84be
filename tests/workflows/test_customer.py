"""Customer journeys on the time-skipping server: the purchase, onboarding with its deadlines, and
an account's year (usage, surveys, health, expansion, renewal reminders, churn and win-back) through
continue-as-new. Platform calls are recording fakes; the people's lead journeys are stand-ins that
record the enrollments the account's journey asks for."""

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from functools import partial

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.customers import OnboardingResult, onboarding_workflow_id
from tests.helpers.customer import Account, stand_in, start_account
from tests.helpers.fakes import CSM, CustomerPlatforms, StandInLead
from tests.helpers.temporal import workflow_worker
from tests.helpers.waiting import eventually
from workflows.customer import CustomerJourneyWorkflow
from workflows.onboarding import OnboardingWorkflow


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """The shared time-skipping server: a year skipped on it no longer stalls, as every test's
    worker ends its runs (`workflow_worker`)."""
    return time_skipping_env


def worker(env: WorkflowEnvironment, platforms: CustomerPlatforms) -> AbstractAsyncContextManager[str]:
    return workflow_worker(
        env.client,
        workflows=[CustomerJourneyWorkflow, OnboardingWorkflow, StandInLead],
        activities=platforms.activities(),
    )


async def test_a_purchase_welcomes_the_customer_and_onboarding_tracks_its_deadlines(env):
    platforms, buyer = CustomerPlatforms(), str(uuid.uuid4())
    async with worker(env, platforms) as queue:
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
    platforms = CustomerPlatforms()
    buyer, teammate = str(uuid.uuid4()), str(uuid.uuid4())
    async with worker(env, platforms) as queue:
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
        await eventually(lambda: any("nps-1 2" in t.subject for t in platforms.of("crm.create_task")))
        for _ in range(5):
            await week(0)

        async def at_risk() -> bool:
            return (await account.state()).status == "at_risk"

        await eventually(at_risk)
        # Each effect of the change is its own activity or signal: each is waited for.
        await eventually(lambda: bool(platforms.slack("At risk")))
        await eventually(partial(_enrolled, account, buyer, "customer_reengagement"))

        # Back in the product: healthy again; then near the seat limit: expansion.
        for _ in range(4):
            await week(8)

        async def recovered() -> bool:
            return (await account.state()).status == "active"

        await eventually(recovered)
        await account.send(buyer, "usage", "Seats Changed", seats=10, seats_used=9)
        await eventually(lambda: any("ready to grow" in t.subject for t in platforms.of("crm.create_task")))
        await eventually(partial(_enrolled, account, buyer, "expansion"))

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
        await eventually(lambda: bool(platforms.slack("Churned")))
        await eventually(partial(_enrolled, account, buyer, "win_back"))
        await eventually(
            lambda: platforms.of("crm.upsert_company")[-1].properties["customer_status"] == "churned"
        )

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
        await eventually(lambda: bool(platforms.slack("Won back")))
        keys = [data.idempotency_key for _, data in platforms.calls if hasattr(data, "idempotency_key")]
        assert len(keys) == len(set(keys))


async def test_a_renewal_moves_the_end_and_no_churn_follows(env):
    platforms, buyer = CustomerPlatforms(), str(uuid.uuid4())
    async with worker(env, platforms) as queue:
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

        async def renewed() -> None:
            state = await account.state()
            assert state.renewals == 1 and state.term_number == 2, state

        await eventually(renewed)
        await env.sleep(timedelta(days=40))  # past the old term's end and its grace
        # Caught up: its next health check is ahead of the clock, so every timer up to now (the old
        # end and grace among them) has been taken, not merely not yet reached.
        await eventually(lambda: _caught_up(account))
        state = await account.state()
        assert state.status != "churned" and state.renewals == 1 and state.term_number == 2
        assert state.subscription_ends_at is not None
        assert state.subscription_ends_at >= started + timedelta(days=365 + 365, minutes=-1)
        assert len(platforms.emails("renewal_reminder")) == 2  # the new term's are months away


async def _caught_up(account: Account) -> bool:
    state = await account.state()
    return state.next_health_at is not None and state.next_health_at > await account.now()


async def _enrolled(account: Account, lead_id: str, sequence_id: str) -> bool:
    return sequence_id in await account.enrollments(lead_id)
