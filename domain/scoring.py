"""Lead scoring as data: rules from `config/scoring.toml`, a bounded scorecard, decay, ICP fit, the MQL rule.

Everything here is pure and deterministic (it runs inside the lead's workflow): callers pass the time.
The one exception is `load_scoring`, which reads the file; workflows get the parsed `ScoringConfig` from
an activity or their input, never by calling it.
"""

from __future__ import annotations

import math
import re
import tomllib
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.events import EventType, LeadEvent

Category = Literal["email", "content", "web", "form", "event", "negative"]
Dimension = Literal["industry", "employees", "seniority", "country"]
Band = Literal["cold", "warm", "hot"]

SUPPORTED_VERSION = 1
# Bounds of the scorecard, which the lead's workflow carries through continue-as-new.
SCORECARD_DAYS = 400
CONTENT_KEPT = 200
TOPICS_KEPT = 50
FLAGS_KEPT = 20
CONTENT_ID_LENGTH = 200
TOPIC_LENGTH = 100
# The rule id of a hit that only sets a flag (an unsubscribe no rule scores): it never adds points.
FLAG_ONLY_RULE = "_flag"
FLAG_OF_EVENT = {
    EventType.EMAIL_UNSUBSCRIBED: "unsubscribed",
    EventType.EMAIL_BOUNCED: "bounced",
    EventType.EMAIL_SPAM_COMPLAINT: "spam_complaint",
}


class _Config(BaseModel):
    """Config models refuse unknown keys: a misspelt key in the TOML file is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


def _text(value: Any) -> str | None:
    """A property value as comparable text: strings, numbers and booleans; anything else is no value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatchcase(value.strip().casefold(), pattern.strip().casefold())


