"""Customer journeys: from the purchase to onboarding, health, expansion, surveys, renewal, churn and
advocacy. The policy is data (`config/customer.toml`); everything here is pure, so the workflows
(`workflows/customer.py`, `workflows/onboarding.py`) stay thin and the rules are table-tested.

An account's journey lives for years: its state is one model that continue-as-new carries, and every
list in it is bounded (usage by day inside the health window, the last surveys, the last audit lines).
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from domain.sequences import Duration

CUSTOMER_WORKFLOW_TYPE = "CustomerJourney"
ONBOARDING_WORKFLOW_TYPE = "Onboarding"
CUSTOMER_EVENT_SIGNAL = "customer_event"
ONBOARDING_RESULT_SIGNAL = "onboarding_result"
ONBOARDING_USAGE_SIGNAL = "usage"
CUSTOMER_STATE_QUERY = "state"
ONBOARDING_STATE_QUERY = "state"

AUDIT_KEPT = 100
SURVEYS_KEPT = 50
CONTACTS_KEPT = 200
REFERRALS_KEPT = 200
# Contacts a re-engagement or win-back play enrolls: the buyer and the most active users.
PLAY_CONTACTS = 20


def customer_workflow_id(account_id: str) -> str:
    return f"customer-{account_id}"


def onboarding_workflow_id(account_id: str) -> str:
    return f"onboarding-{account_id}"


def customer_account_id(account_id: str | None, lead_id: str) -> str:
    """A buyer without a known account (no Segment `group`) is an account of one."""
    return account_id or f"lead-{lead_id}"


def nps_class(score: int) -> Literal["promoter", "passive", "detractor"]:
    """The Net Promoter definition: 9-10 promoters, 7-8 passives, 0-6 detractors."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def survey_score(properties: dict[str, Any]) -> int | None:
    """The 0-10 answer of a "Survey Responded" event (`score`, or `nps`), else None."""
    for key in ("score", "nps", "rating"):
        value = properties.get(key)
        if isinstance(value, bool) or value is None:
            continue
        try:
            number = int(float(str(value)))
        except ValueError:
            continue
        if 0 <= number <= 10:
            return number
    return None


def _same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


# --- the policy (config/customer.toml) -------------------------------------------------------------


class _Config(BaseModel):
    model_config = {"extra": "forbid"}


class MilestoneRule(_Config):
    """An onboarding milestone: done by any of `events` (product track events, by name), due `within`
    of the purchase; missed, the user gets `nudge_template`, and `alert_after` later the CSM is told."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1)
    events: list[str] = Field(min_length=1)
    within: Duration
    nudge_template: str = Field(min_length=1)
    alert_after: Duration = timedelta(days=2)

    def done_by(self, event_name: str) -> bool:
        return any(_same(event_name, wanted) for wanted in self.events)


class OnboardingPolicy(_Config):
    milestones: list[MilestoneRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> OnboardingPolicy:
        ids = [m.id for m in self.milestones]
        for index, milestone_id in enumerate(ids):
            if milestone_id in ids[:index]:
                raise ValueError(f"milestones[{index}].id: {milestone_id!r} is used twice")
        return self


class HealthSignal(_Config):
    """Points per occurrence of a product or support event inside the window, capped at `max_points`
    (positive) or `min_points` (negative) so one noisy signal cannot decide the score alone."""

    event: str = Field(min_length=1)
    points: int
    max_points: int | None = None
    min_points: int | None = None


class HealthPolicy(_Config):
    baseline: int = 50
    window: Duration = timedelta(days=30)
    check_every: Duration = timedelta(days=7)
    at_risk_below: int = Field(40, ge=0, le=100)
    healthy_from: int = Field(60, ge=0, le=100)
    signals: list[HealthSignal] = Field(default_factory=list)
    # The latest survey answer in the window moves the score too.
    promoter_points: int = 15
    detractor_points: int = -25
    # Days in the window without any product use take points off: silence is the first churn sign.
    idle_days_from: int = Field(7, ge=1)
    idle_points_per_day: int = -2

    @model_validator(mode="after")
    def _bands(self) -> HealthPolicy:
        if self.at_risk_below > self.healthy_from:
            raise ValueError("at_risk_below: must not be above healthy_from")
        return self


class ExpansionPolicy(_Config):
    """Seats near the limit, or heavy use of a feature, start the expansion play (once per cooldown)."""

    seats_ratio: float = Field(0.9, gt=0, le=1)
    heavy_use_event: str | None = None
    heavy_use_count: int = Field(50, ge=1)
    cooldown: Duration = timedelta(days=90)
    sequence_id: str = "expansion"


class SurveyPolicy(_Config):
    first_nps_after: Duration = timedelta(days=30)
    nps_every: Duration = timedelta(days=90)
    csat_after_onboarding: bool = True
    response_event: str = "Survey Responded"
    referral_template: str = "referral_invite"


class RenewalPolicy(_Config):
    term: Duration = timedelta(days=365)
    reminders: list[Duration] = Field(
        default_factory=lambda: [timedelta(days=60), timedelta(days=30), timedelta(days=7)]
    )
    # A subscription past its end this long without a renewal has churned.
    grace: Duration = timedelta(days=7)
    win_back_sequence: str = "win_back"

    @field_validator("reminders")
    @classmethod
    def _sorted(cls, reminders: list[timedelta]) -> list[timedelta]:
        return sorted(set(reminders), reverse=True)


class CustomerPolicy(_Config):
    version: int = Field(1, ge=1)
    csm_team: str = "customer_success"
    welcome_template: str = "customer_welcome"
    kickoff_after: Duration = timedelta(days=2)
    kickoff_length: Duration = timedelta(minutes=45)
    usage_events: list[str] = Field(default_factory=list)
    seats_event: str = "Seats Changed"
    reengagement_sequence: str = "customer_reengagement"
    onboarding: OnboardingPolicy
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    expansion: ExpansionPolicy = Field(default_factory=ExpansionPolicy)
    surveys: SurveyPolicy = Field(default_factory=SurveyPolicy)
    renewal: RenewalPolicy = Field(default_factory=RenewalPolicy)


def customer_policy_from(data: Any, *, source: str = "customer policy") -> CustomerPolicy:
    """The policy in parsed data, with every problem named by its field."""
    try:
        return CustomerPolicy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ValueError(f"{source}: " + "; ".join(problems)) from None


def load_customer_policy(path: Path) -> CustomerPolicy:
    """Reads the file (I/O: activities call this, never a workflow)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    return customer_policy_from(data, source=str(path))


