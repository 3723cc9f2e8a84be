"""Sessions from the page views' own times, and engagement time (domain/sessions.py, the fold)."""

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import EventType, LeadEvent, Touch
from domain.lead import Activity, LeadState
from domain.sessions import (
    MAX_ENGAGEMENT_MS,
    VIEWS_KEPT,
    WebSessions,
    WebView,
    campaign_of,
    derive,
    engagement_ms,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def minutes(*offsets: float, campaign: str | None = None) -> list[WebView]:
    return [WebView(at=T0 + timedelta(minutes=m), campaign=campaign) for m in offsets]


def view_event(at: datetime, *, campaign: str | None = None, **properties: object) -> LeadEvent:
    return LeadEvent(
        event_id=f"e-{at.isoformat()}-{campaign}",
        type=EventType.PAGE,
        source="segment",
        occurred_at=at,
        properties=dict(properties),
        touch=Touch(source="google" if campaign else None, campaign=campaign),
    )


def test_thirty_minutes_of_quiet_end_a_session():
    assert len(derive(minutes(0, 10, 39, 69))) == 1  # never more than 30 minutes apart
    sessions = derive(minutes(0, 10, 41))
    assert [s.page_views for s in sessions] == [2, 1]
    assert sessions[0].duration_seconds == 600


def test_a_new_campaign_starts_a_session_and_a_plain_view_continues_one():
    views = [
        *minutes(0, campaign="spring"),
        *minutes(2),  # an internal link: no campaign parameters
        *minutes(4, campaign="spring"),  # the same campaign's link again
        *minutes(6, campaign="launch"),
    ]
    assert [(s.campaign, s.page_views) for s in derive(views)] == [("spring", 3), ("launch", 1)]


def test_a_campaign_after_a_direct_visit_starts_a_session():
    assert len(derive([*minutes(0), *minutes(5, campaign="nov")])) == 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 60 * 24 * 14), st.sampled_from([None, None, "a", "b"])),
        min_size=1,
        max_size=60,
    ),
    st.randoms(use_true_random=False),
)
def test_the_order_views_arrive_in_does_not_change_the_sessions(views, shuffle: random.Random):
    made = [WebView(at=T0 + timedelta(minutes=m), campaign=c) for m, c in views]
    in_order = WebSessions()
    for view in sorted(made, key=lambda v: v.at):
        in_order.add(view)
    arriving = WebSessions()
    mixed = list(made)
    shuffle.shuffle(mixed)
    for view in mixed:
        arriving.add(view)
    assert arriving.count == in_order.count == len(derive(made))


def test_sessions_stay_bounded_and_keep_their_count():
    web = WebSessions()
    for day in range(200):  # 200 days, a visit of three views a day
        for view in minutes(day * 24 * 60, day * 24 * 60 + 1, day * 24 * 60 + 2):
            web.add(view)
    assert web.count == 200
    assert len(web.views) <= VIEWS_KEPT
    assert len(web.recent()) == 10 and web.recent()[-1].page_views == 3


def test_one_endless_session_still_counts_once():
    web = WebSessions()
    for view in minutes(*range(0, 2 * VIEWS_KEPT * 5, 5), campaign="spring"):
        web.add(view)
    assert web.count == 1 and len(web.views) <= VIEWS_KEPT


def test_engagement_is_what_the_page_reports_within_bounds():
    assert engagement_ms({"engagement_time_msec": 12_500}) == 12_500
    assert engagement_ms({"engagement_time_msec": 10**12}) == MAX_ENGAGEMENT_MS
    for nonsense in (-5, "12", True, float("nan"), None):
        assert engagement_ms({"engagement_time_msec": nonsense}) in (0,)
    assert engagement_ms({}) == 0


def test_campaigns_are_named_by_source_medium_and_name():
    assert campaign_of(Touch(source="google", medium="cpc", campaign="brand")) == "google / cpc / brand"
    assert campaign_of(Touch(source="newsletter")) == "newsletter / - / -"
    assert campaign_of(Touch(referrer="https://news.example", path="/pricing")) is None


def test_the_fold_counts_anonymous_history_arriving_after_the_identify():
    state = LeadState(lead_id="l-1")
    today = T0 + timedelta(days=3)
    state.fold(view_event(today, campaign="nov", engagement_time_msec=30_000))
    # The visitor's views from before the identify reach the lead afterwards, oldest first.
    state.fold(view_event(T0, campaign="spring"))
    state.fold(view_event(T0 + timedelta(minutes=5)))
    state.fold(view_event(T0 + timedelta(days=1), campaign="launch"))
    activity = state.activity
    assert (activity.page_views, activity.sessions) == (4, 3)
    assert state.sessions_counted == 3
    assert activity.engagement_seconds == 30
    assert [s.campaign for s in activity.web.recent()] == [
        "google / - / spring",
        "google / - / launch",
        "google / - / nov",
    ]
    assert activity.last_web_activity_at == today


def test_a_state_from_before_derived_sessions_keeps_its_count():
    carried = Activity.model_validate(
        {"page_views": 9, "sessions": 4, "last_web_activity_at": T0.isoformat()}
    )
    carried.fold(view_event(T0 + timedelta(days=2)))
    assert carried.sessions == 5