class ScoringRule(_Config):
    """Points for every event that matches all of the rule's conditions."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    event: EventType
    name: str | None = None
    path: str | None = None
    form_id: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    points: int
    category: Category
    max_per_day: int | None = Field(default=None, ge=1)
    content_id_property: str | None = None
    topic_property: str | None = None

    @field_validator("properties", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: _text(item) if isinstance(item, bool | int | float) else item
                for key, item in value.items()
            }
        return value

    @model_validator(mode="after")
    def _negative_takes_points(self) -> ScoringRule:
        if self.category == "negative" and self.points >= 0:
            raise ValueError(f"points: a rule of category 'negative' needs points below 0, not {self.points}")
        return self

    def matches(self, event: LeadEvent) -> bool:
        if event.type is not self.event:
            return False
        if self.name is not None and not _glob(event.name, self.name):
            return False
        if self.form_id is not None and not _glob(event.form_id, self.form_id):
            return False
        if self.path is not None and not _glob(_path_of(event), self.path):
            return False
        for key, expected in self.properties.items():
            actual = _text(event.properties.get(key))
            if actual is None or actual.casefold() != expected.strip().casefold():
                return False
        return True


def _path_of(event: LeadEvent) -> str | None:
    path = event.properties.get("path")
    if not isinstance(path, str) or not path:
        path = event.touch.path
    if not path:
        return None
    return path.split("?", 1)[0].split("#", 1)[0]


class Seniority(StrEnum):
    C_LEVEL = "c_level"
    VP = "vp"
    DIRECTOR = "director"
    MANAGER = "manager"
    INDIVIDUAL = "individual"
    UNKNOWN = "unknown"


DIMENSIONS: tuple[Dimension, ...] = ("industry", "employees", "seniority", "country")


class IcpDefinition(_Config):
    """The ideal customer profile. A dimension left empty is not assessed (neither matched nor missing)."""

    industries: list[str] = Field(default_factory=list)
    min_employees: int | None = Field(default=None, ge=0)
    max_employees: int | None = Field(default=None, ge=0)
    seniorities: list[Seniority] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    points: dict[Dimension, int] = Field(default_factory=dict)
    fit_min_matches: int = Field(default=0, ge=0)

    @field_validator("industries")
    @classmethod
    def _industries(cls, value: list[str]) -> list[str]:
        return [_norm(item) for item in value if item.strip()]

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        codes = [item.strip().upper() for item in value]
        bad = [code for code in codes if not re.fullmatch(r"[A-Z]{2}", code)]
        if bad:
            raise ValueError(f"not ISO 3166 alpha-2 codes: {', '.join(bad)}")
        return codes

    @model_validator(mode="after")
    def _consistent(self) -> IcpDefinition:
        low, high = self.min_employees, self.max_employees
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_employees {low} is above max_employees {high}")
        assessed = len(self.assessed_dimensions())
        if self.fit_min_matches > assessed:
            raise ValueError(
                f"fit_min_matches {self.fit_min_matches} is more than the {assessed} dimensions defined"
            )
        return self

    def assessed_dimensions(self) -> list[Dimension]:
        defined = {
            "industry": bool(self.industries),
            "employees": self.min_employees is not None or self.max_employees is not None,
            "seniority": bool(self.seniorities),
            "country": bool(self.countries),
        }
        return [dimension for dimension in DIMENSIONS if defined[dimension]]


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _domain(text: str) -> str:
    return text.strip().lstrip("@").rstrip(".").casefold()


class DomainLists(_Config):
    free_mail: list[str] = Field(default_factory=list)
    competitors: list[str] = Field(default_factory=list)
    free_mail_points: int = 0
    competitor_points: int = 0

    @field_validator("free_mail", "competitors")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [_domain(item) for item in value if item.strip()]


class MqlRule(_Config):
    email_engagement_min: int = Field(default=70, ge=0)
    content_min: int = Field(default=3, ge=0)
    sessions_min: int = Field(default=5, ge=0)
    require_icp_fit: bool = True


class ScoreBands(_Config):
    warm: int = Field(default=30, ge=0)
    hot: int = Field(default=70, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ScoreBands:
        if self.warm > self.hot:
            raise ValueError(f"warm {self.warm} is above hot {self.hot}")
        return self


class EngagementBands(_Config):
    """What a nurture's branch calls the lead's email engagement: low, medium, high."""

    medium: int = Field(default=30, ge=0)
    high: int = Field(default=70, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> EngagementBands:
        if self.medium > self.high:
            raise ValueError(f"medium {self.medium} is above high {self.high}")
        return self


Engagement = Literal["low", "medium", "high"]


def engagement_of(bands: EngagementBands, email_engagement: int) -> Engagement:
    if email_engagement >= bands.high:
        return "high"
    if email_engagement >= bands.medium:
        return "medium"
    return "low"


class ScoringConfig(_Config):
    version: int
    half_life_days: float = Field(ge=0)
    email_engagement_cap: int = Field(default=100, ge=0)
    rules: list[ScoringRule] = Field(default_factory=list)
    icp: IcpDefinition
    domains: DomainLists = Field(default_factory=DomainLists)
    mql: MqlRule = Field(default_factory=MqlRule)
    bands: ScoreBands = Field(default_factory=ScoreBands)
    engagement: EngagementBands = Field(default_factory=EngagementBands)

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SUPPORTED_VERSION:
            raise ValueError(f"version {value} is not supported (this build reads {SUPPORTED_VERSION})")
        return value

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, value: list[ScoringRule]) -> list[ScoringRule]:
        seen: set[str] = set()
        for rule in value:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used more than once")
            seen.add(rule.id)
        return value

    def rule(self, rule_id: str) -> ScoringRule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    """An error's location as marketing ops read it: `rules[2] (id 'pricing').points`."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                label += f" (id {node['id']!r})"
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(file)"


