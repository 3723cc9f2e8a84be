from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from domain.events import EventType, LeadEvent, Touch
from domain.scoring import (
    CONTENT_KEPT,
    FLAG_ONLY_RULE,
    SCORECARD_DAYS,
    FirmographicProfile,
    FitResult,
    MqlRule,
    ScoreBands,
    Scorecard,
    ScoreHit,
    ScoreTotals,
    ScoringConfig,
    Seniority,
    assess_fit,
    band_of,
    load_scoring,
    mql_decision,
    parse_scoring,
    score_event,
    seniority_of,
    totals,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_scoring(ROOT / "config" / "scoring.toml")
AT = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def event(kind: EventType, name: str | None = None, **fields) -> LeadEvent:
    return LeadEvent(event_id="e", type=kind, source="test", occurred_at=AT, name=name, **fields)


def rule_ids(e: LeadEvent) -> list[str]:
    return sorted(hit.rule_id for hit in score_event(CONFIG, e))


def config(**changes) -> ScoringConfig:
    return CONFIG.model_copy(update=changes)


# --- score_event ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e", "expected"),
    [
        (event(EventType.EMAIL_OPENED), ["email_opened"]),
        (event(EventType.EMAIL_CLICKED), ["email_clicked"]),
        (event(EventType.EMAIL_DELIVERED), []),
        (event(EventType.TRACK, "Content Downloaded"), ["content_downloaded"]),
        (event(EventType.TRACK, "content downloaded "), ["content_downloaded"]),
        (event(EventType.TRACK, "WHITEPAPER DOWNLOADED"), ["whitepaper_downloaded"]),
        (event(EventType.TRACK, "Content Download"), []),
        (event(EventType.TRACK, None), []),
        (event(EventType.TRACK, "Webinar Attended"), ["webinar_attended"]),
        (event(EventType.PAGE, properties={"path": "/pricing"}), ["page_view", "pricing_page"]),
        (
            event(EventType.PAGE, properties={"path": "/Pricing/enterprise?x=1"}),
            ["page_view", "pricing_page"],
        ),
        (event(EventType.PAGE, touch=Touch(path="/pricing")), ["page_view", "pricing_page"]),
        (event(EventType.PAGE, properties={"path": "/blog/pricing"}), ["page_view"]),
        (event(EventType.PAGE), ["page_view"]),
        (event(EventType.SCREEN, properties={"path": "/pricing"}), []),
        (event(EventType.FORM_SUBMITTED, "Request a demo", form_id="demo"), ["demo_form"]),
        (event(EventType.FORM_SUBMITTED, form_id="contact"), ["contact_form"]),
        (event(EventType.FORM_SUBMITTED, form_id="newsletter"), []),
        (event(EventType.FORM_ABANDONED, form_id="demo"), []),
        (event(EventType.EMAIL_UNSUBSCRIBED), ["email_unsubscribed"]),
        (event(EventType.EMAIL_BOUNCED), ["email_bounced"]),
        (event(EventType.EMAIL_SPAM_COMPLAINT), ["spam_complaint"]),
    ],
)
def test_score_event_matches_every_rule_that_applies(e, expected):
    assert rule_ids(e) == expected


def test_hits_carry_points_category_content_and_topic():
    e = event(
        EventType.TRACK, "Content Downloaded", properties={"content_id": 42, "topic": " Data  Security "}
    )
    assert score_event(CONFIG, e) == [
        ScoreHit(
            rule_id="content_downloaded",
            category="content",
            points=10,
            content_id="42",
            topic="data security",
        )
    ]


