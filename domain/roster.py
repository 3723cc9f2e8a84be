"""Who gets a hand-off: the sales roster as data, and the pure rules that pick a rep.

Sales ops edit `config/roster.toml`: the reps (time zone, working hours, out-of-office periods, territories,
segments, capacity, a cap on open hand-offs), the teams, the segment bands and the escalation policy.

The rule, in order:
1. A lead whose account already has an owner goes to that owner when the owner is available (active, inside
   their working hours, not out of office, not excluded). Ownership wins over territory, segment and the
   `max_open` cap: an owned account is not handed to a second rep.
2. Otherwise weighted round robin among the team's eligible reps (available, covering the lead's country and
   segment, not excluded, below `max_open`): the rep next due by capacity. See `choose`.
3. Nobody: `Choice(rep_id=None)`, with the reason; the caller puts the hand-off in the team's queue.

Everything here is pure and deterministic (workflows may call it): callers pass `now` and the reps' loads.
`load_roster` is the one function that reads a file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.hours import WeeklyHours
from domain.sequences import Duration

_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EscalationStep = Literal["next_rep", "manager", "team_queue"]
ACCOUNT_OWNER = "account owner"
DEFAULT_CHAIN: tuple[EscalationStep, ...] = ("next_rep", "manager", "team_queue")


class _Config(BaseModel):
    # Unknown keys are typos in a hand-edited file: refuse them instead of ignoring them.
    model_config = ConfigDict(extra="forbid")


def _slug(value: str) -> str:
    if not _SLUG.match(value) or len(value) > 64:
        raise ValueError(
            f"{value!r} is not an id: use lower-case letters and digits joined by '-' or '_' (at most 64)"
        )
    return value


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


# --- reps ------------------------------------------------------------------------------------------------


class WorkingHours(WeeklyHours):
    """When a rep takes hand-offs, in the rep's own zone: weekdays (0 = Monday .. 6 = Sunday), [start, end).

    Hours stay within one day (no overnight shifts). Being wall-clock times, they follow daylight saving:
    9:00 in New York is 13:00 UTC in summer and 14:00 UTC in winter.
    """

    local_times: ClassVar[str] = "the rep's local times"
    within: ClassVar[str] = "hours stay within a day"

    def contains(self, local: datetime) -> bool:
        """Whether `local` (a time already in the rep's zone) falls inside these hours."""
        return local.weekday() in self.days and self.start <= local.time() < self.end


class Period(_Config):
    """[start, end): an absence. Both instants carry their offset (a rep's file may write dates, see Rep)."""

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        for name in ("start", "end"):
            value: datetime = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(
                    f"{name} needs a time zone offset (e.g. 2025-12-24T00:00:00+01:00) or a date"
                )
        if self.start >= self.end:
            raise ValueError(f"start {self.start.isoformat()} must be before end {self.end.isoformat()}")
        return self

    def covers(self, now: datetime) -> bool:
        return self.start <= now < self.end


def _local_instant(value: Any, zone: ZoneInfo, *, end: bool) -> Any:
    """A date or naive date-time from the roster file as an instant in the rep's zone.

    A date means the whole day: a start date begins at its local midnight, an end date is included (the
    period ends at the next local midnight). A naive date-time is a wall-clock time where the rep is.
    """
    if isinstance(value, str):
        try:
            value = (
                datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
            )
        except ValueError:
            return value  # pydantic reports it
    if isinstance(value, datetime):
        return value.replace(tzinfo=zone) if value.tzinfo is None else value
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(0, 0), tzinfo=zone)
    return value


