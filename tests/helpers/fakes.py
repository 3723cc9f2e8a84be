"""Fake activities for workflow tests: each records every call by the activity name the worker ran
(`calls`, `of(name)`), so a test asks what a workflow did in the names the workflow calls.
A fake answers as the platform's happy path unless a test turns on a failure."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from domain.accounts import AbmPolicy, ContactActivity
from domain.connectors import (
    CalendarEventInput,
    ChatNotifyInput,
    CrmDealInput,
    CrmMeetingInput,
    CrmNoteInput,
    CrmTaskInput,
    SendEmailInput,
    SendReservation,
    SendReservationInput,
    SyncPersonInput,
    WriteResult,
)
from domain.customers import (
    CompanyInput,
    CsmAssignment,
    CustomerPolicy,
    CustomerReport,
    ReferralReport,
    load_customer_policy,
)
from domain.experiments import ExposureInput
from domain.handoff import (
    AssignInput,
    Assignment,
    CrmOwnerInput,
    CrmOwnerRep,
    HandoffPolicy,
    Milestone,
    RepNotifyInput,
)
from domain.lead import EnrollWelcomeInput, EnrollWelcomeResult, UpsertContactInput, UpsertContactResult
from domain.qualify import (
    ENROLL_SIGNAL,
    Enrollable,
    EnrollRequest,
    LeadFacts,
    LeadFactsInput,
    SequencesForTrigger,
)
from domain.scoring import FitResult, ScoringConfig, load_scoring
from domain.sequences import SequenceDefinition
from runtime.settings import PROJECT_ROOT

SCORING_FILE = PROJECT_ROOT / "config" / "scoring.toml"
CUSTOMER_POLICY = load_customer_policy(PROJECT_ROOT / "config" / "customer.toml")


class CallLog:
    """Every call, in order, as (activity name, input)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def record(self, data: Any) -> None:
        """Called by a fake activity: logs `data` under the name the worker dispatched it by."""
        self.calls.append((activity.info().activity_type, data))

    def of(self, name: str) -> list[Any]:
        return [data for called, data in self.calls if called == name]

    def names(self) -> list[str]:
        return [called for called, _ in self.calls]