@pytest.mark.parametrize(
    ("rule", "e", "matches"),
    [
        ({"event": "track", "name": "Trial *"}, event(EventType.TRACK, "trial started"), True),
        ({"event": "track", "name": "Trial *"}, event(EventType.TRACK, "Free trial started"), False),
        ({"event": "track", "name": "Video ?layed"}, event(EventType.TRACK, "Video Played"), True),
        (
            {"event": "track", "properties": {"plan": "Enterprise"}},
            event(EventType.TRACK, properties={"plan": "enterprise"}),
            True,
        ),
        (
            {"event": "track", "properties": {"plan": "enterprise"}},
            event(EventType.TRACK, properties={"plan": "team"}),
            False,
        ),
        ({"event": "track", "properties": {"plan": "enterprise"}}, event(EventType.TRACK), False),
        (
            {"event": "track", "properties": {"trial": True}},
            event(EventType.TRACK, properties={"trial": True}),
            True,
        ),
        (
            {"event": "track", "properties": {"seats": 10}},
            event(EventType.TRACK, properties={"seats": 10}),
            True,
        ),
        (
            {"event": "track", "properties": {"seats": "10"}},
            event(EventType.TRACK, properties={"seats": [10]}),
            False,
        ),
        ({"event": "page", "path": "/docs/*"}, event(EventType.PAGE, properties={"path": "/docs"}), False),
        ({"event": "page", "path": "/docs*"}, event(EventType.PAGE, properties={"path": "/docs"}), True),
        (
            {"event": "form_submitted", "form_id": "webinar-*"},
            event(EventType.FORM_SUBMITTED, form_id="webinar-q3"),
            True,
        ),
        ({"event": "form_submitted", "form_id": "webinar-*"}, event(EventType.FORM_SUBMITTED), False),
    ],
)
def test_rule_conditions(rule, e, matches):
    cfg = ScoringConfig.model_validate(
        {**CONFIG.model_dump(), "rules": [{"id": "r", "points": 1, "category": "event", **rule}]}
    )
    assert bool(score_event(cfg, e)) is matches


@pytest.mark.parametrize(
    ("kind", "flag"),
    [
        (EventType.EMAIL_UNSUBSCRIBED, "unsubscribed"),
        (EventType.EMAIL_BOUNCED, "bounced"),
        (EventType.EMAIL_SPAM_COMPLAINT, "spam_complaint"),
    ],
)
def test_flagging_events_set_their_flag_with_or_without_a_rule(kind, flag):
    card = Scorecard()
    card.apply(score_event(CONFIG, event(kind)), AT, CONFIG)
    assert card.flags == [flag]
    assert totals(card, CONFIG, AT, 0).negative < 0

    no_rules = config(rules=[])
    hits = score_event(no_rules, event(kind))
    assert [(h.rule_id, h.points, h.flag) for h in hits] == [(FLAG_ONLY_RULE, 0, flag)]
    bare = Scorecard()
    bare.apply(hits, AT, no_rules)
    assert bare.flags == [flag] and bare.days == []


# --- apply, max_per_day, bounds ------------------------------------------------------------------


def hit(rule_id: str = "email_opened", points: int = 5, category="email", **fields) -> ScoreHit:
    return ScoreHit(rule_id=rule_id, category=category, points=points, **fields)


def test_max_per_day_counts_per_rule_per_utc_day():
    card = Scorecard()
    late = datetime(2026, 3, 10, 23, 59, tzinfo=UTC)
    scored = [card.apply([hit()], late - timedelta(hours=n), CONFIG) for n in range(5)]
    assert [len(s) for s in scored] == [1, 1, 1, 0, 0]
    card.apply([hit("email_clicked", 10)], late, CONFIG)
    # Just after midnight UTC is a new day: opens score again.
    assert card.apply([hit()], late + timedelta(minutes=2), CONFIG) != []
    assert [(d.day.day, d.rule_id, d.points, d.hits) for d in card.days] == [
        (10, "email_clicked", 10, 1),
        (10, "email_opened", 15, 3),
        (11, "email_opened", 5, 1),
    ]


def test_a_local_time_is_counted_on_its_utc_day():
    from zoneinfo import ZoneInfo

    card = Scorecard()
    card.apply([hit()], datetime(2026, 3, 10, 20, 0, tzinfo=ZoneInfo("America/New_York")), CONFIG)
    assert card.days[0].day == date(2026, 3, 11)


def test_pricing_page_scores_once_a_day_and_pages_ten_times():
    card = Scorecard()
    for _ in range(12):
        card.apply(score_event(CONFIG, event(EventType.PAGE, properties={"path": "/pricing"})), AT, CONFIG)
    assert {d.rule_id: (d.points, d.hits) for d in card.days} == {
        "page_view": (10, 10),
        "pricing_page": (15, 1),
    }