def parse_scoring(text: str, *, source: str = "scoring config") -> ScoringConfig:
    """The config in `text`; a bad one raises ValueError naming each bad field and its problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return ScoringConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_where(tuple(error['loc']), data)}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        ]
        raise ValueError(f"{source}: " + "; ".join(problems)) from None


def load_scoring(path: Path) -> ScoringConfig:
    """Reads the file (I/O: activities and the API call this, never a workflow)."""
    return parse_scoring(path.read_text(encoding="utf-8"), source=str(path))


class FirmographicProfile(BaseModel):
    """What the database knows about the lead's company and role; the email's domain only, no address."""

    email_domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    job_title: str | None = None
    country: str | None = None


class FitResult(BaseModel):
    fit: bool
    points: int
    matched: list[str]
    missing: list[str]
    seniority: Seniority
    free_mail: bool
    competitor: bool


class ScoreHit(BaseModel):
    rule_id: str
    category: Category
    points: int
    content_id: str | None = None
    topic: str | None = None
    # Set on every hit of an event that flags the lead (unsubscribed, bounced, spam_complaint).
    flag: str | None = None


class DayPoints(BaseModel):
    """One rule's points on one UTC day, aggregated."""

    day: date
    rule_id: str
    category: Category
    points: int
    hits: int


def _utc_day(at: datetime) -> date:
    return (at.astimezone(UTC) if at.tzinfo is not None else at).date()


