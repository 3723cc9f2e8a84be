"""The nurture workflow on the time-skipping server: each step type, send windows in the lead's
zone across a DST change, the frequency cap, pause and resume, goals, suppression, A/B
assignment, and a 60-day sequence that continues as new. Activities are recording fakes."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devstack.always_open import ALWAYS
from domain.connectors import CrmTaskInput, SendEmailInput, SendReservation, SendReservationInput, WriteResult
from domain.experiments import ExposureInput
from domain.nurture import EventNotice, NurtureInput, NurtureState, nurture_workflow_id
from domain.sequences import (
    LeadContext,
    SendWindow,
    SequenceDefinition,
    SplitStep,
    Variant,
    assign_variant,
    next_send_time,
)
from tests.helpers.lead import lead_context
from tests.helpers.temporal import workflow_worker
from tests.helpers.waiting import eventually
from workers.registry import WORKFLOWS
from workflows.nurture import NurtureWorkflow

# Every day, all day (up to a microsecond before midnight): no send waits for the hour the test runs at.
ALWAYS_OPEN = ALWAYS.model_dump(mode="json")


class RecordingSends:
    def __init__(self) -> None:
        self.sent: list[tuple[str, datetime, SendEmailInput]] = []
        self.reservations: list[SendReservationInput] = []
        self.defer_first: dict[str, timedelta] = {}
        self.suppressed = False
        self.tasks: list[tuple[datetime, CrmTaskInput]] = []
        self.exposures: list[ExposureInput] = []
        self.promoted: str | None = None

    @activity.defn(name="sends.reserve")
    async def reserve(self, data: SendReservationInput) -> SendReservation:
        self.reservations.append(data)
        now = activity.info().current_attempt_scheduled_time
        step = data.idempotency_key.split(":")[-2]
        if self.suppressed:
            return SendReservation(status="suppressed", reason="email_unsubscribed")
        if step in self.defer_first:
            delay = self.defer_first.pop(step)
            return SendReservation(status="deferred", retry_at=now + delay, reason="3 marketing emails")
        return SendReservation(status="granted")

    @activity.defn(name="email.send")
    async def send(self, data: SendEmailInput) -> WriteResult:
        self.sent.append((data.step_id or "", activity.info().current_attempt_scheduled_time, data))
        return WriteResult(provider="klaviyo", object_type="event", id=data.idempotency_key)

    @activity.defn(name="crm.create_task")
    async def task(self, data: CrmTaskInput) -> WriteResult:
        self.tasks.append((activity.info().current_attempt_scheduled_time, data))
        return WriteResult(provider="hubspot", object_type="task", id=data.idempotency_key)

    @activity.defn(name="experiments.expose")
    async def expose(self, data: ExposureInput) -> str:
        self.exposures.append(data)
        return self.promoted or data.variant

    def steps(self) -> list[str]:
        return [step for step, _, _ in self.sent]


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """The shared time-skipping server: months skipped on it no longer replay other tests' runs, as
    every test's worker ends its runs (`workflow_worker`)."""
    return time_skipping_env


@pytest.fixture
async def sends(env: WorkflowEnvironment) -> AsyncIterator[tuple[RecordingSends, str]]:
    recorder = RecordingSends()
    async with workflow_worker(
        env.client,
        workflows=WORKFLOWS,
        activities=[recorder.reserve, recorder.send, recorder.task, recorder.expose],
    ) as queue:
        yield recorder, queue


def sequence(steps: list[dict[str, Any]], **extra: Any) -> SequenceDefinition:
    return SequenceDefinition.model_validate(
        {
            "id": "test-seq",
            "version": 1,
            "name": "Test sequence",
            "trigger": {"kind": "manual"},
            "send_window": ALWAYS_OPEN,
            "steps": steps,
            **extra,
        }
    )


def variants_of(seq: SequenceDefinition, step_id: str) -> list[Variant]:
    step = seq.step(step_id)
    assert isinstance(step, SplitStep)
    return step.variants


async def start(
    client: Client, queue: str, seq: SequenceDefinition, ctx: LeadContext | None = None, **extra: Any
) -> WorkflowHandle:
    lead_id = extra.pop("lead_id", str(uuid.uuid4()))
    return await client.start_workflow(
        NurtureWorkflow.run,
        NurtureInput(lead_id=lead_id, sequence=seq, context=ctx or lead_context(), **extra),
        id=nurture_workflow_id(lead_id, seq.id, extra.get("enrollment", 1)),
        task_queue=queue,
    )