def test_scorecard_keeps_only_the_last_400_days():
    card = Scorecard()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(SCORECARD_DAYS + 30):
        card.apply([hit("page_view", 1, "web")], start + timedelta(days=n), CONFIG)
    assert len(card.days) == SCORECARD_DAYS
    newest = (start + timedelta(days=SCORECARD_DAYS + 29)).date()
    assert card.days[0].day == newest - timedelta(days=SCORECARD_DAYS - 1)
    # A late event older than the window scores nothing and removes nothing.
    assert card.apply([hit("page_view", 1, "web")], start, CONFIG) == []
    assert len(card.days) == SCORECARD_DAYS


def test_content_pieces_are_distinct_and_bounded():
    card = Scorecard()
    for n in range(CONTENT_KEPT + 20):
        card.apply([hit("content_downloaded", 10, "content", content_id=f"c{n}")], AT, CONFIG)
    card.apply([hit("content_downloaded", 10, "content", content_id="c50")], AT, CONFIG)
    assert len(card.content_consumed) == CONTENT_KEPT
    assert card.content_consumed[-1] == "c50" and "c0" not in card.content_consumed
    assert len(set(card.content_consumed)) == CONTENT_KEPT


def test_topics_and_preferred_topic():
    card = Scorecard()
    assert card.preferred_topic() is None
    for topic in ["security", "ai", "ai", "security", "cloud"]:
        card.apply([hit("content_downloaded", 10, "content", topic=topic)], AT, CONFIG)
    assert card.topics == {"security": 2, "ai": 2, "cloud": 1}
    assert card.preferred_topic() == "ai"  # a tie goes to the alphabetically first
    for n in range(100):
        card.apply([hit("content_downloaded", 10, "content", topic=f"t{n:03}")], AT, CONFIG)
    assert len(card.topics) <= 50 and card.topics["ai"] == 2


def test_scorecard_survives_a_round_trip():
    card = Scorecard()
    card.apply(
        score_event(CONFIG, event(EventType.TRACK, "Content Downloaded", properties={"content_id": "a"})),
        AT,
        CONFIG,
    )
    assert Scorecard.model_validate_json(card.model_dump_json()) == card


# --- totals and decay ----------------------------------------------------------------------------


def card_with(points: int, category="email", age_days: int = 0, rule_id="r") -> Scorecard:
    card = Scorecard()
    card.apply([hit(rule_id, points, category)], AT - timedelta(days=age_days), CONFIG)
    return card


@pytest.mark.parametrize(
    ("points", "category", "age", "half_life", "field", "expected"),
    [
        (40, "email", 0, 30, "email_engagement", 40),
        (40, "email", 30, 30, "email_engagement", 20),
        (40, "email", 60, 30, "email_engagement", 10),
        (40, "email", 90, 30, "email_engagement", 5),
        (40, "email", 15, 30, "email_engagement", 28),  # 40 / sqrt(2) = 28.28
        (40, "email", 365, 0, "email_engagement", 40),  # half-life 0: no decay
        (400, "email", 0, 30, "email_engagement", 100),  # capped
        (-20, "email", 0, 30, "email_engagement", 0),  # floored
        (10, "web", 60, 30, "web", 3),  # 2.5 rounds away from zero
        (-30, "negative", 30, 30, "negative", -15),  # negatives decay too
        (-10, "negative", 60, 30, "negative", -3),
        (20, "form", 10, 10, "form", 10),
        (15, "event", 0, 30, "event", 15),
        (10, "content", 30, 30, "content", 5),
    ],
)
def test_decay(points, category, age, half_life, field, expected):
    cfg = config(half_life_days=half_life)
    result = totals(card_with(points, category, age), cfg, AT, 0)
    assert getattr(result, field) == expected


def test_days_older_than_the_window_do_not_count_even_without_decay():
    cfg = config(half_life_days=0)
    assert totals(card_with(10, "web", SCORECARD_DAYS - 1), cfg, AT, 0).web == 10
    assert totals(card_with(10, "web", 0), cfg, AT + timedelta(days=SCORECARD_DAYS), 0).web == 0


