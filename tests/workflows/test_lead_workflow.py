"""The lead workflow on the time-skipping server, its activities replaced by recording fakes."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.accounts import ContactActivity
from domain.connectors import (
    CalendarEventInput,
    CrmMeetingInput,
    SendEmailInput,
    SendReservation,
    SendReservationInput,
    SyncPersonInput,
    WriteResult,
)
from domain.customers import CustomerReport, ReferralReport
from domain.events import EventType, LeadEvent, Touch
from domain.experiments import ExposureInput
from domain.lead import (
    EVENTS_SIGNAL,
    EnrollWelcomeInput,
    EnrollWelcomeResult,
    EventsRecorded,
    LeadMerged,
    LeadState,
    LeadWorkflowInput,
    LifecycleStage,
    UpsertContactInput,
    UpsertContactResult,
)
from domain.qualify import Enrollable, LeadFacts, LeadFactsInput, SequencesForTrigger
from domain.scoring import FitResult, ScoringConfig, load_scoring
from domain.sequences import SequenceDefinition
from runtime.settings import PROJECT_ROOT
from runtime.temporal import register_search_attributes
from tests.conftest import _test_server
from workers.registry import WORKFLOWS
from workflows.lead import LeadWorkflow


class RecordingPlatforms:
    def __init__(self) -> None:
        self.crm_calls: list[UpsertContactInput] = []
        self.email_calls: list[EnrollWelcomeInput] = []
        self.crm_failures_left = 0
        self.crm_rejects = False
        self.triggers: list[SequencesForTrigger] = []
        self.pushes: list[tuple[str, SyncPersonInput]] = []
        self.sends: list[SendEmailInput] = []
        self.sequences: list[SequenceDefinition] = []
        self.meetings: list[CrmMeetingInput] = []
        self.account_reports: list[ContactActivity] = []
        self.customer_reports: list[CustomerReport] = []
        self.referrals: list[ReferralReport] = []
        self.invites: list[CalendarEventInput] = []

    @activity.defn(name="crm.upsert_contact")
    async def upsert_contact(self, data: UpsertContactInput) -> UpsertContactResult:
        self.crm_calls.append(data)
        if self.crm_rejects:
            raise ApplicationError("hubspot: 400 bad property", type="PlatformRejected", non_retryable=True)
        if self.crm_failures_left:
            self.crm_failures_left -= 1
            raise ApplicationError("hubspot: 503", type="PlatformUnavailable")
        return UpsertContactResult(contact_id="c-1", created=len(self.crm_calls) == 1)

    @activity.defn(name="email.enroll_welcome")
    async def enroll_welcome(self, data: EnrollWelcomeInput) -> EnrollWelcomeResult:
        self.email_calls.append(data)
        return EnrollWelcomeResult(profile_id="p-1", enrolled=True)

    # The qualify phase: the real scoring file, a fit the test chooses, sequences it chooses.
    fit = FitResult(
        fit=True,
        points=20,
        matched=["industry", "seniority"],
        missing=[],
        seniority="vp",
        free_mail=False,
        competitor=False,
    )

    @activity.defn(name="scoring.config")
    async def scoring_config(self) -> ScoringConfig:
        return load_scoring(SCORING_FILE)

    @activity.defn(name="leads.facts")
    async def lead_facts(self, data: LeadFactsInput) -> LeadFacts:
        return LeadFacts(
            fit=self.fit, timezone="Europe/Berlin", country="DE", lead_source="webinar", consent=True
        )

    @activity.defn(name="sequences.for_trigger")
    async def sequences_for_trigger(self, query: SequencesForTrigger) -> Enrollable:
        self.triggers.append(query)
        if query.sequence_id is not None:
            return Enrollable(sequences=[s for s in self.sequences if s.id == query.sequence_id])
        return Enrollable(sequences=[s for s in self.sequences if s.trigger.kind == query.kind])

    @activity.defn(name="crm.sync_person")
    async def crm_sync_person(self, data: SyncPersonInput) -> WriteResult:
        self.pushes.append(("crm", data))
        return WriteResult(provider="hubspot", object_type="contact", id="c-1", created=False)

    @activity.defn(name="email.sync_profile")
    async def email_sync_profile(self, data: SyncPersonInput) -> WriteResult:
        self.pushes.append(("email", data))
        return WriteResult(provider="klaviyo", object_type="profile", id="p-1", created=False)

    @activity.defn(name="crm.log_meeting")
    async def log_meeting(self, data: CrmMeetingInput) -> WriteResult:
        self.meetings.append(data)
        return WriteResult(provider="hubspot", object_type="meeting", id="m-1")

    @activity.defn(name="accounts.report")
    async def report_account(self, data: ContactActivity) -> None:
        self.account_reports.append(data)

    @activity.defn(name="customers.report")
    async def report_customer(self, data: CustomerReport) -> None:
        self.customer_reports.append(data)

    @activity.defn(name="customers.report_referral")
    async def report_referral(self, data: ReferralReport) -> bool:
        self.referrals.append(data)
        return True

    @activity.defn(name="calendar.create_event")
    async def create_event(self, data: CalendarEventInput) -> WriteResult:
        self.invites.append(data)
        return WriteResult(provider="google", object_type="event", id=data.idempotency_key)

    @activity.defn(name="experiments.expose")
    async def expose(self, data: ExposureInput) -> str:
        return data.variant

    @activity.defn(name="sends.reserve")
    async def reserve(self, data: SendReservationInput) -> SendReservation:
        return SendReservation(status="granted")

    @activity.defn(name="email.send")
    async def send(self, data: SendEmailInput) -> WriteResult:
        self.sends.append(data)
        return WriteResult(provider="klaviyo", object_type="event", id=data.idempotency_key)

    def all(self) -> list:
        return [
            self.upsert_contact,
            self.enroll_welcome,
            self.scoring_config,
            self.lead_facts,
            self.sequences_for_trigger,
            self.crm_sync_person,
            self.email_sync_profile,
            self.reserve,
            self.send,
            self.log_meeting,
            self.report_account,
            self.report_customer,
            self.expose,
            self.report_referral,
            self.create_event,
        ]


START = datetime(2026, 1, 1, tzinfo=UTC)
SCORING_FILE = PROJECT_ROOT / "config" / "scoring.toml"


def form(submission_id: str, campaign: str = "q4") -> LeadEvent:
    return LeadEvent(
        event_id=submission_id,
        type=EventType.FORM_SUBMITTED,
        source="form",
        occurred_at=START,
        submission_id=submission_id,
        form_id="demo",
        consent=True,
        welcome_list="WELCOME",
        touch=Touch(source="linkedin", campaign=campaign),
        email_hash="e" * 64,
    )


def page(event_id: str, at: datetime, path: str = "/pricing") -> LeadEvent:
    return LeadEvent(
        event_id=event_id, type=EventType.PAGE, source="segment", occurred_at=at, properties={"path": path}
    )


async def signal_with_start(
    client: Client, lead_id: str, event: LeadEvent | list[LeadEvent], queue: str
) -> WorkflowHandle:
    return await client.start_workflow(
        LeadWorkflow.run,
        LeadWorkflowInput(lead_id=lead_id),
        id=f"lead-{lead_id}",
        task_queue=queue,
        start_signal=EVENTS_SIGNAL,
        start_signal_args=[EventsRecorded(events=event if isinstance(event, list) else [event])],
    )


async def until(predicate, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not await predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def state_of(handle: WorkflowHandle) -> LeadState:
    return await handle.query(LeadWorkflow.state)


@pytest.fixture
def platforms() -> RecordingPlatforms:
    return RecordingPlatforms()


@pytest.fixture
async def worker(time_skipping_env, platforms):
    queue = f"q-{uuid.uuid4()}"
    async with Worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=platforms.all(),
    ):
        yield queue


async def test_a_form_makes_a_lead_and_syncs_both_platforms(time_skipping_env, worker, platforms):
    lead_id = str(uuid.uuid4())
    handle = await signal_with_start(time_skipping_env.client, lead_id, form("s1"), worker)
    await until(lambda: _state_has(handle, lambda s: s.crm_contact_id and s.email_profile_id))
    state = await state_of(handle)
    assert state.stage is LifecycleStage.LEAD
    assert state.stage_history[0].reason == "form_submitted (demo)"
    assert state.welcome_enrolled and state.activity.forms_submitted == 1
    assert state.email_hash == "e" * 64
    assert state.first_touch == state.last_touch == Touch(source="linkedin", campaign="q4")
    assert [c.idempotency_key for c in platforms.crm_calls] == [f"lead-{lead_id}:form:s1:crm-upsert"]
    assert platforms.crm_calls[0].lifecycle_stage is LifecycleStage.LEAD
    assert platforms.email_calls[0].list_id == "WELCOME"


async def test_a_redelivered_submission_is_folded_once(time_skipping_env, worker, platforms):
    lead_id = str(uuid.uuid4())
    handle = await signal_with_start(time_skipping_env.client, lead_id, form("s1"), worker)
    await signal_with_start(time_skipping_env.client, lead_id, form("s1"), worker)
    await signal_with_start(time_skipping_env.client, lead_id, form("s2", campaign="q1"), worker)
    await until(
        lambda: _state_has(
            handle, lambda s: len(platforms.crm_calls) == 2 and s.activity.forms_submitted == 2
        )
    )
    state = await state_of(handle)
    assert state.first_touch is not None and state.first_touch.campaign == "q4"
    assert state.last_touch is not None and state.last_touch.campaign == "q1"
    assert sorted(c.submission_id for c in platforms.crm_calls) == ["s1", "s2"]


async def test_a_platform_outage_is_waited_out(time_skipping_env, worker, platforms):
    platforms.crm_failures_left = 3
    handle = await signal_with_start(time_skipping_env.client, str(uuid.uuid4()), form("s1"), worker)
    await until(lambda: _state_has(handle, lambda s: s.crm_contact_id is not None), timeout=30)
    assert len(platforms.crm_calls) == 4
    assert (await state_of(handle)).failures == []


async def test_a_rejected_write_is_recorded_and_the_journey_goes_on(time_skipping_env, worker, platforms):
    platforms.crm_rejects = True
    handle = await signal_with_start(time_skipping_env.client, str(uuid.uuid4()), form("s1"), worker)
    await until(lambda: _state_has(handle, lambda s: bool(s.failures) and s.email_profile_id))
    state = await state_of(handle)
    assert len(platforms.crm_calls) == 1, "a permanent rejection is not retried"
    assert state.failures[0].step == "crm.upsert_contact"
    assert "bad property" in state.failures[0].message
    assert state.welcome_enrolled


async def test_the_lead_waits_a_month_for_its_next_event(platforms):
    # Its own server: skipping a month on the shared one would also replay the retries of every
    # other test's unfinished activities.
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_test_server()
    )
    await register_search_attributes(env.client)
    queue = f"q-{uuid.uuid4()}"
    try:
        async with Worker(env.client, task_queue=queue, workflows=WORKFLOWS, activities=platforms.all()):
            await _wait_a_month(env, queue, platforms)
    finally:
        await env.shutdown()


async def _wait_a_month(env: WorkflowEnvironment, worker: str, platforms: RecordingPlatforms) -> None:
    lead_id = str(uuid.uuid4())
    handle = await signal_with_start(env.client, lead_id, form("s1"), worker)
    await until(lambda: _state_has(handle, lambda s: s.crm_contact_id is not None))
    await env.sleep(timedelta(days=30))
    await signal_with_start(env.client, lead_id, form("s2"), worker)
    await until(
        lambda: _state_has(
            handle, lambda s: s.activity.forms_submitted == 2 and len(platforms.crm_calls) == 2
        )
    )
    described = await handle.describe()
    assert described.status is not None and described.status.name == "RUNNING"


async def test_continue_as_new_carries_the_state(time_skipping_env, worker, platforms):
    lead_id = str(uuid.uuid4())
    earlier = LeadState(lead_id=lead_id, email_hash="h" * 64, crm_contact_id="c-9")
    earlier.activity.forms_submitted = 5
    earlier.move_to(LifecycleStage.LEAD, "earlier run", datetime(2025, 1, 1, tzinfo=UTC))
    earlier.remember("s-old")
    handle = await time_skipping_env.client.start_workflow(
        LeadWorkflow.run,
        LeadWorkflowInput(lead_id=lead_id, email_hash="h" * 64, state=earlier, pending=[form("s-new")]),
        id=f"lead-{lead_id}",
        task_queue=worker,
    )
    await until(lambda: _state_has(handle, lambda s: s.activity.forms_submitted == 6))
    await handle.signal(LeadWorkflow.events, EventsRecorded(events=[form("s-old")]))
    await asyncio.sleep(0.5)
    state = await state_of(handle)
    assert state.activity.forms_submitted == 6, "an event seen before continue-as-new is not folded again"
    assert state.stage_history[0].reason == "earlier run"


async def _state_has(handle: WorkflowHandle, predicate) -> bool:
    return bool(predicate(await state_of(handle)))


async def test_anonymous_page_views_count_toward_the_lead(time_skipping_env, worker, platforms):
    lead_id = str(uuid.uuid4())
    views = [
        page("p1", START),
        page("p2", START + timedelta(minutes=10)),
        page("p3", START + timedelta(hours=2), "/docs"),
        page("p4", START + timedelta(days=1)),
        page("p5", START + timedelta(days=1, minutes=5)),
    ]
    handle = await signal_with_start(time_skipping_env.client, lead_id, views, worker)
    await until(lambda: _state_has(handle, lambda s: s.activity.page_views == 5))
    state = await state_of(handle)
    assert state.activity.sessions == 3, "a new session after 30 minutes without activity"
    assert state.stage is LifecycleStage.ANONYMOUS, "page views alone do not make a lead"
    assert platforms.crm_calls == []
    await signal_with_start(time_skipping_env.client, lead_id, form("s1"), worker)
    await until(lambda: _state_has(handle, lambda s: s.stage is LifecycleStage.LEAD and s.crm_contact_id))
    assert [t.type for t in (await state_of(handle)).timeline][-1] is EventType.FORM_SUBMITTED


async def test_a_merged_lead_ends_its_run(time_skipping_env, worker, platforms):
    handle = await signal_with_start(time_skipping_env.client, str(uuid.uuid4()), page("p1", START), worker)
    await handle.signal(LeadWorkflow.merged_into, LeadMerged(into_lead_id="other"))
    final = await handle.result()
    assert final.merged_into == "other" and final.activity.page_views == 1


async def test_events_in_one_signal_are_folded_in_the_order_they_happened(
    time_skipping_env, worker, platforms
):
    views = [
        page("late", START + timedelta(hours=4)),
        page("early", START),
        page("middle", START + timedelta(minutes=10)),
    ]
    handle = await signal_with_start(time_skipping_env.client, str(uuid.uuid4()), views, worker)
    await until(lambda: _state_has(handle, lambda s: s.activity.page_views == 3))
    state = await state_of(handle)
    assert state.activity.sessions == 2
    assert [t.event_id for t in state.timeline] == ["early", "middle", "late"]