class Rep(_Config):
    """A person who takes hand-offs. `capacity` is a relative weight: a rep with 4 gets twice the leads of a
    rep with 2. `max_open` caps the hand-offs a rep holds open (None: no cap). Empty `territories` (ISO
    3166 alpha-2 country codes) or `segments` mean any."""

    id: str
    name: str = Field(min_length=1)
    email: EmailStr
    slack_user_id: str | None = None
    manager_id: str | None = None
    timezone: str
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    capacity: int = Field(default=1, ge=1)
    max_open: int | None = Field(default=None, ge=1)
    territories: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    out_of_office: list[Period] = Field(default_factory=list)
    active: bool = True

    @model_validator(mode="before")
    @classmethod
    def _periods_in_rep_zone(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("out_of_office"), list):
            return data
        try:
            zone = ZoneInfo(str(data.get("timezone")))
        except (ZoneInfoNotFoundError, ValueError):
            return data  # the timezone field reports it
        periods = [
            {
                **period,
                **{
                    key: _local_instant(period[key], zone, end=key == "end")
                    for key in ("start", "end")
                    if key in period
                },
            }
            if isinstance(period, dict)
            else period
            for period in data["out_of_office"]
        ]
        return {**data, "out_of_office": periods}

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _slug(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return value

    @field_validator("territories")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        codes = [item.strip().upper() for item in value]
        bad = [code for code in codes if not _COUNTRY.match(code)]
        if bad:
            raise ValueError(f"not ISO 3166 alpha-2 country codes: {', '.join(bad)} (GB, not UK)")
        return sorted(set(codes))

    @field_validator("segments")
    @classmethod
    def _segment_names(cls, value: list[str]) -> list[str]:
        return sorted({item.strip().casefold() for item in value})

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Team(_Config):
    id: str
    name: str = Field(min_length=1)
    reps: list[str] = Field(min_length=1)
    queue_slack_channel: str = Field(min_length=1)
    manager_id: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _slug(value)


class EscalationPolicy(_Config):
    """A hand-off not accepted within `sla` moves along `chain`, each step waiting `step_timeout`."""

    sla: Duration = timedelta(minutes=5)
    chain: list[EscalationStep] = Field(default_factory=lambda: list(DEFAULT_CHAIN))
    step_timeout: Duration = timedelta(minutes=5)

    @field_validator("chain")
    @classmethod
    def _not_empty(cls, value: list[EscalationStep]) -> list[EscalationStep]:
        if not value:
            raise ValueError("at least one step is needed (next_rep, manager, team_queue)")
        return value


class SegmentRule(_Config):
    """Leads with min_employees <= employees <= max_employees (both inclusive; no max: no upper bound)."""

    name: str
    min_employees: int = Field(default=0, ge=0)
    max_employees: int | None = Field(default=None, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _slug(value.strip().casefold())

    @model_validator(mode="after")
    def _ordered(self) -> SegmentRule:
        if self.max_employees is not None and self.min_employees > self.max_employees:
            raise ValueError(
                f"min_employees {self.min_employees} is above max_employees {self.max_employees}"
            )
        return self

    def holds(self, employees: int) -> bool:
        return self.min_employees <= employees and (
            self.max_employees is None or employees <= self.max_employees
        )


class Roster(_Config):
    version: int = Field(ge=1)
    reps: list[Rep] = Field(min_length=1)
    teams: list[Team] = Field(min_length=1)
    default_team: str
    segments: list[SegmentRule] = Field(default_factory=list)
    escalation: EscalationPolicy = Field(default_factory=EscalationPolicy)

    @model_validator(mode="after")
    def _references(self) -> Roster:
        problems: list[str] = []
        rep_ids = [rep.id for rep in self.reps]
        for index, rep_id in enumerate(rep_ids):
            if rep_id in rep_ids[:index]:
                problems.append(f"reps[{index}].id: rep id {rep_id!r} is used twice")
        known = set(rep_ids)
        team_ids = [team.id for team in self.teams]
        for index, team_id in enumerate(team_ids):
            if team_id in team_ids[:index]:
                problems.append(f"teams[{index}].id: team id {team_id!r} is used twice")
        names = [rule.name for rule in self.segments]
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append(f"segments[{index}].name: segment {name!r} is defined twice")
        ordered = sorted(self.segments, key=lambda rule: rule.min_employees)
        for low, high in pairwise(ordered):
            if low.max_employees is None or low.max_employees >= high.min_employees:
                problems.append(
                    f"segments: {low.name!r} and {high.name!r} overlap (a lead must fall in one segment)"
                )
        for index, rep in enumerate(self.reps):
            where = f"reps[{index}] (id {rep.id!r})"
            if rep.manager_id is not None and rep.manager_id not in known:
                problems.append(f"{where}.manager_id: {rep.manager_id!r} is not a rep id in this roster")
            if rep.manager_id == rep.id:
                problems.append(f"{where}.manager_id: a rep cannot be their own manager")
            for segment in rep.segments:
                if segment not in names:
                    defined = ", ".join(names) or "none are defined"
                    problems.append(f"{where}.segments: {segment!r} is not a segment ({defined})")
        for index, team in enumerate(self.teams):
            where = f"teams[{index}] (id {team.id!r})"
            for rep_id in team.reps:
                if rep_id not in known:
                    problems.append(f"{where}.reps: {rep_id!r} is not a rep id in this roster")
                elif team.reps.count(rep_id) > 1:
                    problems.append(f"{where}.reps: {rep_id!r} is listed twice")
            if team.manager_id is not None and team.manager_id not in known:
                problems.append(f"{where}.manager_id: {team.manager_id!r} is not a rep id in this roster")
        if self.default_team not in team_ids:
            problems.append(f"default_team: {self.default_team!r} is not a team id ({', '.join(team_ids)})")
        if problems:
            raise ValueError("; ".join(dict.fromkeys(problems)))
        return self

    def rep(self, rep_id: str) -> Rep | None:
        return next((rep for rep in self.reps if rep.id == rep_id), None)

    def team(self, team_id: str | None = None) -> Team:
        """The team by id; the default team when `team_id` is None or no longer in the roster."""
        wanted = team_id or self.default_team
        found = next((team for team in self.teams if team.id == wanted), None)
        return found or next(team for team in self.teams if team.id == self.default_team)

    def manager_of(self, rep_id: str, team_id: str | None = None) -> Rep | None:
        """The rep's manager, else the team's."""
        rep = self.rep(rep_id)
        manager_id = (rep.manager_id if rep else None) or self.team(team_id).manager_id
        return self.rep(manager_id) if manager_id else None


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    """An error's location as sales ops read it: `reps[2] (id 'ana').timezone`."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and key < len(node) else None
            label = f"[{key}]"
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                label += f" (id {node['id']!r})"
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts)


def parse_roster(text: str, *, source: str = "roster") -> Roster:
    """The roster in `text` (TOML); a bad one raises ValueError naming each bad field and its problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from exc
    return roster_from(data, source=source)


def roster_from(data: Any, *, source: str = "roster") -> Roster:
    """The roster in parsed data (TOML or the API's JSON), with the same field-named errors."""
    try:
        return Roster.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _where(tuple(error["loc"]), data)
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ValueError(f"{source}: " + "; ".join(problems)) from None


def load_roster(path: Path) -> Roster:
    """Reads the file (I/O: activities and start-up call this, never a workflow)."""
    return parse_roster(Path(path).read_text(encoding="utf-8"), source=str(path))


# --- routing ---------------------------------------------------------------------------------------------


class LeadRouting(BaseModel):
    """What routing looks at. `team` None means the roster's default team.

    A lead whose country (or size) is unknown goes only to reps without territories (or segments): a rep
    restricted to some countries is never handed a lead that may lie outside them.
    """

    lead_id: str
    country: str | None = None
    employees: int | None = Field(default=None, ge=0)
    account_id: str | None = None
    account_owner_id: str | None = None
    team: str | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip().upper() or None


class RepLoad(BaseModel):
    """A rep's counters: hand-offs ever assigned (the fairness count), hand-offs held open now."""

    assigned_total: int = Field(default=0, ge=0)
    open: int = Field(default=0, ge=0)
    last_assigned_at: datetime | None = None

    @field_validator("last_assigned_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Choice(BaseModel):
    rep_id: str | None
    reason: str


class AssignmentRecord(BaseModel):
    """A hand-off's assignment as persisted: its rep (None: the team's queue) for its latest attempt."""

    handoff_id: str
    lead_id: str
    rep_id: str | None
    queue: bool
    reason: str
    assigned_at: datetime
    accepted_at: datetime | None = None
    released_at: datetime | None = None
    attempt: int


def segment_of(roster: Roster, employees: int | None) -> str | None:
    """The segment whose employee band holds `employees`; None when unknown or in no band."""
    if employees is None:
        return None
    return next((rule.name for rule in roster.segments if rule.holds(employees)), None)


def _unavailable(rep: Rep, now: datetime) -> str | None:
    if not rep.active:
        return "inactive"
    if any(period.covers(now) for period in rep.out_of_office):
        return "out of office"
    if not rep.working_hours.contains(now.astimezone(rep.zone)):
        return "outside working hours"
    return None


def is_available(rep: Rep, now: datetime) -> bool:
    """Active, not out of office, and inside working hours on the rep's own wall clock."""
    return _unavailable(rep, _aware(now)) is None


def _covers(rep: Rep, country: str | None, segment: str | None) -> bool:
    if rep.territories and country not in rep.territories:
        return False
    return not rep.segments or segment in rep.segments


def eligible(
    roster: Roster, routing: LeadRouting, now: datetime, *, exclude: Collection[str] = frozenset()
) -> list[Rep]:
    """The team's reps who cover the lead's country and segment and are available now, by id."""
    _aware(now)
    segment = segment_of(roster, routing.employees)
    found = []
    for rep_id in sorted(roster.team(routing.team).reps):
        rep = roster.rep(rep_id)
        if rep is None or rep.id in exclude or not _covers(rep, routing.country, segment):
            continue
        if is_available(rep, now):
            found.append(rep)
    return found


def _at_cap(rep: Rep, load: RepLoad) -> bool:
    return rep.max_open is not None and load.open >= rep.max_open


def _owner_note(roster: Roster, routing: LeadRouting, now: datetime, exclude: Collection[str]) -> str:
    owner_id = routing.account_owner_id
    if not owner_id:
        return ""
    owner = roster.rep(owner_id)
    if owner is None:
        why = "is not in the roster"
    elif owner_id in exclude:
        why = "was excluded"
    else:
        why = _unavailable(owner, now) or "unavailable"
    return f"account owner {owner_id!r} {why}; "


def _nobody(
    roster: Roster,
    routing: LeadRouting,
    now: datetime,
    loads: Mapping[str, RepLoad],
    exclude: Collection[str],
) -> str:
    segment = segment_of(roster, routing.employees)
    counts: dict[str, int] = {}
    for rep_id in roster.team(routing.team).reps:
        rep = roster.rep(rep_id)
        if rep is None:
            continue
        if rep.id in exclude:
            why = "excluded"
        elif not _covers(rep, routing.country, segment):
            why = "not covering the lead"
        else:
            why = _unavailable(rep, now) or (
                "at max_open" if _at_cap(rep, loads.get(rep.id, RepLoad())) else "unavailable"
            )
        counts[why] = counts.get(why, 0) + 1
    detail = ", ".join(f"{count} {why}" for why, count in sorted(counts.items()))
    lead = f"country {routing.country or 'unknown'}, segment {segment or 'unknown'}"
    return f"no rep available ({lead}): {detail}"


def choose(
    roster: Roster,
    routing: LeadRouting,
    now: datetime,
    loads: Mapping[str, RepLoad],
    exclude: Collection[str] = frozenset(),
) -> Choice:
    """The rep for this hand-off, or None (the team's queue). Deterministic for the same arguments.

    1. The account owner, when available and not excluded (reason "account owner"); `max_open` does not
       apply to them, nor do territories and segments.
    2. Weighted round robin among `eligible` reps below `max_open` (a rep missing from `loads` has none):
       the rep next due by capacity. With n hand-offs counted among these reps and C their total capacity,
       a rep is due unless already ahead of its share (assigned_total * C > (n + 1) * capacity); of the due
       reps, the one with the lowest (assigned_total + 1) / capacity wins, ties to the earliest
       last_assigned_at (never first), then the lowest id. This is the quota method of apportionment:
       for reps who stay available, every rep's count stays within one hand-off of n * capacity / C at all
       times, which plain "lowest assigned_total / capacity" does not guarantee (with capacities 1, 1, 5
       it drifts up to 1.4 hand-offs from the capacity share, more with more reps).
    """
    now = _aware(now)
    owner_id = routing.account_owner_id
    owner = roster.rep(owner_id) if owner_id else None
    if owner is not None and owner.id not in exclude and is_available(owner, now):
        return Choice(rep_id=owner.id, reason=ACCOUNT_OWNER)
    note = _owner_note(roster, routing, now, exclude)
    candidates = [
        rep
        for rep in eligible(roster, routing, now, exclude=exclude)
        if not _at_cap(rep, loads.get(rep.id, RepLoad()))
    ]
    if not candidates:
        return Choice(rep_id=None, reason=note + _nobody(roster, routing, now, loads, exclude))
    counted = sum(loads.get(rep.id, RepLoad()).assigned_total for rep in candidates)
    total_capacity = sum(rep.capacity for rep in candidates)

    def assigned(rep: Rep) -> int:
        return loads.get(rep.id, RepLoad()).assigned_total

    # Never empty: the counts sum to `counted`, below (counted + 1) summed over the shares.
    due = [rep for rep in candidates if assigned(rep) * total_capacity <= (counted + 1) * rep.capacity]

    def order(rep: Rep) -> tuple[Fraction, bool, datetime, str]:
        last = loads.get(rep.id, RepLoad()).last_assigned_at
        return Fraction(assigned(rep) + 1, rep.capacity), last is not None, last or _EPOCH, rep.id

    chosen = min(due, key=order)
    return Choice(
        rep_id=chosen.id,
        reason=(
            f"{note}round robin: next due of {len(candidates)} eligible "
            f"(assigned {assigned(chosen)}, capacity {chosen.capacity})"
        ),
    )
