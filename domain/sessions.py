"""Sessions and time on site, derived from the page views' own times.

A session, as the major analytics tools count one: page views of one visitor with no gap longer
than 30 minutes between them, and a new session whenever a view arrives from a new campaign (its
campaign parameters differ from the session's). Derived from the views themselves, in time
order, rather than counted as events arrive: a visitor's anonymous views from last week reach
the lead only when they identify, after today's, and must still count as the sessions they were.

Engagement time is what the page reports: `engagement_time_msec` on a page view or any event (GA4's
name for it), bounded per event so that one event cannot claim a day.

Pure and bounded: it lives in the lead's workflow state through continue-as-new.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from domain.events import Touch

SESSION_GAP = timedelta(minutes=30)
VIEWS_KEPT = 200
RECENT_SESSIONS_SHOWN = 10
ENGAGEMENT_PROPERTY = "engagement_time_msec"
MAX_ENGAGEMENT_MS = 30 * 60 * 1000


def engagement_ms(properties: dict[str, Any]) -> int:
    """The engagement time an event reports, in ms: 0 when none (or not a sane number)."""
    value = properties.get(ENGAGEMENT_PROPERTY)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return int(min(max(value, 0), MAX_ENGAGEMENT_MS))


def campaign_of(touch: Touch) -> str | None:
    """The campaign a view came from (source / medium / campaign), or None for a view without one."""
    if not (touch.source or touch.medium or touch.campaign):
        return None
    return " / ".join(part or "-" for part in (touch.source, touch.medium, touch.campaign))


class WebView(BaseModel):
    """One page or screen view, as sessions need it."""

    at: datetime
    campaign: str | None = None
    engaged_ms: int = 0


class SessionSummary(BaseModel):
    started_at: datetime
    ended_at: datetime
    page_views: int
    campaign: str | None = None
    engaged_seconds: float = 0.0

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


def _in_time(views: list[WebView]) -> list[WebView]:
    """By time; views at the same instant in one order whatever order they came in (a campaign's
    landing view first)."""
    return sorted(views, key=lambda v: (v.at, v.campaign is None, v.campaign or ""))


def _count(views: list[WebView]) -> int:
    """`len(derive(views))`, without building the summaries (the fold asks for it on every view)."""
    count, ended, campaign = 0, None, None
    for view in _in_time(views):
        if (
            ended is None
            or view.at - ended > SESSION_GAP
            or (view.campaign is not None and view.campaign != campaign)
        ):
            count, campaign = count + 1, view.campaign
        ended = view.at
    return count


def derive(views: list[WebView]) -> list[SessionSummary]:
    """The sessions of views (any order), oldest first."""
    sessions: list[SessionSummary] = []
    for view in _in_time(views):
        current = sessions[-1] if sessions else None
        new_campaign = view.campaign is not None and (current is None or view.campaign != current.campaign)
        if current is None or view.at - current.ended_at > SESSION_GAP or new_campaign:
            sessions.append(
                SessionSummary(
                    started_at=view.at,
                    ended_at=view.at,
                    page_views=1,
                    campaign=view.campaign,
                    engaged_seconds=view.engaged_ms / 1000,
                )
            )
        else:
            current.ended_at = view.at
            current.page_views += 1
            current.engaged_seconds += view.engaged_ms / 1000
    return sessions


class WebSessions(BaseModel):
    """A visitor's recent views (bounded) and what the older ones amounted to."""

    views: list[WebView] = Field(default_factory=list)
    # Whole sessions whose views were let go to keep `views` bounded (or counted before this model).
    closed_sessions: int = 0
    closed_engaged_ms: int = 0

    def add(self, view: WebView) -> None:
        self.views.append(view)
        if len(self.views) > VIEWS_KEPT:
            self._let_go_of_oldest()

    def _let_go_of_oldest(self) -> None:
        """Drop the oldest whole sessions until the views fit (a session is never split, unless
        one alone is larger than the bound: then its oldest views go, and it still counts once)."""
        ordered = _in_time(self.views)
        sessions = derive(ordered)
        dropped = 0
        for session in sessions[:-1]:
            if len(ordered) - dropped <= VIEWS_KEPT:
                break
            dropped += session.page_views
            self.closed_sessions += 1
            self.closed_engaged_ms += round(session.engaged_seconds * 1000)
        kept = ordered[dropped:]
        if len(kept) > VIEWS_KEPT:
            # One session larger than the bound: its oldest views go; the first one kept takes
            # the session's campaign, so the rest is still read as the same session.
            campaign = derive(kept)[0].campaign
            kept = kept[len(kept) - VIEWS_KEPT :]
            kept[0] = kept[0].model_copy(update={"campaign": campaign})
        self.views = kept

    @property
    def count(self) -> int:
        return self.closed_sessions + _count(self.views)

    def recent(self, limit: int = RECENT_SESSIONS_SHOWN) -> list[SessionSummary]:
        return derive(self.views)[-limit:]