async def result(handle: WorkflowHandle) -> NurtureState:
    return NurtureState.model_validate(await handle.result())


async def test_every_step_type_in_one_sequence(env, sends):
    recorder, queue = sends
    seq = sequence(
        [
            {"type": "send", "id": "hello", "template": "t-hello"},
            {"type": "wait", "id": "pause", "duration": "2d"},
            {
                "type": "wait_until",
                "id": "await-click",
                "event": {"type": "email_clicked"},
                "timeout": "3d",
                "on_event": "route",
                "on_timeout": "exit",
            },
            {
                "type": "branch",
                "id": "route",
                "cases": [{"when": [{"field": "engagement", "value": "high"}], "goto": "for-engaged"}],
                "otherwise": "test",
            },
            {"type": "send", "id": "for-engaged", "template": "t-case-study", "next": "exit"},
            {
                "type": "split",
                "id": "test",
                "variants": [
                    {"name": "a", "weight": 50, "goto": "send-a"},
                    {"name": "b", "weight": 50, "goto": "send-b"},
                ],
            },
            {"type": "send", "id": "send-a", "template": "t-a", "next": "exit"},
            {"type": "send", "id": "send-b", "template": "t-b", "next": "exit"},
        ]
    )
    lead_id = str(uuid.uuid4())
    started = await env.get_current_time()
    handle = await start(env.client, queue, seq, lead_id=lead_id)
    await env.sleep(timedelta(days=3))
    await handle.signal(
        NurtureWorkflow.lead_event,
        EventNotice(event_id="e1", type="email_clicked", occurred_at=started + timedelta(days=3)),
    )
    state = await result(handle)
    variant = assign_variant(lead_id, seq.id, "test", variants_of(seq, "test"), 0)
    assert recorder.steps() == ["hello", f"send-{variant}"]
    assert state.status == "completed" and state.variants == {"test": variant} and state.sends == 2
    hello_at, later_at = recorder.sent[0][1], recorder.sent[1][1]
    assert hello_at - started < timedelta(minutes=5)
    assert timedelta(days=3) <= later_at - started < timedelta(days=3, hours=1)
    kinds = [entry.kind for entry in state.log]
    assert kinds[:5] == ["sent", "wait", "wait_until", "event", "branch"]
    # Keys are the workflow id, the step and the visit: what the platforms dedupe on.
    assert recorder.sent[0][2].idempotency_key == f"{handle.id}:hello:1"
    # The split recorded its exposure, under the sequence and step.
    assert [(x.experiment_id, x.variant, x.lead_id) for x in recorder.exposures] == [
        (f"{seq.id}:test", variant, lead_id)
    ]


async def test_a_promoted_winner_goes_to_leads_new_to_the_test(env, sends):
    recorder, queue = sends
    recorder.promoted = "b"
    seq = sequence(
        [
            {
                "type": "split",
                "id": "test",
                "variants": [
                    {"name": "a", "weight": 99, "goto": "send-a"},
                    {"name": "b", "weight": 1, "goto": "send-b"},
                ],
            },
            {"type": "send", "id": "send-a", "template": "t-a", "next": "exit"},
            {"type": "send", "id": "send-b", "template": "t-b", "next": "exit"},
        ]
    )
    for _ in range(3):
        state = await result(await start(env.client, queue, seq, lead_id=str(uuid.uuid4())))
        assert state.variants == {"test": "b"}
    assert recorder.steps()[-3:] == ["send-b"] * 3


async def test_a_wait_until_times_out_and_branches_by_context(env, sends):
    recorder, queue = sends
    seq = sequence(
        [
            {
                "type": "wait_until",
                "id": "w",
                "event": {"type": "email_clicked"},
                "timeout": "1d",
                "on_timeout": "b",
            },
            {"type": "send", "id": "clicked", "template": "t", "next": "exit"},
            {
                "type": "branch",
                "id": "b",
                "cases": [{"when": [{"field": "preferred_topic", "value": "security"}], "goto": "security"}],
                "otherwise": "exit",
            },
            {"type": "send", "id": "security", "template": "t-security"},
        ]
    )
    state = await result(await start(env.client, queue, seq, lead_context(preferred_topic="security")))
    assert recorder.steps() == ["security"]
    assert [e.kind for e in state.log][:3] == ["wait_until", "timeout", "branch"]