def test_total_adds_behaviour_fit_and_negatives_and_never_goes_below_zero():
    card = Scorecard()
    card.apply([hit("email_opened", 5), hit("email_clicked", 10), hit("pricing_page", 15, "web")], AT, CONFIG)
    card.apply([hit("content_downloaded", 10, "content", content_id="a")], AT, CONFIG)
    card.set_fit(
        FitResult(
            fit=True,
            points=40,
            matched=[],
            missing=[],
            seniority=Seniority.VP,
            free_mail=False,
            competitor=False,
        )
    )
    result = totals(card, CONFIG, AT, sessions=4)
    assert (result.email_engagement, result.content_pieces, result.content, result.web, result.fit) == (
        15,
        1,
        10,
        15,
        40,
    )
    assert (result.total, result.band, result.sessions) == (80, "hot", 4)

    card.apply([hit("spam_complaint", -50, "negative"), hit("email_bounced", -200, "negative")], AT, CONFIG)
    result = totals(card, CONFIG, AT, sessions=4)
    assert (result.negative, result.total, result.band) == (-250, 0, "cold")


# --- bands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"), [(0, "cold"), (29, "cold"), (30, "warm"), (69, "warm"), (70, "hot"), (500, "hot")]
)
def test_bands(total, band):
    assert band_of(ScoreBands(warm=30, hot=70), total) == band


# --- seniority -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "seniority"),
    [
        ("CEO", Seniority.C_LEVEL),
        ("Chief Marketing Officer", Seniority.C_LEVEL),
        ("Co-Founder & CTO", Seniority.C_LEVEL),
        ("cofounder", Seniority.C_LEVEL),
        ("President", Seniority.C_LEVEL),
        ("President and CEO", Seniority.C_LEVEL),
        ("Vice President of Sales", Seniority.VP),
        ("Senior Vice-President, Finance", Seniority.VP),
        ("V.P. Marketing", Seniority.VP),
        ("SVP Engineering", Seniority.VP),
        ("EVP", Seniority.VP),
        ("Director of Engineering Operations", Seniority.DIRECTOR),
        ("Sr. Director, Product Management", Seniority.DIRECTOR),
        ("Head of Growth", Seniority.DIRECTOR),
        ("Operations Manager", Seniority.MANAGER),
        ("Cooperation Manager", Seniority.MANAGER),
        ("Team Lead, Platform", Seniority.MANAGER),
        ("Lead Generation Specialist", Seniority.INDIVIDUAL),
        ("Assistant to the CEO", Seniority.INDIVIDUAL),
        ("Program Manager, Office of the CTO", Seniority.MANAGER),
        ("Executive Assistant for the CFO", Seniority.INDIVIDUAL),
        ("Directory Services Administrator", Seniority.INDIVIDUAL),
        ("Software Engineer", Seniority.INDIVIDUAL),
        ("Leadership Development Coordinator", Seniority.INDIVIDUAL),
        ("", Seniority.UNKNOWN),
        ("   ", Seniority.UNKNOWN),
        (None, Seniority.UNKNOWN),
    ],
)
def test_seniority_of(title, seniority):
    assert seniority_of(title) is seniority


# --- fit -----------------------------------------------------------------------------------------

IDEAL = {
    "email_domain": "acme.io",
    "industry": "Software",
    "employees": 400,
    "job_title": "VP Marketing",
    "country": "us",
}


@pytest.mark.parametrize(
    ("change", "fit", "points", "missing", "flags"),
    [
        ({}, True, 40, [], (False, False)),
        ({"industry": "  Financial   Services "}, True, 40, [], (False, False)),
        ({"country": None}, True, 35, ["country"], (False, False)),
        ({"employees": 50}, True, 40, [], (False, False)),
        ({"employees": 5000}, True, 40, [], (False, False)),
        ({"employees": 49}, True, 30, ["employees"], (False, False)),
        ({"employees": 5001, "country": "BR"}, False, 25, ["employees", "country"], (False, False)),
        (
            {"job_title": "Marketing Manager", "industry": "Retail"},
            False,
            15,
            ["industry", "seniority"],
            (False, False),
        ),
        ({"job_title": None, "employees": None}, False, 15, ["employees", "seniority"], (False, False)),
        ({"email_domain": "GMail.com"}, True, 30, [], (True, False)),
        ({"email_domain": "competitor-one.example"}, False, -10, [], (False, True)),
        ({"email_domain": "eu.competitor-two.example"}, False, -10, [], (False, True)),
        ({"email_domain": "notcompetitor-one.example"}, True, 40, [], (False, False)),
        ({"email_domain": None}, True, 40, [], (False, False)),
    ],
)
def test_assess_fit(change, fit, points, missing, flags):
    result = assess_fit(CONFIG, FirmographicProfile(**{**IDEAL, **change}))
    assert (result.fit, result.points, result.missing) == (fit, points, missing)
    assert (result.free_mail, result.competitor) == flags
    assert sorted(result.matched + result.missing) == sorted(
        ["industry", "employees", "seniority", "country"]
    )


