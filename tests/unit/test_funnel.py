"""The funnel and the journeys read from event rows, on hand-made rows."""

from datetime import UTC, date, datetime, timedelta

from domain.attribution import attribute
from domain.funnel import funnel
from store.attribution import SpendPlan, build_journeys

D0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return D0 + timedelta(days=n)


def ev(lead: str, kind: str, at: datetime, touch: dict | None = None, **properties) -> tuple:
    return (lead, kind, None, at, {"touch": touch or {}, "properties": properties})


ROWS = [
    # a: paid search visit, form on day 1, MQL day 3, accepted day 4, bought day 10 for 900
    ev("a", "page", day(0), {"source": "google", "medium": "cpc", "campaign": "brand"}, path="/pricing"),
    ev(
        "a", "page", day(0) + timedelta(minutes=5), {"source": "google", "medium": "cpc", "campaign": "brand"}
    ),
    ev("a", "form_submitted", day(1), {"source": "newsletter", "medium": "email"}),
    ev("a", "track", day(2)),  # product use: not a touch
    ev("a", "purchase", day(10), amount=900),
    # b: organic social, form day 2, MQL day 6, never accepted
    ev("b", "page", day(2), {"source": "linkedin", "medium": "social"}),
    ev("b", "form_submitted", day(2)),
    # c: created before the range
    ev("c", "form_submitted", day(-20), {"source": "google", "medium": "organic"}),
]
HANDOFFS = {"a": (day(3), day(4)), "b": (day(6), None)}


def test_journeys_from_rows():
    journeys = {j.lead_id: j for j in build_journeys(ROWS, HANDOFFS, default_opportunity_amount=5000)}
    a = journeys["a"]
    # The two paid visits five minutes apart are one touch; the form's email touch is another.
    assert [t.channel for t in a.touchpoints] == ["Paid Search", "Email"]
    assert a.touchpoints[0].landing_page == "/pricing"
    assert (a.lead_created_at, a.mql_at, a.opportunity_at, a.closed_at) == (day(1), day(3), day(4), day(10))
    assert a.revenue == 900 and a.opportunity_amount == 900
    b = journeys["b"]
    assert b.opportunity_at is None and b.mql_at == day(6) and b.closed_at is None
    # The form without campaign parameters counts as a direct touch.
    assert [t.channel for t in b.touchpoints] == ["Organic Social", "Direct"]


def test_funnel_of_a_cohort():
    journeys = build_journeys(ROWS, HANDOFFS)
    report = funnel(journeys, day(0), day(7))
    assert report["leads"] == 2
    stages = {row["stage"]: row for row in report["stages"]}
    assert [stages[s]["count"] for s in ("lead", "mql", "sql", "customer")] == [2, 2, 1, 1]
    assert stages["mql"]["conversion_from_previous"] == 1.0
    assert stages["sql"]["conversion_from_previous"] == 0.5
    assert stages["mql"]["median_days_from_previous"] == 3.0  # a: 2 days, b: 4 days
    assert stages["customer"]["median_days_from_previous"] == 6.0
    assert report["sales_cycle_days"] == {"median": 9.0, "mean": 9.0, "won": 1}
    first = {row["channel"]: row for row in report["by_first_touch"]}
    assert first["Paid Search"]["stages"]["customer"] == 1 and first["Paid Search"]["revenue"] == 900
    assert first["Organic Social"]["stages"] == {"lead": 1, "mql": 1, "sql": 0, "customer": 0}


def test_spend_is_prorated_over_the_range():
    plan = SpendPlan(months={"2026-03": {"Paid Search": 3100}, "2026-04": {"Paid Search": 3000}})
    assert plan.for_range(date(2026, 3, 1), date(2026, 4, 1)) == {"Paid Search": 3100}
    assert plan.for_range(date(2026, 3, 22), date(2026, 4, 11)) == {"Paid Search": 1000 + 1000}
    credits = {
        c.channel: c
        for c in attribute(build_journeys(ROWS, HANDOFFS), "first_touch", spend={"Paid Search": 300})
    }
    assert credits["Paid Search"].revenue == 900 and credits["Paid Search"].roi == 2.0


def test_a_purchase_without_a_hand_off_still_passed_every_stage():
    rows = [ev("d", "form_submitted", day(1)), ev("d", "purchase", day(2), amount=100)]
    report = funnel(build_journeys(rows, {}), day(0), day(7))
    assert [s["count"] for s in report["stages"]] == [1, 1, 1, 1]
    assert all(s.get("conversion_from_previous", 1.0) == 1.0 for s in report["stages"])


def test_deal_amounts_from_the_crm_value_pipeline_and_a_won_deal():
    amount = {"touch": {}, "properties": {"amount": 24000, "deal_id": "9"}}
    won = {"touch": {}, "properties": {"stage": "closedwon", "deal_id": "9"}}
    rows = [
        ev("e", "form_submitted", day(1), {"source": "google", "medium": "cpc"}),
        ("e", "track", "Deal Amount Changed", day(3), amount),
        ("e", "deal_stage_changed", "closedwon", day(9), won),
    ]
    (journey,) = build_journeys(rows, {"e": (day(2), day(3))}, default_opportunity_amount=5000)
    assert journey.opportunity_amount == 24000 and journey.revenue == 24000 and journey.closed_at == day(9)
    open_deal = build_journeys(rows[:2], {"e": (day(2), day(3))}, default_opportunity_amount=5000)[0]
    assert open_deal.opportunity_amount == 24000 and open_deal.revenue == 0