class RecordingPlatforms(CallLog):
    """The lead workflow's activities: the CRM and email platform, its qualify-phase reads (the
    real scoring file, a fit and sequences the test chooses), and every effect it has."""

    def __init__(self) -> None:
        super().__init__()
        self.crm_failures_left = 0
        self.crm_rejects = False
        self.sequences: list[SequenceDefinition] = []
        self.fit = FitResult(
            fit=True,
            points=20,
            matched=["industry", "seniority"],
            missing=[],
            seniority="vp",
            free_mail=False,
            competitor=False,
        )

    @property
    def crm_calls(self) -> list[UpsertContactInput]:
        return self.of("crm.upsert_contact")

    @property
    def email_calls(self) -> list[EnrollWelcomeInput]:
        return self.of("email.enroll_welcome")

    @property
    def triggers(self) -> list[SequencesForTrigger]:
        return self.of("sequences.for_trigger")

    @property
    def pushes(self) -> list[tuple[str, SyncPersonInput]]:
        """Score and stage pushes, as ("crm" | "email", what was pushed)."""
        where = {"crm.sync_person": "crm", "email.sync_profile": "email"}
        return [(where[name], data) for name, data in self.calls if name in where]

    @property
    def sends(self) -> list[SendEmailInput]:
        return self.of("email.send")

    @property
    def meetings(self) -> list[CrmMeetingInput]:
        return self.of("crm.log_meeting")

    @property
    def account_reports(self) -> list[ContactActivity]:
        return self.of("accounts.report")

    @property
    def customer_reports(self) -> list[CustomerReport]:
        return self.of("customers.report")

    @property
    def referrals(self) -> list[ReferralReport]:
        return self.of("customers.report_referral")

    @property
    def invites(self) -> list[CalendarEventInput]:
        return self.of("calendar.create_event")

    @activity.defn(name="crm.upsert_contact")
    async def upsert_contact(self, data: UpsertContactInput) -> UpsertContactResult:
        self.record(data)
        if self.crm_rejects:
            raise ApplicationError("hubspot: 400 bad property", type="PlatformRejected", non_retryable=True)
        if self.crm_failures_left:
            self.crm_failures_left -= 1
            raise ApplicationError("hubspot: 503", type="PlatformUnavailable")
        return UpsertContactResult(contact_id="c-1", created=len(self.crm_calls) == 1)

    @activity.defn(name="email.enroll_welcome")
    async def enroll_welcome(self, data: EnrollWelcomeInput) -> EnrollWelcomeResult:
        self.record(data)
        return EnrollWelcomeResult(profile_id="p-1", enrolled=True)

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
        self.record(query)
        if query.sequence_id is not None:
            return Enrollable(sequences=[s for s in self.sequences if s.id == query.sequence_id])
        return Enrollable(sequences=[s for s in self.sequences if s.trigger.kind == query.kind])

    @activity.defn(name="crm.sync_person")
    async def crm_sync_person(self, data: SyncPersonInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="hubspot", object_type="contact", id="c-1", created=False)

    @activity.defn(name="email.sync_profile")
    async def email_sync_profile(self, data: SyncPersonInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="klaviyo", object_type="profile", id="p-1", created=False)

    @activity.defn(name="crm.log_meeting")
    async def log_meeting(self, data: CrmMeetingInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="hubspot", object_type="meeting", id="m-1")

    @activity.defn(name="accounts.report")
    async def report_account(self, data: ContactActivity) -> None:
        self.record(data)

    @activity.defn(name="customers.report")
    async def report_customer(self, data: CustomerReport) -> None:
        self.record(data)

    @activity.defn(name="customers.report_referral")
    async def report_referral(self, data: ReferralReport) -> bool:
        self.record(data)
        return True

    @activity.defn(name="calendar.create_event")
    async def create_event(self, data: CalendarEventInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="google", object_type="event", id=data.idempotency_key)

    @activity.defn(name="experiments.expose")
    async def expose(self, data: ExposureInput) -> str:
        self.record(data)
        return data.variant

    @activity.defn(name="sends.reserve")
    async def reserve(self, data: SendReservationInput) -> SendReservation:
        self.record(data)
        return SendReservation(status="granted")

    @activity.defn(name="email.send")
    async def send(self, data: SendEmailInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="klaviyo", object_type="event", id=data.idempotency_key)

    @activity.defn(name="handoff.rep_for_crm_owner")
    async def rep_for_crm_owner(self, data: CrmOwnerInput) -> CrmOwnerRep:
        """CRM owner `owner-<rep>` is that roster rep; any other owner is not on the roster."""
        self.record(data)
        rep = data.crm_owner_id.removeprefix("owner-")
        return CrmOwnerRep(rep_id=rep if rep != data.crm_owner_id else None)

    def all(self) -> list[Any]:
        return [
            self.rep_for_crm_owner,
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


TEAM = ["ana", "ben", "cho"]


class FakeSales(CallLog):
    """The hand-off's activities; `reps[n]` is the rep the n-th assignment gets (None: nobody)."""

    def __init__(self, reps: list[str | None]) -> None:
        super().__init__()
        self.reps = reps

    @property
    def assigned(self) -> list[AssignInput]:
        return self.of("handoff.assign")

    @property
    def notified(self) -> list[RepNotifyInput]:
        return self.of("notify.rep")

    @property
    def milestones(self) -> list[Milestone]:
        return self.of("handoff.record")

    @property
    def tasks(self) -> list[CrmTaskInput]:
        return self.of("crm.create_task")

    @property
    def deals(self) -> list[CrmDealInput]:
        return self.of("crm.upsert_deal")

    @property
    def released(self) -> int:
        return len(self.of("handoff.release"))

    @activity.defn(name="handoff.policy")
    async def policy(self) -> HandoffPolicy:
        return HandoffPolicy(
            sla=timedelta(minutes=5), step_timeout=timedelta(minutes=5), manager_slack_id="U0MGR"
        )

    @activity.defn(name="handoff.assign")
    async def assign(self, data: AssignInput) -> Assignment:
        self.record(data)
        rep = self.reps[min(data.attempt, len(self.reps)) - 1]
        return Assignment(
            rep_id=rep,
            rep_name=rep,
            slack_user_id=f"U-{rep}" if rep else None,
            team_id="sales",
            queue_channel="C0QUEUE",
            team_reps=TEAM,
            queue=rep is None,
            reason="weighted round robin" if rep else "nobody available",
        )

    @activity.defn(name="handoff.release")
    async def release(self, data: AssignInput) -> None:
        self.record(data)

    @activity.defn(name="handoff.record")
    async def milestone(self, milestone: Milestone) -> None:
        self.record(milestone)

    @activity.defn(name="notify.rep")
    async def notify(self, data: RepNotifyInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="slack", object_type="message", id=data.idempotency_key)

    @activity.defn(name="crm.sync_person")
    async def sync_person(self, data: SyncPersonInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="hubspot", object_type="contact", id="c-1", created=False)

    @activity.defn(name="crm.add_sales_context")
    async def context(self, data: CrmNoteInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="hubspot", object_type="note", id="n-1")

    @activity.defn(name="crm.create_task")
    async def task(self, data: CrmTaskInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="hubspot", object_type="task", id="t-1")

    @activity.defn(name="crm.upsert_deal")
    async def deal(self, data: CrmDealInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="hubspot", object_type="deal", id="d-1")

    def all(self) -> list[Any]:
        return [
            self.deal,
            self.policy,
            self.assign,
            self.release,
            self.milestone,
            self.notify,
            self.sync_person,
            self.context,
            self.task,
        ]


CSM = CsmAssignment(
    csm_id="olivia",
    name="Olivia Park",
    email="olivia.park@example.com",
    slack_user_id="U0OLIVIA",
    crm_owner_id="900",
    channel="C0CS",
    reason="fewest accounts",
)


class CustomerPlatforms(CallLog):
    """The customer journey's and onboarding's activities, on the seed's customer policy."""

    def emails(self, template: str) -> list[SendEmailInput]:
        return [e for e in self.of("email.send") if e.template_id == template]

    def slack(self, words: str) -> list[ChatNotifyInput]:
        return [m for m in self.of("notify.post_message") if words in m.text]

    def _done(self, data: Any) -> WriteResult:
        self.record(data)
        return WriteResult(
            provider="fake", object_type=activity.info().activity_type, id=str(len(self.calls))
        )

    @activity.defn(name="customers.policy")
    async def policy(self) -> CustomerPolicy:
        return CUSTOMER_POLICY

    @activity.defn(name="customers.assign_csm")
    async def assign_csm(self, account_id: str) -> CsmAssignment:
        self.record(account_id)
        return CSM

    @activity.defn(name="crm.upsert_company")
    async def upsert_company(self, data: CompanyInput) -> WriteResult:
        return self._done(data)

    @activity.defn(name="email.send")
    async def send(self, data: SendEmailInput) -> WriteResult:
        return self._done(data)

    @activity.defn(name="calendar.create_event")
    async def create_event(self, data: CalendarEventInput) -> WriteResult:
        return self._done(data)

    @activity.defn(name="notify.post_message")
    async def post_message(self, data: ChatNotifyInput) -> WriteResult:
        return self._done(data)

    @activity.defn(name="crm.create_task")
    async def create_task(self, data: CrmTaskInput) -> WriteResult:
        return self._done(data)

    def activities(self) -> list[Any]:
        return [
            self.policy,
            self.assign_csm,
            self.upsert_company,
            self.send,
            self.create_event,
            self.post_message,
            self.create_task,
        ]


class RecordingConnectors(CallLog):
    """The connector-steps workflow's activities: the chat fails twice (503) before it answers;
    the email platform rejects the template unless told otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.chat_failures_left = 2
        self.email_rejects = True

    @property
    def keys(self) -> list[tuple[str, str]]:
        """(activity, idempotency key) of every attempt."""
        return [(name, data.idempotency_key) for name, data in self.calls]

    @activity.defn(name="crm.create_task")
    async def create_task(self, data: CrmTaskInput) -> WriteResult:
        self.record(data)
        return WriteResult(provider="hubspot", object_type="task", id="t-1")

    @activity.defn(name="notify.post_message")
    async def post_message(self, data: ChatNotifyInput) -> WriteResult:
        self.record(data)
        if self.chat_failures_left:
            self.chat_failures_left -= 1
            raise ApplicationError("slack: 503", type="PlatformUnavailable")
        return WriteResult(provider="slack", object_type="message", id="1712345678.000100")

    @activity.defn(name="email.send")
    async def send(self, data: SendEmailInput) -> WriteResult:
        self.record(data)
        if self.email_rejects:
            raise ApplicationError("klaviyo: 400 bad template", type="PlatformRejected", non_retryable=True)
        return WriteResult(provider="klaviyo", object_type="event", id=data.idempotency_key)

    def all(self) -> list[Any]:
        return [self.create_task, self.post_message, self.send]


@workflow.defn(name="StandInLead", sandboxed=False)
class StandInLead:
    """Stands in for a person's lead journey (`lead-<id>`): records the enrollments it is asked for."""

    def __init__(self) -> None:
        self.requests: list[EnrollRequest] = []

    @workflow.signal(name=ENROLL_SIGNAL)
    def enroll(self, request: EnrollRequest) -> None:
        self.requests.append(request)

    @workflow.query(name="requests")
    def seen(self) -> list[EnrollRequest]:
        return self.requests

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@activity.defn(name="accounts.policy")
async def abm_policy() -> AbmPolicy:
    """Two contacts and 60 points of intent within 30 days make a target account."""
    return AbmPolicy(intent_threshold=60, min_contacts=2, window=timedelta(days=30))


# A connector-steps request: a CRM task, an email (rejected by RecordingConnectors), a chat message.
CONNECTOR_STEPS = [
    {"activity": "crm.create_task", "input": {"subject": "Call {name}", "due_at": "2026-12-01T09:00:00Z"}},
    {"activity": "email.send", "input": {"template_id": "nurture-1"}},
    {"activity": "notify.post_message", "input": {"channel": "C1", "text": "{name} is an MQL"}},
]
