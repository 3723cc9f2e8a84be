"""Nurture sequences as data, and the pure rules for sending them: when, how often, which variant, which way.

A sequence is a list of steps (send, wait, wait until an event, branch, split, exit) that marketing ops edit
in `config/sequences/*.toml`. The lead's workflow interprets a validated `SequenceDefinition` as a step
machine; it keeps the definition it enrolled with, so a new `version` only changes new enrollments.

Everything here is pure and deterministic (it runs inside workflows): callers pass `now`, nothing is random
(`assign_variant` hashes ids), and time zones come from the standard library's `zoneinfo`. `load_sequences`
is the one function that reads files; it is called at start-up, never from a workflow."""

from __future__ import annotations

import hashlib
import re
import tomllib
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.events import EventType
from domain.hours import WeeklyHours
from domain.send_gate import SendPurpose
from domain.stages import LifecycleStage

EXIT = "exit"
HOLDOUT = "holdout"
SCORE_BANDS = ("cold", "warm", "hot")
ENGAGEMENT_LEVELS = ("low", "medium", "high")
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


# --- durations -------------------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SHORT = re.compile(r"^(?:\d+[smhdw])+$")
_SHORT_PART = re.compile(r"(\d+)([smhdw])")
_ISO = re.compile(
    r"^(?P<sign>-)?P(?:(?P<y>\d+)Y)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """'30m', '4h', '2d', '1w', '1d12h', or ISO 8601 ('P2D', 'PT4H', 'P1DT1.5S') as a timedelta.

    A year ('P1Y35D') is 365 days, as pydantic writes a timedelta of 365 days or more; months have
    no fixed length and are refused."""
    value = text.strip()
    if _SHORT.match(value):
        return timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in _SHORT_PART.findall(value)))
    iso = _ISO.match(value)
    if iso and value not in ("P", "-P") and not value.endswith("T"):
        parts = iso.groupdict()
        total = timedelta(
            weeks=int(parts["w"] or 0),
            days=365 * int(parts["y"] or 0) + int(parts["d"] or 0),
            hours=int(parts["h"] or 0),
            minutes=int(parts["m"] or 0),
            seconds=float(parts["s"] or 0),
        )
        return -total if parts["sign"] else total
    if re.match(r"^-?P[^T]*M", value):
        raise ValueError(f"{text!r}: months have no fixed length; use days or weeks (e.g. '30d')")
    raise ValueError(f"{text!r} is not a duration; write e.g. '30m', '4h', '2d', '1w' or ISO 8601 'P2D'")


def _positive_duration(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ValueError(f'write the duration as text, e.g. "{value}d" or "{value}h", not a bare number')
    if isinstance(value, str):
        value = parse_duration(value)
    if isinstance(value, timedelta) and value <= timedelta(0):
        raise ValueError("the duration must be longer than zero")
    return value


# A wait or timeout: text such as "2d" in TOML, a timedelta in code, ISO 8601 in JSON (what pydantic writes).
Duration = Annotated[timedelta, BeforeValidator(_positive_duration)]


class _Config(BaseModel):
    # Unknown keys are typos in a hand-edited file: refuse them instead of ignoring them.
    model_config = ConfigDict(extra="forbid")


# --- matching and conditions -----------------------------------------------------------------------------


def _same_text(actual: Any, expected: str) -> bool:
    if isinstance(actual, bool):
        actual = "true" if actual else "false"
    return actual is not None and str(actual).strip().casefold() == expected.strip().casefold()


class EventMatch(_Config):
    """An event to wait for or to count as the goal: its type, optionally its name and property values.

    The name and property values compare case-insensitively; every listed property must be present and equal.
    """

    type: EventType
    name: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)

    def matches(self, event_type: str, name: str | None, properties: dict[str, Any]) -> bool:
        if str(event_type) != self.type.value:
            return False
        if self.name is not None and (name is None or not _same_text(name, self.name)):
            return False
        return all(_same_text(properties.get(key), value) for key, value in self.properties.items())


ConditionField = Literal[
    "score_band", "engagement", "preferred_topic", "stage", "score", "email_clicks", "lead_source", "country"
]
_NUMERIC_FIELDS = frozenset({"score", "email_clicks"})


def _stages() -> tuple[str, ...]:
    return tuple(stage.value for stage in LifecycleStage)


def _known_values(field: str) -> tuple[str, ...] | None:
    if field == "stage":
        return _stages()
    return {"engagement": ENGAGEMENT_LEVELS, "score_band": SCORE_BANDS}.get(field)


class Condition(_Config):
    """One test on the lead: `score gte 70`, `preferred_topic in [security, analytics]`, `stage ne mql`.

    Text comparisons ignore case. `gte`/`lte` are for the numeric fields (score, email_clicks); `in` takes a
    list and is for the text fields.
    """

    field: ConditionField
    op: Literal["eq", "ne", "in", "gte", "lte"] = "eq"
    value: str | int | list[str]

    @model_validator(mode="after")
    def _fits_field(self) -> Condition:
        numeric = self.field in _NUMERIC_FIELDS
        if numeric and isinstance(self.value, str) and self.value.strip().lstrip("-").isdigit():
            self.value = int(self.value)
        if self.op == "in":
            if numeric:
                raise ValueError(f"condition on {self.field}: 'in' is for text fields; use gte or lte")
            if not isinstance(self.value, list):
                raise ValueError(f"condition on {self.field}: 'in' needs a list of values")
        elif isinstance(self.value, list):
            raise ValueError(f"condition on {self.field}: a list of values needs op 'in', not {self.op!r}")
        elif numeric != (isinstance(self.value, int) and not isinstance(self.value, bool)):
            kind = "a whole number" if numeric else "text"
            raise ValueError(f"condition on {self.field}: the value must be {kind}, got {self.value!r}")
        elif self.op in ("gte", "lte") and not numeric:
            raise ValueError(f"condition on {self.field}: {self.op!r} is for score or email_clicks only")
        known = _known_values(self.field)
        if known is not None:
            for item in self.value if isinstance(self.value, list) else [str(self.value)]:
                if item.casefold() not in known:
                    raise ValueError(f"condition on {self.field}: {item!r} is not one of {', '.join(known)}")
        return self


class LeadContext(BaseModel):
    """What a branch may look at, as the lead's workflow knows it when the branch is reached."""

    stage: str
    score: int
    score_band: str
    engagement: Literal["low", "medium", "high"]
    preferred_topic: str | None = None
    email_clicks: int = 0
    lead_source: str | None = None
    country: str | None = None
    timezone: str | None = None
    # The CRM owner (the rep who accepted the lead): tasks of a sales sequence are theirs.
    owner_crm_id: str | None = None


def _holds(condition: Condition, context: LeadContext) -> bool:
    actual = getattr(context, condition.field)
    expected = condition.value
    if condition.op in ("gte", "lte"):
        assert isinstance(expected, int)
        return actual >= expected if condition.op == "gte" else actual <= expected
    if condition.op == "in":
        assert isinstance(expected, list)
        return any(_same_text(actual, item) for item in expected)
    if condition.field in _NUMERIC_FIELDS:
        equal = actual == expected
    else:
        equal = _same_text(actual, str(expected))
    return equal if condition.op == "eq" else not equal


def evaluate(conditions: list[Condition], context: LeadContext) -> bool:
    """True when every condition holds (an empty list holds). A missing value equals nothing."""
    return all(_holds(condition, context) for condition in conditions)


# --- steps -----------------------------------------------------------------------------------------------


class _StepBase(_Config):
    id: str

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if value == EXIT:
            raise ValueError("'exit' is reserved (it is the goto that ends the sequence)")
        if not _STEP_ID.match(value):
            raise ValueError(f"step id {value!r}: use lower-case letters, digits, '-' and '_' (at most 64)")
        return value

    def targets(self) -> list[str | None]:
        """Every step id (or "exit", or None for "the step after this one") this step may go to."""
        return []


class SendStep(_StepBase):
    type: Literal["send"] = "send"
    template: str = Field(min_length=1)
    subject: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    next: str | None = None

    def targets(self) -> list[str | None]:
        return [self.next]


class TaskStep(_StepBase):
    """A task for the lead's owner in the CRM (a call, an email to write, a to-do), due after `due_in`."""

    type: Literal["task"] = "task"
    subject: str = Field(min_length=1)
    body: str = ""
    due_in: Duration | None = None
    priority: Literal["LOW", "MEDIUM", "HIGH"] = "MEDIUM"
    next: str | None = None

    def targets(self) -> list[str | None]:
        return [self.next]


class WaitStep(_StepBase):
    type: Literal["wait"] = "wait"
    duration: Duration
    next: str | None = None

    def targets(self) -> list[str | None]:
        return [self.next]


class WaitUntilStep(_StepBase):
    """Wait for an event, at most `timeout`; go to `on_event` or `on_timeout` (None: the step after this)."""

    type: Literal["wait_until"] = "wait_until"
    event: EventMatch
    timeout: Duration
    on_event: str | None = None
    on_timeout: str | None = None

    def targets(self) -> list[str | None]:
        return [self.on_event, self.on_timeout]


class BranchCase(_Config):
    when: list[Condition] = Field(min_length=1)
    goto: str


class BranchStep(_StepBase):
    """The first case whose conditions all hold wins; else `otherwise` (None: the step after this)."""

    type: Literal["branch"] = "branch"
    cases: list[BranchCase] = Field(min_length=1)
    otherwise: str | None = None

    def targets(self) -> list[str | None]:
        return [*(case.goto for case in self.cases), self.otherwise]


class Variant(_Config):
    name: str = Field(min_length=1)
    weight: int = Field(gt=0)
    goto: str


class SplitStep(_StepBase):
    """An A/B(/n) test: each lead lands, for good, in one variant or in the holdout.

    Held-out leads go to `holdout_goto`; left out, they leave the sequence ("exit"), not fall through to
    the next step (which is usually the first variant's).
    """

    type: Literal["split"] = "split"
    variants: list[Variant] = Field(min_length=1)
    holdout_percent: int = Field(default=0, ge=0, le=50)
    holdout_goto: str | None = None

    @model_validator(mode="after")
    def _names_and_holdout(self) -> SplitStep:
        names = [variant.name for variant in self.variants]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"split step {self.id!r}: variant name {name!r} is used twice")
            if name == HOLDOUT:
                raise ValueError(f"split step {self.id!r}: variant name 'holdout' is reserved")
        return self

    def targets(self) -> list[str | None]:
        return [*(variant.goto for variant in self.variants), self.holdout_goto]