def test_fit_flags_follow_the_latest_assessment():
    card = Scorecard()
    card.set_fit(assess_fit(CONFIG, FirmographicProfile(**{**IDEAL, "email_domain": "gmail.com"})))
    assert card.flags == ["free_mail"]
    card.set_fit(assess_fit(CONFIG, FirmographicProfile(**IDEAL)))
    assert card.flags == [] and card.fit is not None and card.fit.fit


def test_an_unassessed_dimension_is_neither_matched_nor_missing():
    cfg = config(icp=CONFIG.icp.model_copy(update={"countries": [], "fit_min_matches": 3}))
    result = assess_fit(cfg, FirmographicProfile(**{**IDEAL, "country": None}))
    assert result.fit and "country" not in result.matched + result.missing


# --- MQL -----------------------------------------------------------------------------------------


def scores(email: int = 74, pieces: int = 3) -> ScoreTotals:
    return ScoreTotals(
        email_engagement=email,
        content_pieces=pieces,
        content=0,
        web=0,
        form=0,
        event=0,
        negative=0,
        fit=0,
        sessions=0,
        total=0,
        band="cold",
    )


FIT = assess_fit(CONFIG, FirmographicProfile(**IDEAL))
NO_FIT = assess_fit(CONFIG, FirmographicProfile(**{**IDEAL, "industry": "Retail", "country": "BR"}))
COMPETITOR = assess_fit(CONFIG, FirmographicProfile(**{**IDEAL, "email_domain": "competitor-one.example"}))


@pytest.mark.parametrize(
    ("email", "pieces", "sessions", "fit", "missing"),
    [
        (74, 3, 5, FIT, []),
        (69, 3, 5, FIT, ["email engagement 69 < 70"]),
        (74, 2, 5, FIT, ["content 2 < 3 pieces"]),
        (74, 3, 4, FIT, ["website activity 4 < 5 sessions"]),
        (74, 3, 5, None, ["ICP fit not assessed yet"]),
        (74, 3, 5, NO_FIT, ["no ICP fit: 2 dimensions matched, missing industry, country"]),
        (74, 3, 5, COMPETITOR, ["no ICP fit: competitor"]),
        (
            0,
            0,
            0,
            None,
            [
                "email engagement 0 < 70",
                "content 0 < 3 pieces",
                "website activity 0 < 5 sessions",
                "ICP fit not assessed yet",
            ],
        ),
    ],
)
def test_mql_decision(email, pieces, sessions, fit, missing):
    decision = mql_decision(CONFIG.mql, scores(email, pieces), sessions, fit)
    assert decision.missing == missing
    assert decision.qualified is (missing == [])
    assert len(decision.met) + len(decision.missing) == 4


def test_mql_met_reasons_are_readable():
    decision = mql_decision(CONFIG.mql, scores(74, 3), 6, FIT)
    assert decision.met == [
        "email engagement 74 >= 70",
        "content 3 >= 3 pieces",
        "website activity 6 >= 5 sessions",
        "ICP fit (industry, employees, seniority, country)",
    ]


def test_mql_without_the_icp_requirement():
    decision = mql_decision(MqlRule(require_icp_fit=False), scores(), 5, None)
    assert decision.qualified and len(decision.met) == 3


# --- configuration -------------------------------------------------------------------------------


