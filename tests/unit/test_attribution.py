"""Attribution, exact on hand-computed journeys: channels as GA4's default grouping has them, every
model's shares, revenue, pipeline influenced and ROI by channel."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.attribution import Journey, Touchpoint, attribute, channel_of, weights

D0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return D0 + timedelta(days=n)


@pytest.mark.parametrize(
    ("source", "medium", "referrer", "channel"),
    [
        ("google", "cpc", None, "Paid Search"),
        ("bing", "ppc", None, "Paid Search"),
        ("linkedin", "paid_social", None, "Paid Social"),
        ("youtube", "cpv", None, "Paid Video"),
        ("somesite", "cpc", None, "Paid Other"),
        ("adnetwork", "display", None, "Display"),
        ("newsletter", "email", None, "Email"),
        ("partner-site", "affiliate", None, "Affiliates"),
        ("google", "organic", None, "Organic Search"),
        (None, None, "https://www.google.com/", "Organic Search"),
        ("facebook", "social", None, "Organic Social"),
        (None, None, "https://www.linkedin.com/feed", "Organic Social"),
        ("youtube", None, None, "Organic Video"),
        (None, None, "https://news.ycombinator.com/item", "Referral"),
        ("partner-blog", "referral", None, "Referral"),
        ("(direct)", "(none)", None, "Direct"),
        (None, None, None, "Direct"),
    ],
)
def test_channels_follow_the_default_grouping(source, medium, referrer, channel):
    assert channel_of(source, medium, referrer) == channel


def touch(at: datetime, source: str | None, medium: str | None, campaign: str | None = None) -> Touchpoint:
    return Touchpoint(
        at=at, channel=channel_of(source, medium), source=source, medium=medium, campaign=campaign
    )


# J1: five touches over a month; the form on day 5 makes the lead, acceptance on day 10 opens a
# 1,200 opportunity, it closes on day 30 for 1,000.
J1 = Journey(
    lead_id="j1",
    touchpoints=[
        touch(day(0), "google", "cpc", "brand"),  # Paid Search
        touch(day(2), "linkedin", "social"),  # Organic Social
        touch(day(5), "newsletter", "email", "march"),  # Email (the form's visit)
        touch(day(10), None, None),  # Direct
        touch(day(20), "partner-blog", "referral"),  # Referral
    ],
    lead_created_at=day(5),
    mql_at=day(8),
    opportunity_at=day(10),
    opportunity_amount=1200,
    closed_at=day(30),
    revenue=1000,
)
# J2: one organic search visit, closed three days later for 500.
J2 = Journey(
    lead_id="j2",
    touchpoints=[touch(day(0), "google", "organic")],
    lead_created_at=day(0),
    opportunity_at=day(1),
    opportunity_amount=500,
    closed_at=day(3),
    revenue=500,
)
# J3: open pipeline only: 2,000 opened on day 4 after a paid social and a paid search visit.
J3 = Journey(
    lead_id="j3",
    touchpoints=[touch(day(1), "facebook", "paid_social"), touch(day(3), "bing", "cpc", "generic")],
    lead_created_at=day(1),
    opportunity_at=day(4),
    opportunity_amount=2000,
)

EXPECTED_J1 = {
    # Paid Search, Organic Social, Email, Direct, Referral
    "first_touch": [1000, 0, 0, 0, 0],
    "last_touch": [0, 0, 0, 0, 1000],
    "linear": [200, 200, 200, 200, 200],
    # Half-life 7 days, ages 30, 28, 25, 20, 10 days at the close: 2^(-age/7), normalised.
    "time_decay": [72.48, 88.35, 118.91, 195.10, 525.16],
    # 40% first touch, 40% the touch that made the lead (day 5), 20% over the other three.
    "u_shaped": [400, 66.67, 400, 66.67, 66.67],
    # 30% first, 30% lead creation, 30% opportunity creation (day 10), 10% over the other two.
    "w_shaped": [300, 50, 300, 300, 50],
    # Stages with touches: first touch, lead creation (days 2 and 5), nurture (day 10 <= the
    # opportunity), sales touch (day 20): a quarter each, split within a stage.
    "stage": [250, 125, 125, 250, 250],
}


@pytest.mark.parametrize("model", list(EXPECTED_J1))
def test_each_model_on_the_hand_computed_journey(model):
    shares = weights(J1, model)
    assert sum(s for _, s in shares) == pytest.approx(1.0)
    assert [round(1000 * s, 2) for _, s in shares] == pytest.approx(EXPECTED_J1[model], abs=0.01)


@pytest.mark.parametrize("model", list(EXPECTED_J1))
def test_a_single_touch_takes_everything(model):
    assert [s for _, s in weights(J2, model)] == [1.0]


def test_u_shaped_when_the_first_touch_made_the_lead():
    journey = J1.model_copy(update={"lead_created_at": day(1)})
    # The first touch holds both 40% shares; the other four share 20%.
    assert [round(s, 3) for _, s in weights(journey, "u_shaped")] == [0.8, 0.05, 0.05, 0.05, 0.05]


def test_w_shaped_without_an_opportunity_spreads_its_share():
    journey = J1.model_copy(update={"opportunity_at": None})
    # 30% + 30% on first and lead creation; the other three share 10% + the missing 30%.
    assert [round(s, 4) for _, s in weights(journey, "w_shaped")] == [0.3, 0.1333, 0.3, 0.1333, 0.1333]


def test_touches_after_the_close_count_only_in_the_stage_view():
    journey = J1.model_copy(update={"touchpoints": [*J1.touchpoints, touch(day(40), "newsletter", "email")]})
    assert len(weights(journey, "linear")) == 5
    stages = weights(journey, "stage")
    assert len(stages) == 6 and stages[-1][1] == pytest.approx(0.2)  # five stages now, expansion one


def test_revenue_pipeline_and_roi_by_channel():
    credits = {
        c.channel: c
        for c in attribute([J1, J2, J3], "linear", spend={"Paid Search": 500.0, "Paid Social": 1000.0})
    }
    assert credits["Organic Search"].revenue == 500 and credits["Organic Search"].conversions == 1
    assert credits["Paid Search"].revenue == 200 and credits["Paid Search"].conversions == 0.2
    # Pipeline influenced: J1's 1,200 for each channel that touched it by day 10, J3's 2,000.
    assert credits["Paid Search"].pipeline_influenced == 3200
    assert credits["Paid Social"].pipeline_influenced == 2000 and credits["Paid Social"].revenue == 0
    assert credits["Referral"].pipeline_influenced == 0  # it came after the opportunity opened
    assert credits["Paid Search"].roi == pytest.approx((200 - 500) / 500)
    assert credits["Paid Social"].roi == -1.0
    assert credits["Direct"].roi is None and credits["Direct"].spend is None
    assert sum(c.revenue for c in credits.values()) == pytest.approx(1500)
    assert credits["Paid Search"].leads_touched == 2


def test_by_campaign():
    credits = attribute([J1, J2, J3], "first_touch", by_campaign=True)
    found = {(c.channel, c.campaign): c.revenue for c in credits}
    assert found[("Paid Search", "brand")] == 1000
    assert found[("Organic Search", None)] == 500
    assert found[("Paid Search", "generic")] == 0