class ExitStep(_StepBase):
    type: Literal["exit"] = "exit"
    reason: str = "completed"


Step = Annotated[
    SendStep | TaskStep | WaitStep | WaitUntilStep | BranchStep | SplitStep | ExitStep,
    Field(discriminator="type"),
]
_PAUSING = (WaitStep, WaitUntilStep)


def choose_branch(step: BranchStep, context: LeadContext) -> str:
    """The goto of the first case that holds, else `otherwise`.

    In a `SequenceDefinition` `otherwise` is always set (an empty one is resolved to the following step at
    load); a bare step without it falls through to "exit".
    """
    for case in step.cases:
        if evaluate(case.when, context):
            return case.goto
    return step.otherwise if step.otherwise is not None else EXIT


def assign_variant(
    lead_id: str, sequence_id: str, step_id: str, variants: list[Variant], holdout_percent: int
) -> str:
    """The lead's variant name, or "holdout": the same answer for the same ids, in any process, forever.

    sha256 of the three ids gives a bucket 0..99; the first `holdout_percent` buckets are the holdout, the
    rest are shared out by cumulative weight.
    """
    if not variants:
        raise ValueError("a split needs at least one variant")
    if not 0 <= holdout_percent <= 100:
        raise ValueError("holdout_percent must be within 0..100")
    digest = hashlib.sha256("\x1f".join((lead_id, sequence_id, step_id)).encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    if bucket < holdout_percent:
        return HOLDOUT
    total = sum(variant.weight for variant in variants)
    position = (bucket - holdout_percent) * total
    span = 100 - holdout_percent
    cumulative = 0
    for variant in variants:
        cumulative += variant.weight
        if position < cumulative * span:
            return variant.name
    return variants[-1].name


# --- the sequence ----------------------------------------------------------------------------------------


class SendWindow(WeeklyHours):
    """When sends may go out, in the lead's local time: weekdays (0 = Monday .. 6 = Sunday), [start, end)."""

    local_times: ClassVar[str] = "local times of the lead"
    within: ClassVar[str] = "windows stay within a day"


class Trigger(_Config):
    """What enrolls a lead. `form_id` narrows form_abandoned to one form, `topic` content_downloaded."""

    kind: Literal["manual", "lead_created", "form_abandoned", "content_downloaded"]
    form_id: str | None = None
    topic: str | None = None

    @model_validator(mode="after")
    def _narrowing_fits(self) -> Trigger:
        if self.form_id is not None and self.kind != "form_abandoned":
            raise ValueError(f"form_id only applies to kind 'form_abandoned', not {self.kind!r}")
        if self.topic is not None and self.kind != "content_downloaded":
            raise ValueError(f"topic only applies to kind 'content_downloaded', not {self.kind!r}")
        return self


class SequenceDefinition(_Config):
    """One version of a sequence. Validated whole at load; implicit gotos (None) are resolved to the step
    that follows in the list (or "exit" after the last; a split's holdout_goto to "exit"), so a loaded
    definition's gotos are never None."""

    id: str
    version: int = Field(ge=1)
    name: str = Field(min_length=1)
    description: str = ""
    trigger: Trigger
    reentry: Literal["never", "after_exit", "always"] = "after_exit"
    pause_on_stages: list[str] = Field(default_factory=lambda: ["mql", "sql"])
    exit_on_stages: list[str] = Field(default_factory=lambda: ["customer", "disqualified"])
    resume_on_stages: list[str] = Field(default_factory=lambda: ["recycled"])
    send_window: SendWindow = Field(default_factory=SendWindow)
    goal: EventMatch | None = None
    marketing: bool = True
    # What its emails are for, at the send gate (domain.send_gate); unset: marketing when
    # `marketing`, else sales (one-to-one).
    purpose: SendPurpose | None = None
    steps: list[Step]

    @property
    def send_purpose(self) -> SendPurpose:
        return self.purpose or ("marketing" if self.marketing else "sales")

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"{value!r} is not a slug (lower-case letters and digits, joined by '-' or '_')")
        return value

    @field_validator("pause_on_stages", "exit_on_stages", "resume_on_stages")
    @classmethod
    def _stages(cls, stages: list[str]) -> list[str]:
        known = _stages()
        for stage in stages:
            if stage not in known:
                raise ValueError(f"{stage!r} is not a lifecycle stage ({', '.join(known)})")
        return stages

    @model_validator(mode="after")
    def _graph(self) -> SequenceDefinition:
        if not self.steps:
            raise ValueError("steps: a sequence needs at least one step")
        for first, second in (
            ("pause_on_stages", "exit_on_stages"),
            ("pause_on_stages", "resume_on_stages"),
            ("exit_on_stages", "resume_on_stages"),
        ):
            both = sorted(set(getattr(self, first)) & set(getattr(self, second)))
            if both:
                raise ValueError(f"stage {both[0]!r} is in both {first} and {second}")
        ids = [step.id for step in self.steps]
        for index, step_id in enumerate(ids):
            if step_id in ids[:index]:
                earlier = ids.index(step_id) + 1
                raise ValueError(f"step id {step_id!r} is used twice (steps {earlier} and {index + 1})")
        known = set(ids)
        for step in self.steps:
            for target in step.targets():
                if target is not None and target != EXIT and target not in known:
                    raise ValueError(
                        f'step {step.id!r} goes to {target!r}, which is not a step id (nor "exit")'
                    )
        self._resolve_implicit_gotos()
        self._refuse_loops_without_pause()
        return self

    def _resolve_implicit_gotos(self) -> None:
        # Copies, so that a step object shared with another definition keeps its own gotos.
        self.steps = [step.model_copy(deep=True) for step in self.steps]
        for step in self.steps:
            after = self.following(step.id)
            if isinstance(step, SendStep | TaskStep | WaitStep):
                if step.next is None:
                    step.next = after
            elif isinstance(step, WaitUntilStep):
                if step.on_event is None:
                    step.on_event = after
                if step.on_timeout is None:
                    step.on_timeout = after
            elif isinstance(step, BranchStep):
                if step.otherwise is None:
                    step.otherwise = after
            elif isinstance(step, SplitStep) and step.holdout_goto is None:
                step.holdout_goto = EXIT

    def _refuse_loops_without_pause(self) -> None:
        """A loop through sends and branches alone would mail the lead as fast as the workflow can run."""
        edges = {
            step.id: [t for t in step.targets() if t is not None and t != EXIT]
            for step in self.steps
            if not isinstance(step, _PAUSING)
        }
        state: dict[str, int] = {}  # 1: on the current path, 2: done

        def visit(node: str, path: list[str]) -> list[str] | None:
            state[node] = 1
            path.append(node)
            for target in edges[node]:
                if target not in edges:
                    continue
                if state.get(target) == 1:
                    return [*path[path.index(target) :], target]
                if target not in state:
                    found = visit(target, path)
                    if found:
                        return found
            path.pop()
            state[node] = 2
            return None

        for node in edges:
            if node not in state:
                loop = visit(node, [])
                if loop:
                    shown = " -> ".join(repr(n) for n in loop)
                    raise ValueError(
                        f"steps {shown} loop without a wait or wait_until step: it would send without pause"
                    )

    def step(self, step_id: str) -> Step:
        for candidate in self.steps:
            if candidate.id == step_id:
                return candidate
        raise KeyError(f"sequence {self.id!r} v{self.version} has no step {step_id!r}")

    @property
    def first_step_id(self) -> str:
        return self.steps[0].id

    def following(self, step_id: str) -> str:
        """The step after `step_id` in the list, or "exit" after the last one."""
        for index, candidate in enumerate(self.steps):
            if candidate.id == step_id:
                return self.steps[index + 1].id if index + 1 < len(self.steps) else EXIT
        raise KeyError(f"sequence {self.id!r} v{self.version} has no step {step_id!r}")