# --- what reaches an account's journey --------------------------------------------------------------

CustomerEventKind = Literal[
    "purchase",
    "usage",
    "subscription_started",
    "subscription_renewed",
    "subscription_cancelled",
    "survey_response",
    "referral",
]


class CustomerEvent(BaseModel):
    """Signal to `customer-{account_id}`: something one of the account's people did or paid."""

    event_id: str
    lead_id: str
    kind: CustomerEventKind
    name: str = ""
    properties: dict[str, str | int | float | bool] = Field(default_factory=dict)
    occurred_at: datetime


class CustomerReport(BaseModel):
    """Activity input: a lead's customer events, for its account's journey (signal-with-start)."""

    account_id: str
    events: list[CustomerEvent] = Field(min_length=1)


class ReferralReport(BaseModel):
    """A new lead arrived with an advocate's referral code."""

    referral_code: str = Field(min_length=1, max_length=200)
    new_lead_id: str
    occurred_at: datetime


class CsmAssignment(BaseModel):
    csm_id: str | None
    name: str = ""
    email: str | None = None
    slack_user_id: str | None = None
    crm_owner_id: str | None = None
    channel: str = ""
    reason: str = ""


class CustomerInput(BaseModel):
    account_id: str
    state: CustomerState | None = None
    # The run continues as new past this many history events (tests set it low).
    history_limit: int = Field(5000, ge=100)


class CompanyInput(BaseModel):
    """Activity input: the account as a CRM company, owned by the CSM."""

    account_id: str
    lead_id: str
    idempotency_key: str
    owner_id: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)


# --- onboarding -------------------------------------------------------------------------------------


class UsageNotice(BaseModel):
    name: str
    lead_id: str
    at: datetime


class MilestoneProgress(BaseModel):
    id: str
    due_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    nudged_at: datetime | None = None
    alerted_at: datetime | None = None

    @property
    def late(self) -> bool:
        return self.done_at is not None and self.done_at > self.due_at


class OnboardingInput(BaseModel):
    account_id: str
    lead_id: str
    started_at: datetime
    milestones: list[MilestoneRule]
    csm: CsmAssignment


class OnboardingResult(BaseModel):
    account_id: str
    completed: bool
    done: list[str]
    missed: list[str]
    finished_at: datetime


class OnboardingState(BaseModel):
    milestones: list[MilestoneProgress] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)

    @staticmethod
    def start(input: OnboardingInput) -> OnboardingState:
        return OnboardingState(
            milestones=[
                MilestoneProgress(id=rule.id, due_at=input.started_at + rule.within)
                for rule in input.milestones
            ]
        )

    def progress(self, milestone_id: str) -> MilestoneProgress:
        return next(p for p in self.milestones if p.id == milestone_id)

    def finished(self) -> bool:
        """Every milestone done, or missed with the CSM told."""
        return all(p.done_at is not None or p.alerted_at is not None for p in self.milestones)


