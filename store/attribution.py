"""Journeys for attribution, read from PostgreSQL: each lead's touchpoints (its events' campaign
parameters and referrers, one per visit), its milestones (the form that made it a lead, the MQL and
the accepted hand-off that opened the opportunity, the purchase that closed it) and its revenue;
and the stored results of attribution runs, one set per (range, model), replaced whole on a rerun.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text

from domain.attribution import Credit, Journey, Touchpoint, channel_of
from domain.events import WON_DEAL_STAGES
from domain.webhooks import DEAL_AMOUNT_EVENT
from store.db import SessionFactory

# Touches this long before the range still count for conversions inside it.
LOOKBACK = timedelta(days=90)
# Visits closer than this, from the same channel and campaign, are one touch.
SAME_VISIT = timedelta(minutes=30)
TOUCH_TYPES = ("page", "form_submitted", "lead_ad_submitted", "email_clicked", "meeting_booked", "track")
MILESTONE_TYPES = (
    "form_submitted",
    "lead_ad_submitted",
    "purchase",
    "subscription_started",
    "deal_stage_changed",
)

_EVENTS = text(
    """
    SELECT e.lead_id, e.type, e.name, e.occurred_at, e.lead_event
    FROM events e
    WHERE e.lead_id IS NOT NULL
      AND e.occurred_at >= :since AND e.occurred_at < :until
      AND e.type = ANY(:types)
    ORDER BY e.lead_id, e.occurred_at
    LIMIT :cap
    """
)
_HANDOFFS = text(
    """
    SELECT lead_id, min(mql_at) AS mql_at, min(accepted_at) AS accepted_at
    FROM handoffs WHERE lead_id = ANY(:ids) GROUP BY lead_id
    """
)


class SpendPlan(BaseModel):
    """Spend per channel per month (config/spend.toml), and the value an open opportunity counts
    for in pipeline when the CRM gives no amount."""

    currency: str = "USD"
    default_opportunity_amount: float = Field(0.0, ge=0)
    # {"2026-03": {"Paid Search": 5000}}
    months: dict[str, dict[str, float]] = Field(default_factory=dict)

    def for_range(self, start: date, end: date) -> dict[str, float]:
        """Spend by channel over the months the range touches, prorated by the days it covers."""
        totals: dict[str, float] = defaultdict(float)
        day = start
        while day < end:
            month = day.strftime("%Y-%m")
            next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
            days_in_month = (next_month - day.replace(day=1)).days
            covered = (min(end, next_month) - day).days
            for channel, amount in self.months.get(month, {}).items():
                totals[channel] += amount * covered / days_in_month
            day = min(end, next_month)
        return {k: round(v, 2) for k, v in totals.items()}


def load_spend(path: Path) -> SpendPlan:
    if not path.exists():
        return SpendPlan()
    return SpendPlan.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


def _amount(lead_event: dict[str, Any]) -> float:
    value = (lead_event.get("properties") or {}).get("amount") or (lead_event.get("properties") or {}).get(
        "revenue"
    )
    try:
        return float(value) if value is not None and not isinstance(value, bool) else 0.0
    except (TypeError, ValueError):
        return 0.0


def _touch(lead_event: dict[str, Any], event_type: str, at: datetime) -> Touchpoint | None:
    touch = lead_event.get("touch") or {}
    properties = lead_event.get("properties") or {}
    source, medium, referrer = touch.get("source"), touch.get("medium"), touch.get("referrer")
    if event_type == "email_clicked":
        source, medium = source or lead_event.get("source") or "email", medium or "email"
    elif event_type == "track" and not (source or medium or touch.get("campaign")):
        return None  # product use and other tracks are not marketing touches unless tagged
    landing = properties.get("path") or properties.get("url")
    return Touchpoint(
        at=at,
        channel=channel_of(source, medium, referrer),
        source=source,
        medium=medium,
        campaign=touch.get("campaign"),
        content=touch.get("content"),
        term=touch.get("term"),
        landing_page=str(landing) if landing else None,
        kind=event_type,
    )


def build_journeys(
    rows: list[tuple[str, str, str | None, datetime, dict[str, Any]]],
    handoffs: Mapping[str, tuple[datetime | None, datetime | None]],
    *,
    default_opportunity_amount: float = 0.0,
) -> list[Journey]:
    """Journeys from event rows ordered by lead and time (pure: the table tests feed it rows)."""
    by_lead: dict[str, list[tuple[str, str | None, datetime, dict[str, Any]]]] = defaultdict(list)
    for lead_id, event_type, name, at, lead_event in rows:
        by_lead[lead_id].append((event_type, name, at, lead_event if isinstance(lead_event, dict) else {}))
    journeys = []
    for lead_id, events in by_lead.items():
        journey = Journey(lead_id=lead_id)
        deal_amount = 0.0
        for event_type, name, at, lead_event in events:
            if event_type == "track" and name == DEAL_AMOUNT_EVENT:
                deal_amount = _amount(lead_event)  # the CRM's latest value of the deal
            if event_type in TOUCH_TYPES:
                touch = _touch(lead_event, event_type, at)
                last = journey.touchpoints[-1] if journey.touchpoints else None
                if touch is not None and not (
                    last is not None
                    and at - last.at < SAME_VISIT
                    and (last.channel, last.campaign) == (touch.channel, touch.campaign)
                ):
                    journey.touchpoints.append(touch)
            if event_type in ("form_submitted", "lead_ad_submitted") and journey.lead_created_at is None:
                journey.lead_created_at = at
            won = (
                event_type == "deal_stage_changed"
                and str((lead_event.get("properties") or {}).get("stage", "")).lower() in WON_DEAL_STAGES
            )
            if event_type in ("purchase", "subscription_started") or won:
                if journey.closed_at is None:
                    journey.closed_at = at
                if event_type == "purchase":
                    journey.revenue += _amount(lead_event)
        if journey.closed_at is not None and not journey.revenue:
            journey.revenue = deal_amount  # a deal won in the CRM, no purchase event: its amount
        mql_at, accepted_at = handoffs.get(lead_id, (None, None))
        journey.mql_at = mql_at
        journey.opportunity_at = accepted_at or (journey.closed_at if journey.closed_at else None)
        if journey.opportunity_at is not None:
            journey.opportunity_amount = journey.revenue or deal_amount or default_opportunity_amount
        journeys.append(journey)
    return journeys


class AttributionStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def journeys(
        self,
        start: datetime,
        end: datetime,
        *,
        default_opportunity_amount: float = 0.0,
        cap: int = 500_000,
        clip: bool = True,
    ) -> list[Journey]:
        """Journeys with their touches from `LOOKBACK` before `start`; with `clip`, revenue counted
        when the close falls in [start, end), pipeline when the opportunity opened in it."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    _EVENTS,
                    {
                        "since": start - LOOKBACK,
                        "until": end,
                        "types": list({*TOUCH_TYPES, *MILESTONE_TYPES}),
                        "cap": cap,
                    },
                )
            ).all()
            ids = list({row[0] for row in rows})
            found = (await session.execute(_HANDOFFS, {"ids": ids})).all() if ids else []
        handoffs = {row.lead_id: (row.mql_at, row.accepted_at) for row in found}
        journeys = build_journeys(
            [(r[0], r[1], r[2], r[3], r[4]) for r in rows],
            handoffs,
            default_opportunity_amount=default_opportunity_amount,
        )
        for journey in journeys if clip else []:
            if journey.closed_at is not None and not start <= journey.closed_at < end:
                journey.closed_at, journey.revenue = None, 0.0
            if journey.opportunity_at is not None and not start <= journey.opportunity_at < end:
                journey.opportunity_at, journey.opportunity_amount = None, 0.0
        return journeys

    async def save(
        self, start: date, end: date, model: str, credits: list[Credit], computed_at: datetime
    ) -> None:
        """One result set per (range, model): a rerun replaces it whole, in one transaction."""
        body = json.dumps([c.model_dump() for c in credits])
        async with self._sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO attribution_runs (range_start, range_end, model, credits, computed_at) "
                    "VALUES (:start, :end, :model, CAST(:body AS jsonb), :at) "
                    "ON CONFLICT (range_start, range_end, model) DO UPDATE "
                    "SET credits = excluded.credits, computed_at = excluded.computed_at, "
                    "runs = attribution_runs.runs + 1"
                ),
                {"start": start, "end": end, "model": model, "body": body, "at": computed_at},
            )

    async def saved(self, start: date, end: date, model: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT credits, computed_at, runs FROM attribution_runs "
                        "WHERE range_start = :start AND range_end = :end AND model = :model"
                    ),
                    {"start": start, "end": end, "model": model},
                )
            ).one_or_none()
        if row is None:
            return None
        return {"credits": row.credits, "computed_at": row.computed_at.isoformat(), "runs": row.runs}