async def test_sends_wait_for_the_window_in_the_leads_zone_across_a_dst_change(env, sends):
    recorder, queue = sends
    window = {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}
    zone = ZoneInfo("America/New_York")
    # The shared server's clock is wherever earlier tests skipped it to: a wait that ends a month
    # past New York's next clock change after the first send, whatever that date is (each regime
    # lasts over 4 months). Counted from the first send, not from now: a run that starts on the
    # weekend before the change sends its first email after it.
    started = await env.get_current_time()
    parsed = SendWindow.model_validate(window)
    first_due = next_send_time(started, "America/New_York", parsed)
    first_offset = first_due.astimezone(zone).utcoffset()
    days = next(
        n
        for n in range(1, 367)
        if (first_due + timedelta(days=n)).astimezone(zone).utcoffset() != first_offset
    )
    seq = sequence(
        [
            {"type": "send", "id": "first", "template": "t1"},
            {"type": "wait", "id": "long", "duration": f"{days + 30}d"},
            {"type": "send", "id": "second", "template": "t2"},
        ],
        send_window=window,
    )
    await result(await start(env.client, queue, seq, lead_context(timezone="America/New_York")))
    first_at, second_at = recorder.sent[0][1], recorder.sent[1][1]
    assert abs(first_at - first_due) < timedelta(minutes=1)
    for at in (first_at, second_at):
        local = at.astimezone(zone)
        assert local.weekday() < 5 and 9 <= local.hour < 17, local
    # Across the change: one of the two sends is in daylight time, the other not.
    assert first_at.astimezone(zone).utcoffset() != second_at.astimezone(zone).utcoffset()


async def test_the_frequency_cap_defers_a_send_until_the_reservation_allows(env, sends):
    recorder, queue = sends
    recorder.defer_first["second"] = timedelta(days=2)
    seq = sequence(
        [
            {"type": "send", "id": "first", "template": "t1"},
            {"type": "send", "id": "second", "template": "t2"},
        ]
    )
    state = await result(await start(env.client, queue, seq))
    first_at, second_at = recorder.sent[0][1], recorder.sent[1][1]
    assert timedelta(days=2) <= second_at - first_at < timedelta(days=2, minutes=5)
    assert "deferred" in [e.kind for e in state.log]
    # The deferred send kept its key: the ledger counts it once.
    keys = [r.idempotency_key for r in recorder.reservations if r.idempotency_key.endswith(":second:1")]
    assert len(keys) == 2 and len(set(keys)) == 1


async def test_mql_pauses_recycle_resumes_and_customer_exits(env, sends):
    recorder, queue = sends
    seq = sequence(
        [
            {"type": "send", "id": "one", "template": "t1"},
            {"type": "wait", "id": "gap", "duration": "5d"},
            {"type": "send", "id": "two", "template": "t2"},
            {"type": "wait", "id": "gap2", "duration": "5d"},
            {"type": "send", "id": "three", "template": "t3"},
        ]
    )
    handle = await start(env.client, queue, seq)
    await env.sleep(timedelta(days=1))
    await handle.signal(NurtureWorkflow.lead_context, lead_context(stage="mql"))
    await env.sleep(timedelta(days=20))

    async def paused() -> None:
        state = await handle.query(NurtureWorkflow.state)
        assert state.status == "paused" and "pause" in [e.kind for e in state.log], state.status

    # The pause is on the record, and the gap's deadline (day 5) long past: nothing went meanwhile.
    await eventually(paused)
    assert recorder.steps() == ["one"]
    await handle.signal(NurtureWorkflow.lead_context, lead_context(stage="recycled"))
    await env.sleep(timedelta(hours=1))
    # The wait's deadline passed while paused: the next send goes at once.
    await eventually(lambda: recorder.steps() == ["one", "two"])
    await handle.signal(NurtureWorkflow.lead_context, lead_context(stage="customer"))
    state = await result(handle)
    assert state.status == "exited" and state.exit_reason == "lead became customer"
    assert recorder.steps() == ["one", "two"]