def onboarding_actions(
    rules: list[MilestoneRule], state: OnboardingState, now: datetime
) -> tuple[list[tuple[Literal["nudge", "alert"], MilestoneRule]], datetime | None]:
    """What is due now (a nudge at the deadline, the CSM's alert `alert_after` later) and when the
    next action falls due (None: nothing left to wait for)."""
    due: list[tuple[Literal["nudge", "alert"], MilestoneRule]] = []
    upcoming: list[datetime] = []
    for rule in rules:
        progress = state.progress(rule.id)
        if progress.done_at is not None:
            continue
        if progress.nudged_at is None:
            if now >= progress.due_at:
                due.append(("nudge", rule))
            else:
                upcoming.append(progress.due_at)
            continue
        if progress.alerted_at is None:
            alert_at = progress.due_at + rule.alert_after
            if now >= alert_at:
                due.append(("alert", rule))
            else:
                upcoming.append(alert_at)
    return due, min(upcoming) if upcoming else None


# --- the account's state ----------------------------------------------------------------------------


class SurveyAnswer(BaseModel):
    lead_id: str
    survey: str
    score: int
    at: datetime


class CustomerState(BaseModel):
    account_id: str
    status: Literal["new", "onboarding", "active", "at_risk", "churned"] = "new"
    buyer_lead_id: str | None = None
    contacts: list[str] = Field(default_factory=list)
    csm: CsmAssignment | None = None
    purchased_at: datetime | None = None
    subscription_ends_at: datetime | None = None
    term_number: int = 1
    seats: int | None = None
    seats_used: int | None = None
    onboarding: Literal["not_started", "running", "completed", "incomplete"] = "not_started"
    onboarding_missed: list[str] = Field(default_factory=list)
    # {"2026-11-27": {"Logged In": 3}}: the days inside the health window only.
    usage: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Who used the product, by day (for the re-engagement play's most active contacts).
    active_contacts: dict[str, str] = Field(default_factory=dict)
    health: int | None = None
    health_band: Literal["healthy", "neutral", "at_risk"] | None = None
    health_reasons: list[str] = Field(default_factory=list)
    next_health_at: datetime | None = None
    surveys: list[SurveyAnswer] = Field(default_factory=list)
    surveys_sent: int = 0
    next_survey_at: datetime | None = None
    csat_sent: bool = False
    reminders_sent: list[str] = Field(default_factory=list)
    expansion_offered_at: datetime | None = None
    advocates: list[str] = Field(default_factory=list)
    referrals: list[str] = Field(default_factory=list)
    renewals: int = 0
    churned_at: datetime | None = None
    seen_events: list[str] = Field(default_factory=list)
    audit: list[str] = Field(default_factory=list)
    runs: int = 1

    def log(self, at: datetime, text: str) -> None:
        self.audit.append(f"{at.isoformat(timespec='seconds')} {text}")
        del self.audit[:-AUDIT_KEPT]

    def first_time(self, event_id: str) -> bool:
        """Signals may arrive twice (a retried report): each event counts once."""
        if event_id in self.seen_events:
            return False
        self.seen_events.append(event_id)
        del self.seen_events[:-500]
        return True

    def add_contact(self, lead_id: str) -> None:
        if lead_id not in self.contacts and len(self.contacts) < CONTACTS_KEPT:
            self.contacts.append(lead_id)

    def record_usage(self, name: str, lead_id: str, at: datetime, window: timedelta) -> None:
        day = at.date().isoformat()
        counts = self.usage.setdefault(day, {})
        counts[name] = counts.get(name, 0) + 1
        self.active_contacts[lead_id] = max(self.active_contacts.get(lead_id, ""), day)
        self.prune(at, window)

    def prune(self, now: datetime, window: timedelta) -> None:
        oldest = (now - window).date().isoformat()
        for day in [d for d in self.usage if d < oldest]:
            del self.usage[day]
        if len(self.active_contacts) > CONTACTS_KEPT:
            kept = sorted(self.active_contacts.items(), key=lambda kv: kv[1], reverse=True)[:CONTACTS_KEPT]
            self.active_contacts = dict(kept)

    def count(self, event: str, since: datetime) -> int:
        first = since.date().isoformat()
        return sum(
            n
            for day, counts in self.usage.items()
            if day >= first
            for name, n in counts.items()
            if _same(name, event)
        )

    def play_contacts(self) -> list[str]:
        """The buyer, then the most recently active people: who a re-engagement play speaks to."""
        ranked = [
            lead for lead, _ in sorted(self.active_contacts.items(), key=lambda kv: kv[1], reverse=True)
        ]
        people = [p for p in [self.buyer_lead_id, *ranked, *self.contacts] if p]
        return list(dict.fromkeys(people))[:PLAY_CONTACTS]

    def add_survey(self, answer: SurveyAnswer) -> None:
        self.surveys.append(answer)
        del self.surveys[:-SURVEYS_KEPT]


def health_score(policy: HealthPolicy, state: CustomerState, now: datetime) -> tuple[int, list[str]]:
    """0-100 from the window's usage, support and the latest survey, with the reasons behind it."""
    since = now - policy.window
    score, reasons = policy.baseline, [f"baseline {policy.baseline}"]
    for signal in policy.signals:
        occurrences = state.count(signal.event, since)
        if not occurrences:
            continue
        points = occurrences * signal.points
        if signal.max_points is not None:
            points = min(points, signal.max_points)
        if signal.min_points is not None:
            points = max(points, signal.min_points)
        score += points
        reasons.append(f"{signal.event} x{occurrences}: {points:+d}")
    recent = [a for a in state.surveys if a.at >= since]
    if recent:
        latest = recent[-1]
        kind = nps_class(latest.score)
        points = {"promoter": policy.promoter_points, "detractor": policy.detractor_points}.get(kind, 0)
        if points:
            score += points
            reasons.append(f"{latest.survey} {latest.score} ({kind}): {points:+d}")
    used_days = sorted(state.usage)
    last_use = datetime.fromisoformat(used_days[-1]).date() if used_days else None
    anchor = max(since, state.purchased_at) if state.purchased_at else since
    idle_since = max(last_use, anchor.date()) if last_use else anchor.date()
    idle = (now.date() - idle_since).days
    if idle >= policy.idle_days_from:
        points = idle * policy.idle_points_per_day
        score += points
        reasons.append(f"no product use for {idle} days: {points:+d}")
    return max(0, min(100, score)), reasons


def health_band(policy: HealthPolicy, score: int) -> Literal["healthy", "neutral", "at_risk"]:
    if score < policy.at_risk_below:
        return "at_risk"
    if score >= policy.healthy_from:
        return "healthy"
    return "neutral"


def expansion_reason(
    policy: ExpansionPolicy, state: CustomerState, now: datetime, window: timedelta
) -> str | None:
    """Why the account is ready to grow, if it is and the last offer is past its cooldown."""
    if state.expansion_offered_at is not None and now - state.expansion_offered_at < policy.cooldown:
        return None
    if state.seats and state.seats_used is not None and state.seats_used >= policy.seats_ratio * state.seats:
        return f"{state.seats_used} of {state.seats} seats in use"
    if policy.heavy_use_event:
        used = state.count(policy.heavy_use_event, now - window)
        if used >= policy.heavy_use_count:
            return f"{policy.heavy_use_event} x{used} in {window.days} days"
    return None


def reminders_due(policy: RenewalPolicy, state: CustomerState, now: datetime) -> list[timedelta]:
    """Renewal reminders whose time has come this term and that were not sent yet."""
    if state.subscription_ends_at is None or state.status == "churned":
        return []
    return [
        before
        for before in policy.reminders
        if now >= state.subscription_ends_at - before
        and reminder_key(state, before) not in state.reminders_sent
        and now < state.subscription_ends_at
    ]


def reminder_key(state: CustomerState, before: timedelta) -> str:
    return f"term{state.term_number}-{before.days}d"


def next_due(policy: CustomerPolicy, state: CustomerState) -> datetime | None:
    """The next moment the account's journey has something to do unprompted."""
    times = [state.next_health_at, state.next_survey_at]
    if state.subscription_ends_at is not None and state.status != "churned":
        for before in policy.renewal.reminders:
            if reminder_key(state, before) not in state.reminders_sent:
                times.append(state.subscription_ends_at - before)
        times.append(state.subscription_ends_at + policy.renewal.grace)
    present = [t for t in times if t is not None]
    return min(present) if present else None


def renews_until(state: CustomerState, event: CustomerEvent, term: timedelta) -> datetime:
    """The new end of the subscription: the event's `period_end` if it names one, else one term on."""
    named = event.properties.get("period_end")
    if isinstance(named, str):
        try:
            return datetime.fromisoformat(named.replace("Z", "+00:00"))
        except ValueError:
            pass
    if isinstance(named, int | float) and not isinstance(named, bool) and named > 1e9:
        return datetime.fromtimestamp(named, UTC)
    base = state.subscription_ends_at or event.occurred_at
    return max(base, event.occurred_at) + term


CustomerInput.model_rebuild()
