"""Customer journeys' rules as pure functions: the policy file, NPS classes, onboarding deadlines,
the health score, expansion, renewal reminders and the CSM choice."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.customers import (
    CustomerEvent,
    CustomerState,
    ExpansionPolicy,
    HealthPolicy,
    HealthSignal,
    MilestoneRule,
    OnboardingInput,
    OnboardingState,
    RenewalPolicy,
    SurveyAnswer,
    customer_account_id,
    customer_policy_from,
    expansion_reason,
    health_band,
    health_score,
    load_customer_policy,
    next_due,
    nps_class,
    onboarding_actions,
    reminder_key,
    reminders_due,
    renews_until,
    survey_score,
)
from store.csm import least_loaded

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_the_shipped_policy_loads():
    policy = load_customer_policy(ROOT / "config" / "customer.toml")
    assert [m.id for m in policy.onboarding.milestones] == ["first_login", "key_feature", "teammates_invited"]
    assert policy.renewal.reminders == [timedelta(days=60), timedelta(days=30), timedelta(days=7)]
    assert policy.health.at_risk_below < policy.health.healthy_from


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"onboarding": {"milestones": []}}, "onboarding.milestones"),
        ({"health": {"at_risk_below": 80, "healthy_from": 60}}, "health: at_risk_below"),
        ({"renewal": {"term": 365}}, "renewal.term"),
        ({"colour": "blue"}, "colour"),
        ({"expansion": {"seats_ratio": 1.5}}, "expansion.seats_ratio"),
    ],
)
def test_a_bad_policy_names_the_field(change, named):
    milestone = {
        "id": "first_login",
        "name": "First",
        "events": ["Logged In"],
        "within": "3d",
        "nudge_template": "x",
    }
    data = {"onboarding": {"milestones": [milestone]}, **change}
    with pytest.raises(ValueError) as raised:
        customer_policy_from(data, source="customer.toml")
    assert named in str(raised.value)
    assert str(raised.value).startswith("customer.toml: ")


def test_a_milestone_id_used_twice_is_refused():
    milestone = {"id": "a", "name": "A", "events": ["x"], "within": "1d", "nudge_template": "t"}
    with pytest.raises(ValueError, match="used twice"):
        customer_policy_from({"onboarding": {"milestones": [milestone, milestone]}})


@pytest.mark.parametrize(
    ("score", "kind"),
    [(10, "promoter"), (9, "promoter"), (8, "passive"), (7, "passive"), (6, "detractor"), (0, "detractor")],
)
def test_nps_classes(score, kind):
    assert nps_class(score) == kind


@pytest.mark.parametrize(
    ("properties", "score"),
    [
        ({"score": 9}, 9),
        ({"nps": "3"}, 3),
        ({"rating": 7.0}, 7),
        ({"score": 11}, None),
        ({"score": True}, None),
        ({}, None),
        ({"score": "great"}, None),
    ],
)
def test_survey_scores(properties, score):
    assert survey_score(properties) == score


def test_an_account_of_one():
    assert customer_account_id(None, "l1") == "lead-l1"
    assert customer_account_id("acme", "l1") == "acme"


def rules() -> list[MilestoneRule]:
    return [
        MilestoneRule(
            id="login", name="Login", events=["Logged In"], within=timedelta(days=3), nudge_template="n1"
        ),
        MilestoneRule(
            id="invite",
            name="Invite",
            events=["User Invited"],
            within=timedelta(days=10),
            nudge_template="n2",
            alert_after=timedelta(days=3),
        ),
    ]


def onboarding() -> OnboardingState:
    from domain.customers import CsmAssignment

    return OnboardingState.start(
        OnboardingInput(
            account_id="a", lead_id="l", started_at=T0, milestones=rules(), csm=CsmAssignment(csm_id="c")
        )
    )


def test_onboarding_waits_for_the_first_deadline():
    due, next_at = onboarding_actions(rules(), onboarding(), T0 + timedelta(days=1))
    assert due == []
    assert next_at == T0 + timedelta(days=3)


def test_a_missed_milestone_nudges_then_alerts():
    state = onboarding()
    due, _ = onboarding_actions(rules(), state, T0 + timedelta(days=3))
    assert [(a, r.id) for a, r in due] == [("nudge", "login")]
    state.progress("login").nudged_at = T0 + timedelta(days=3)
    due, next_at = onboarding_actions(rules(), state, T0 + timedelta(days=4))
    assert due == [] and next_at == T0 + timedelta(days=5)  # default alert_after: 2 days
    due, _ = onboarding_actions(rules(), state, T0 + timedelta(days=5))
    assert [(a, r.id) for a, r in due] == [("alert", "login")]


def test_a_done_milestone_needs_nothing_and_onboarding_finishes():
    state = onboarding()
    state.progress("login").done_at = T0 + timedelta(hours=5)
    state.progress("invite").done_at = T0 + timedelta(days=11)
    due, next_at = onboarding_actions(rules(), state, T0 + timedelta(days=30))
    assert due == [] and next_at is None
    assert state.finished()
    assert state.progress("invite").late and not state.progress("login").late


def health_policy() -> HealthPolicy:
    return HealthPolicy(
        baseline=50,
        window=timedelta(days=30),
        signals=[
            HealthSignal(event="Logged In", points=1, max_points=20),
            HealthSignal(event="Ticket Opened", points=-4, min_points=-20),
        ],
        at_risk_below=40,
        healthy_from=65,
    )


def used(state: CustomerState, name: str, times: int, at: datetime) -> None:
    for _ in range(times):
        state.record_usage(name, "l1", at, timedelta(days=30))


def test_health_counts_capped_signals_inside_the_window():
    state = CustomerState(account_id="a", purchased_at=T0)
    now = T0 + timedelta(days=40)
    used(state, "Logged In", 50, now - timedelta(days=2))
    used(state, "logged in", 5, now - timedelta(days=35))  # outside the window: pruned
    used(state, "Ticket Opened", 2, now - timedelta(days=1))
    score, reasons = health_score(health_policy(), state, now)
    assert score == 50 + 20 - 8
    assert "Logged In x50: +20" in reasons
    assert health_band(health_policy(), score) == "neutral"


def test_silence_and_a_detractor_put_an_account_at_risk():
    state = CustomerState(account_id="a", purchased_at=T0)
    used(state, "Logged In", 10, T0 + timedelta(days=1))
    now = T0 + timedelta(days=15)
    state.add_survey(SurveyAnswer(lead_id="l1", survey="nps-1", score=3, at=now - timedelta(days=1)))
    score, reasons = health_score(health_policy(), state, now)
    # 50 + 10 logins - 25 detractor - 2 x 14 idle days
    assert score == 50 + 10 - 25 - 28
    assert any("no product use for 14 days" in r for r in reasons)
    assert health_band(health_policy(), score) == "at_risk"


def test_a_promoter_lifts_the_score_and_it_stays_within_0_100():
    state = CustomerState(account_id="a", purchased_at=T0)
    used(state, "Logged In", 30, T0 + timedelta(days=2))
    state.add_survey(SurveyAnswer(lead_id="l1", survey="nps-1", score=10, at=T0 + timedelta(days=2)))
    policy = health_policy().model_copy(update={"baseline": 90})
    score, _ = health_score(policy, state, T0 + timedelta(days=3))
    assert score == 100


def test_expansion_by_seats_by_heavy_use_and_not_within_the_cooldown():
    policy = ExpansionPolicy(seats_ratio=0.9, heavy_use_event="Report Exported", heavy_use_count=3)
    state = CustomerState(account_id="a", seats=10, seats_used=8)
    now = T0 + timedelta(days=5)
    assert expansion_reason(policy, state, now, timedelta(days=30)) is None
    state.seats_used = 9
    assert expansion_reason(policy, state, now, timedelta(days=30)) == "9 of 10 seats in use"
    state.seats_used = 1
    used(state, "Report Exported", 3, now)
    assert expansion_reason(policy, state, now, timedelta(days=30)) == "Report Exported x3 in 30 days"
    state.expansion_offered_at = now - timedelta(days=10)
    assert expansion_reason(policy, state, now, timedelta(days=30)) is None


def test_renewal_reminders_fall_due_once_per_term():
    policy = RenewalPolicy()
    ends = T0 + timedelta(days=365)
    state = CustomerState(account_id="a", status="active", subscription_ends_at=ends)
    assert reminders_due(policy, state, ends - timedelta(days=61)) == []
    assert reminders_due(policy, state, ends - timedelta(days=60)) == [timedelta(days=60)]
    # A worker down for a month: both overdue reminders, once each.
    assert reminders_due(policy, state, ends - timedelta(days=20)) == [timedelta(days=60), timedelta(days=30)]
    state.reminders_sent = [reminder_key(state, timedelta(days=60)), reminder_key(state, timedelta(days=30))]
    assert reminders_due(policy, state, ends - timedelta(days=20)) == []
    assert reminders_due(policy, state, ends + timedelta(days=1)) == []  # past the end: churn decides


def test_next_due_is_the_earliest_of_checks_surveys_and_renewal_dates():
    from domain.customers import CustomerPolicy, OnboardingPolicy

    policy = CustomerPolicy(onboarding=OnboardingPolicy(milestones=rules()))
    ends = T0 + timedelta(days=365)
    state = CustomerState(
        account_id="a",
        status="active",
        subscription_ends_at=ends,
        next_health_at=T0 + timedelta(days=7),
        next_survey_at=T0 + timedelta(days=30),
    )
    assert next_due(policy, state) == T0 + timedelta(days=7)
    state.next_health_at = state.next_survey_at = None
    assert next_due(policy, state) == ends - timedelta(days=60)
    state.reminders_sent = [reminder_key(state, timedelta(days=d)) for d in (60, 30, 7)]
    assert next_due(policy, state) == ends + timedelta(days=7)


def event(**properties) -> CustomerEvent:
    return CustomerEvent(
        event_id="e", lead_id="l", kind="subscription_renewed", properties=properties, occurred_at=T0
    )


def test_a_renewal_runs_to_the_named_period_end_or_one_term_on():
    state = CustomerState(account_id="a", subscription_ends_at=T0 + timedelta(days=3))
    assert renews_until(state, event(period_end="2027-01-10T00:00:00Z"), timedelta(days=365)) == datetime(
        2027, 1, 10, tzinfo=UTC
    )
    assert renews_until(state, event(period_end=1799539200), timedelta(days=365)) == datetime.fromtimestamp(
        1799539200, UTC
    )
    assert renews_until(state, event(), timedelta(days=365)) == T0 + timedelta(days=368)


def test_usage_is_kept_by_day_inside_the_window_only():
    state = CustomerState(account_id="a")
    for day in range(100):
        state.record_usage("Logged In", f"l{day % 3}", T0 + timedelta(days=day), timedelta(days=30))
    assert len(state.usage) <= 31
    assert min(state.usage) == (T0 + timedelta(days=99 - 30)).date().isoformat()
    assert state.play_contacts() == ["l0", "l2", "l1"]  # most recently active first
    state.buyer_lead_id = "buyer"
    assert state.play_contacts()[0] == "buyer"


@pytest.mark.parametrize(
    ("capacities", "loads", "chosen"),
    [
        ({"a": 1, "b": 1}, {}, "a"),
        ({"a": 1, "b": 1}, {"a": 1}, "b"),
        ({"a": 3, "b": 1}, {"a": 2, "b": 0}, "a"),  # 3/3 against 1/1: a tie, the first id
        ({"a": 3, "b": 1}, {"a": 3, "b": 0}, "b"),
        ({"a": 3, "b": 1}, {"a": 1, "b": 1}, "a"),
    ],
)
def test_the_csm_with_fewest_accounts_for_capacity(capacities, loads, chosen):
    assert least_loaded(capacities, loads) == chosen