def _describe(error: Any, raw: dict[str, Any]) -> str:
    """One pydantic error as "<where>: <what>", a step named by its id rather than its position."""
    location: list[str] = []
    loc = list(error["loc"])
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = raw.get("steps")
        index = loc[1]
        step_id = None
        if isinstance(steps, list) and index < len(steps) and isinstance(steps[index], dict):
            step_id = steps[index].get("id")
        location.append(f"step {step_id!r}" if step_id else f"step {index + 1}")
        loc = loc[2:]
        if loc and loc[0] in ("send", "wait", "wait_until", "branch", "split", "exit"):
            loc = loc[1:]
    parts = [*location, ".".join(str(part) for part in loc)] if loc else location
    message = str(error["msg"]).removeprefix("Value error, ")
    where = " ".join(part for part in parts if part)
    return f"{where}: {message}" if where else message


def load_sequences(directory: Path) -> dict[str, SequenceDefinition]:
    """Every `*.toml` in `directory`, by sequence id; of several versions of one id, the highest wins.

    A bad file raises ValueError naming the file, the step and the field.
    """
    if not directory.is_dir():
        raise ValueError(f"{directory}: not a directory of sequence files")
    found: dict[str, tuple[SequenceDefinition, Path]] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path.name}: not valid TOML: {exc}") from exc
        try:
            definition = SequenceDefinition.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(_describe(error, raw) for error in exc.errors())
            raise ValueError(f"{path.name}: {problems}") from exc
        seen = found.get(definition.id)
        if seen and seen[0].version == definition.version:
            raise ValueError(
                f"{path.name}: sequence {definition.id!r} version {definition.version} "
                f"is also defined in {seen[1].name}"
            )
        if seen is None or definition.version > seen[0].version:
            found[definition.id] = (definition, path)
    return {sequence_id: definition for sequence_id, (definition, _) in found.items()}