def test_the_shipped_config_loads_with_the_seeds_mql_rule():
    assert CONFIG.version == 1 and CONFIG.half_life_days == 30
    assert CONFIG.mql == MqlRule(email_engagement_min=70, content_min=3, sessions_min=5, require_icp_fit=True)
    assert len({rule.id for rule in CONFIG.rules}) == len(CONFIG.rules) >= 10
    assert CONFIG.icp.countries == ["US", "GB", "DE", "FR", "CA", "AU", "NL"]
    assert "gmail.com" in CONFIG.domains.free_mail


MINIMAL = """
version = 1
half_life_days = 30
[icp]
industries = ["software"]
{extra}
[[rules]]
id = "opened"
event = "email_opened"
points = 5
category = "email"
{rule}
"""


@pytest.mark.parametrize(
    ("extra", "rule", "names"),
    [
        ("", "max_per_dya = 3", ["rules[0] (id 'opened').max_per_dya", "Extra inputs"]),
        ("", "max_per_day = 0", ["rules[0] (id 'opened').max_per_day", "greater than or equal to 1"]),
        (
            "",
            '[[rules]]\nid = "opened"\nevent = "email_clicked"\npoints = 1\ncategory = "email"',
            ["rules", "'opened'", "more than once"],
        ),
        (
            "",
            '[[rules]]\nid = "x"\nevent = "email_opend"\npoints = 1\ncategory = "email"',
            ["rules[1] (id 'x').event"],
        ),
        (
            "",
            '[[rules]]\nid = "x"\nevent = "track"\npoints = "ten"\ncategory = "web"',
            ["rules[1] (id 'x').points", "integer"],
        ),
        (
            "",
            '[[rules]]\nid = "x"\nevent = "track"\npoints = 5\ncategory = "negative"',
            ["rules[1] (id 'x')", "points", "below 0"],
        ),
        (
            "",
            '[[rules]]\nid = "x"\nevent = "track"\npoints = 5\ncategory = "social"',
            ["rules[1] (id 'x').category"],
        ),
        (
            "",
            '[[rules]]\nid = "has space"\nevent = "track"\npoints = 5\ncategory = "web"',
            ["rules[1] (id 'has space').id"],
        ),
        ('countries = ["USA"]', "", ["icp.countries", "USA"]),
        ("min_employees = 10\nmax_employees = 5", "", ["icp", "min_employees 10 is above max_employees 5"]),
        ("fit_min_matches = 2", "", ["icp", "fit_min_matches 2"]),
        ('seniorities = ["boss"]', "", ["icp.seniorities[0]"]),
        ("[icp.points]\nreach = 5", "", ["icp.points.reach"]),
        ("[bands]\nwarm = 80\nhot = 70", "", ["bands", "warm 80 is above hot 70"]),
    ],
)
def test_a_bad_file_names_the_field_and_the_problem(extra, rule, names):
    with pytest.raises(ValueError) as error:
        parse_scoring(MINIMAL.format(extra=extra, rule=rule), source="scoring.toml")
    message = str(error.value)
    assert message.startswith("scoring.toml: ")
    for name in names:
        assert name in message


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("half_life_days = 30\n[icp]", ["version: Field required"]),
        ("version = 2\nhalf_life_days = 30\n[icp]", ["version", "not supported"]),
        ("version = 1\nhalf_life_days = -1\n[icp]", ["half_life_days"]),
        ("version = 1\nhalf_life_days = 30", ["icp: Field required"]),
        (
            "version = 1\nhalf_life_days = 30\n[icp]\n[mql]\nemail_engagement_min = 'high'",
            ["mql.email_engagement_min"],
        ),
        ("version = 1\nhalf_life_days = [", ["not valid TOML"]),
    ],
)
def test_bad_top_level_values_are_named(text, names):
    with pytest.raises(ValueError) as error:
        parse_scoring(text)
    for name in names:
        assert name in str(error.value)


def test_load_scoring_names_the_file(tmp_path):
    path = tmp_path / "scoring.toml"
    path.write_text(MINIMAL.format(extra="", rule="") + "\n[domains]\nfree_mail = ['@GMail.com']\n")
    assert load_scoring(path).domains.free_mail == ["gmail.com"]
    path.write_text("version = 1\n")
    with pytest.raises(ValueError, match=str(path)):
        load_scoring(path)