async def test_the_goal_ends_the_sequence_and_suppression_stops_it(env, sends):
    recorder, queue = sends
    seq = sequence(
        [
            {"type": "wait", "id": "gap", "duration": "3d"},
            {"type": "send", "id": "one", "template": "t1"},
        ],
        goal={"type": "meeting_booked"},
    )
    handle = await start(env.client, queue, seq)
    await handle.signal(
        NurtureWorkflow.lead_event,
        EventNotice(event_id="m1", type="meeting_booked", occurred_at=datetime.now(UTC)),
    )
    state = await result(handle)
    assert state.status == "completed" and (state.exit_reason or "").startswith(
        "goal reached: meeting_booked"
    )
    assert recorder.steps() == []

    recorder.suppressed = True
    state = await result(
        await start(env.client, queue, sequence([{"type": "send", "id": "x", "template": "t"}]))
    )
    assert state.status == "exited" and state.exit_reason == "suppressed: email_unsubscribed"
    assert recorder.steps() == []


async def test_a_split_assigns_each_lead_the_same_variant_every_time(env, sends):
    recorder, queue = sends
    steps: list[dict[str, Any]] = [
        {
            "type": "split",
            "id": "subject",
            "variants": [{"name": "a", "weight": 50, "goto": "a"}, {"name": "b", "weight": 50, "goto": "b"}],
            "holdout_percent": 20,
        },
        {"type": "send", "id": "a", "template": "t-a", "next": "exit"},
        {"type": "send", "id": "b", "template": "t-b", "next": "exit"},
    ]
    seq = sequence(steps)
    chosen = {}
    for n in range(6):
        lead_id = f"lead-{n}"
        state = await result(await start(env.client, queue, seq, lead_id=lead_id))
        chosen[lead_id] = state.variants["subject"]
        expected = assign_variant(lead_id, seq.id, "subject", variants_of(seq, "subject"), 20)
        assert chosen[lead_id] == expected
    again = await result(
        await start(
            env.client, queue, seq.model_copy(update={"id": "test-seq"}), lead_id="lead-0", enrollment=2
        )
    )
    assert again.variants["subject"] == chosen["lead-0"]
    held_out = [lead for lead, variant in chosen.items() if variant == "holdout"]
    sent_templates = [data.template_id for _, _, data in recorder.sent]
    assert len(sent_templates) == 7 - len(held_out) - (1 if "lead-0" in held_out else 0)


async def test_a_sixty_day_sequence_continues_as_new_and_finishes(env, sends):
    recorder, queue = sends
    steps: list[dict[str, Any]] = []
    for n in range(8):
        steps.append({"type": "send", "id": f"send-{n}", "template": f"t{n}"})
        steps.append({"type": "wait", "id": f"wait-{n}", "duration": "8d"})
    seq = sequence(steps)
    started = await env.get_current_time()
    handle = await start(env.client, queue, seq, max_steps_per_run=3)
    first_run = handle.result_run_id
    state = await result(handle)
    assert state.status == "completed" and state.sends == 8
    assert recorder.steps() == [f"send-{n}" for n in range(8)]
    assert recorder.sent[-1][1] - started >= timedelta(days=56)
    history = await env.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
    assert history.events[-1].event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    # No send was repeated across runs: each key once.
    keys = [data.idempotency_key for _, _, data in recorder.sent]
    assert len(keys) == len(set(keys))


async def test_a_task_step_gives_the_owner_a_crm_task(env, sends):
    recorder, queue = sends
    seq = sequence(
        [
            {"type": "task", "id": "call", "subject": "Call {name}", "priority": "HIGH", "due_in": "2h"},
            {"type": "send", "id": "mail", "template": "t"},
        ],
        marketing=False,
    )
    started = await env.get_current_time()
    state = await result(await start(env.client, queue, seq, lead_context(owner_crm_id="owner-7")))
    assert state.status == "completed" and [e.kind for e in state.log][:2] == ["task", "sent"]
    _, task = recorder.tasks[0]
    assert task.owner_id == "owner-7" and task.priority == "HIGH" and task.subject == "Call {name}"
    assert timedelta(hours=2) <= task.due_at - started < timedelta(hours=2, minutes=5)
    assert task.idempotency_key.endswith(":call:1")
    assert recorder.reservations[-1].marketing is False