# --- when and how often ----------------------------------------------------------------------------------


def _zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _first_instant_at_or_after(day: date, wall: time, zone: tzinfo) -> datetime:
    """The first instant whose local wall-clock time on `day` reads `wall` or later.

    An ambiguous time (clocks fell back) is its first occurrence; a time skipped when clocks sprang forward
    becomes the instant the clocks jumped (e.g. 02:30 on a 02:00 -> 03:00 day is 03:00).
    """
    local = datetime.combine(day, wall, tzinfo=zone)  # fold=0: the first occurrence
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # In a gap. fold=1 reads the wall time with the offset after the jump, which lands before the jump;
    # the jump itself lies between the two readings: find it to the second.
    low, high = sorted((int(local.replace(fold=1).timestamp()), int(instant.timestamp())))
    after = instant.astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def next_send_time(now: datetime, tz: str | None, window: SendWindow) -> datetime:
    """The earliest instant at or after `now` inside `window` in the lead's local time (UTC if unknown)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    zone = _zone(tz)
    today = now.astimezone(zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        opens = _first_instant_at_or_after(day, window.start, zone)
        closes = _first_instant_at_or_after(day, window.end, zone)
        if now < closes and opens < closes:
            return max(now, opens)
    raise AssertionError("a window with at least one weekday always opens within a week")


class FrequencyCap(_Config):
    """At most `max_sends` marketing sends in any sliding period of `per`."""

    max_sends: int = Field(default=3, ge=1)
    per: Duration = timedelta(days=7)


def frequency_wait(sent_at: list[datetime], now: datetime, cap: FrequencyCap) -> datetime | None:
    """None when one more send is allowed now; else the earliest instant it will be.

    A send at `t` counts against the cap while `now < t + per`.
    """
    recent = sorted(at for at in sent_at if at > now - cap.per)
    if len(recent) < cap.max_sends:
        return None
    return recent[len(recent) - cap.max_sends] + cap.per


# --- enrollment ------------------------------------------------------------------------------------------


class EnrollmentRecord(BaseModel):
    sequence_id: str
    version: int
    status: Literal["active", "paused", "completed", "exited"]
    ended_at: datetime | None = None


def may_enroll(reentry: Literal["never", "after_exit", "always"], history: list[EnrollmentRecord]) -> bool:
    """Whether a lead with these earlier enrollments (of this sequence) may be enrolled again.

    never: only if it never was; after_exit: if none is still active or paused; always: yes.
    """
    if reentry == "never":
        return not history
    if reentry == "after_exit":
        return all(record.status not in ("active", "paused") for record in history)
    return True