class Scorecard(BaseModel):
    """A lead's scoring state. Bounded: it lives in the lead workflow's state through continue-as-new."""

    days: list[DayPoints] = Field(default_factory=list)
    content_consumed: list[str] = Field(default_factory=list)
    topics: dict[str, int] = Field(default_factory=dict)
    fit: FitResult | None = None
    flags: list[str] = Field(default_factory=list)

    def apply(self, hits: list[ScoreHit], at: datetime, config: ScoringConfig) -> list[ScoreHit]:
        """Adds the hits of an event that happened `at`; returns those that scored.

        `max_per_day` counts per rule per UTC day. Only the last SCORECARD_DAYS days are kept, counted back
        from the newest day seen: callers clamp `at` to their own `now`, so a device's clock set years ahead
        cannot push the history out. Content, topics and flags are recorded even when points are capped.
        """
        day = _utc_day(at)
        newest = max([entry.day for entry in self.days] + [day])
        oldest = newest - timedelta(days=SCORECARD_DAYS - 1)
        scored: list[ScoreHit] = []
        for hit in hits:
            if hit.flag:
                self.add_flag(hit.flag)
            if hit.content_id:
                self._consumed(hit.content_id)
            if hit.topic:
                self._topic(hit.topic)
            if hit.rule_id == FLAG_ONLY_RULE or day < oldest:
                continue
            entry = next((e for e in self.days if e.day == day and e.rule_id == hit.rule_id), None)
            rule = config.rule(hit.rule_id)
            limit = rule.max_per_day if rule is not None else None
            if entry is not None and limit is not None and entry.hits >= limit:
                continue
            if entry is None:
                entry = DayPoints(day=day, rule_id=hit.rule_id, category=hit.category, points=0, hits=0)
                self.days.append(entry)
            entry.points += hit.points
            entry.hits += 1
            scored.append(hit)
        self.days = sorted((e for e in self.days if e.day >= oldest), key=lambda e: (e.day, e.rule_id))
        return scored

    def set_fit(self, fit: FitResult) -> None:
        self.fit = fit
        for flag, on in (("competitor", fit.competitor), ("free_mail", fit.free_mail)):
            if on:
                self.add_flag(flag)
            elif flag in self.flags:
                self.flags.remove(flag)

    def add_flag(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
            del self.flags[:-FLAGS_KEPT]

    def preferred_topic(self) -> str | None:
        """The topic seen most often; ties go to the alphabetically first, so the answer is stable."""
        if not self.topics:
            return None
        return min(self.topics.items(), key=lambda item: (-item[1], item[0]))[0]

    def _consumed(self, content_id: str) -> None:
        if content_id in self.content_consumed:
            self.content_consumed.remove(content_id)
        self.content_consumed.append(content_id)
        del self.content_consumed[:-CONTENT_KEPT]

    def _topic(self, topic: str) -> None:
        if topic not in self.topics and len(self.topics) >= TOPICS_KEPT:
            weakest = min(self.topics.items(), key=lambda item: (item[1], item[0]))[0]
            del self.topics[weakest]
        self.topics[topic] = self.topics.get(topic, 0) + 1


class ScoreTotals(BaseModel):
    email_engagement: int
    content_pieces: int
    content: int
    web: int
    form: int
    event: int
    negative: int
    fit: int
    sessions: int
    total: int
    band: Band


class MqlDecision(BaseModel):
    qualified: bool
    met: list[str]
    missing: list[str]


def _property_text(event: LeadEvent, key: str | None, length: int) -> str | None:
    if key is None:
        return None
    value = event.properties.get(key)
    text = None if isinstance(value, bool) else _text(value)
    return text[:length] if text else None


def score_event(config: ScoringConfig, event: LeadEvent) -> list[ScoreHit]:
    """A hit for every rule the event matches; a flagging event with no rule still yields its flag."""
    flag = FLAG_OF_EVENT.get(event.type)
    hits: list[ScoreHit] = []
    for rule in config.rules:
        if not rule.matches(event):
            continue
        topic = _property_text(event, rule.topic_property, TOPIC_LENGTH)
        hits.append(
            ScoreHit(
                rule_id=rule.id,
                category=rule.category,
                points=rule.points,
                content_id=_property_text(event, rule.content_id_property, CONTENT_ID_LENGTH),
                topic=_norm(topic) if topic else None,
                flag=flag,
            )
        )
    if flag and not hits:
        hits.append(ScoreHit(rule_id=FLAG_ONLY_RULE, category="negative", points=0, flag=flag))
    return hits


def _round(value: float) -> int:
    """Half away from zero, so +2.5 and -2.5 decay to the same size."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def totals(card: Scorecard, config: ScoringConfig, now: datetime, sessions: int) -> ScoreTotals:
    """Each day's points decayed by 0.5 ** (age_days / half_life_days), age in whole UTC days."""
    today = _utc_day(now)
    oldest = today - timedelta(days=SCORECARD_DAYS - 1)
    sums: dict[str, float] = {}
    for entry in card.days:
        if entry.day < oldest:
            continue
        factor = 1.0
        if config.half_life_days > 0:
            factor = 0.5 ** (max((today - entry.day).days, 0) / config.half_life_days)
        sums[entry.category] = sums.get(entry.category, 0.0) + entry.points * factor
    email = min(max(_round(sums.get("email", 0.0)), 0), config.email_engagement_cap)
    content, web, form, event, negative = (
        _round(sums.get(category, 0.0)) for category in ("content", "web", "form", "event", "negative")
    )
    fit = card.fit.points if card.fit is not None else 0
    total = max(email + content + web + form + event + fit + negative, 0)
    return ScoreTotals(
        email_engagement=email,
        content_pieces=len(card.content_consumed),
        content=content,
        web=web,
        form=form,
        event=event,
        negative=negative,
        fit=fit,
        sessions=sessions,
        total=total,
        band=band_of(config.bands, total),
    )


def band_of(bands: ScoreBands, total: int) -> Band:
    if total >= bands.hot:
        return "hot"
    if total >= bands.warm:
        return "warm"
    return "cold"


_VICE_PRESIDENT = r"vice[\s-]*president"
_SENIORITY_PATTERNS = (
    (
        Seniority.C_LEVEL,
        re.compile(
            r"\b(chief|ceo|cto|cfo|cmo|coo|cio|ciso|cro|cpo|cdo|chro|co-?founder|founder|president)\b"
        ),
    ),
    (Seniority.VP, re.compile(rf"\b({_VICE_PRESIDENT}|vp|svp|evp|avp)\b")),
    (Seniority.DIRECTOR, re.compile(r"\b(director|head)\b")),
    (
        Seniority.MANAGER,
        re.compile(
            r"\b(manager|leader|lead)\b"
            r"(?![\s-]+(gen|generation|nurturing|qualification|scoring|routing|development)\b)"
        ),
    ),
)


def seniority_of(job_title: str | None) -> Seniority:
    """The rank a job title names, read from the words before any 'to', 'of' or 'for'.

    So 'Assistant to the CEO' is an individual, 'Director of Engineering Operations' a director and
    'Operations Manager' a manager (keywords match whole words only: 'operations' is not 'COO').
    """
    if job_title is None or not job_title.strip():
        return Seniority.UNKNOWN
    text = job_title.casefold().replace(".", "")
    text = re.sub(r"[^\w\s-]", " ", text)
    text = re.split(r"\b(?:to|of|for)\b", text, maxsplit=1)[0]
    for seniority, pattern in _SENIORITY_PATTERNS:
        probe = re.sub(_VICE_PRESIDENT, " ", text) if seniority is Seniority.C_LEVEL else text
        if pattern.search(probe):
            return seniority
    return Seniority.INDIVIDUAL


def _in_domains(domain: str, domains: list[str]) -> bool:
    return any(domain == listed or domain.endswith("." + listed) for listed in domains)


def assess_fit(config: ScoringConfig, profile: FirmographicProfile) -> FitResult:
    """Matched ICP dimensions and their points; fit when enough match and the lead is not a competitor."""
    icp = config.icp
    seniority = seniority_of(profile.job_title)
    employees = profile.employees
    country = profile.country.strip().upper() if profile.country else None
    checks: dict[Dimension, bool] = {
        "industry": profile.industry is not None and _norm(profile.industry) in icp.industries,
        "employees": employees is not None
        and (icp.min_employees is None or employees >= icp.min_employees)
        and (icp.max_employees is None or employees <= icp.max_employees),
        "seniority": seniority in icp.seniorities,
        "country": country is not None and country in icp.countries,
    }
    assessed = icp.assessed_dimensions()
    matched = [dimension for dimension in assessed if checks[dimension]]
    missing = [dimension for dimension in assessed if not checks[dimension]]
    points = sum(icp.points.get(dimension, 0) for dimension in matched)
    domain = _domain(profile.email_domain) if profile.email_domain else None
    free_mail = domain is not None and _in_domains(domain, config.domains.free_mail)
    competitor = domain is not None and _in_domains(domain, config.domains.competitors)
    if free_mail:
        points += config.domains.free_mail_points
    if competitor:
        points += config.domains.competitor_points
    return FitResult(
        fit=len(matched) >= icp.fit_min_matches and not competitor,
        points=points,
        matched=list(matched),
        missing=list(missing),
        seniority=seniority,
        free_mail=free_mail,
        competitor=competitor,
    )


def _compare(label: str, value: int, minimum: int, unit: str = "") -> tuple[bool, str]:
    ok = value >= minimum
    return ok, f"{label} {value} {'>=' if ok else '<'} {minimum}{unit}"


def mql_decision(rule: MqlRule, totals: ScoreTotals, sessions: int, fit: FitResult | None) -> MqlDecision:
    """The seed's MQL rule, with a readable reason for every criterion met or missing."""
    met: list[str] = []
    missing: list[str] = []
    checks = [
        _compare("email engagement", totals.email_engagement, rule.email_engagement_min),
        _compare("content", totals.content_pieces, rule.content_min, " pieces"),
        _compare("website activity", sessions, rule.sessions_min, " sessions"),
    ]
    if rule.require_icp_fit:
        if fit is None:
            checks.append((False, "ICP fit not assessed yet"))
        elif fit.fit:
            checks.append((True, f"ICP fit ({', '.join(fit.matched) or 'no dimension required'})"))
        elif fit.competitor:
            checks.append((False, "no ICP fit: competitor"))
        else:
            checks.append(
                (
                    False,
                    f"no ICP fit: {len(fit.matched)} dimensions matched, missing {', '.join(fit.missing)}",
                )
            )
    for ok, reason in checks:
        (met if ok else missing).append(reason)
    return MqlDecision(qualified=not missing, met=met, missing=missing)
