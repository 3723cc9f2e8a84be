"""The funnel of a cohort (the leads created in a range), pure: counts by stage, conversion from
the stage before, time in stage, the sales cycle, and the same split by first-touch channel and
campaign."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from statistics import median
from typing import Any

from domain.attribution import Journey

STAGES = ("lead", "mql", "sql", "customer")


def _reached(journey: Journey, stage: str) -> bool:
    """A stage counts as reached when it, or any later one, was: a purchase without a recorded
    hand-off still passed through qualification."""
    return any(_moment(journey, later) is not None for later in STAGES[STAGES.index(stage) :])


def _moment(journey: Journey, stage: str) -> datetime | None:
    return {
        "lead": journey.lead_created_at,
        "mql": journey.mql_at,
        "sql": journey.opportunity_at,
        "customer": journey.closed_at,
    }[stage]


def _days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400


def _stages(cohort: list[Journey]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    previous: str | None = None
    for stage in STAGES:
        reached = [j for j in cohort if _reached(j, stage)]
        row: dict[str, Any] = {"stage": stage, "count": len(reached)}
        if previous is not None:
            before = [j for j in cohort if _reached(j, previous)]
            row["conversion_from_previous"] = round(len(reached) / len(before), 4) if before else None
            gaps = [
                _days(start, end)
                for j in reached
                if (start := _moment(j, previous)) is not None and (end := _moment(j, stage)) is not None
            ]
            row["median_days_from_previous"] = round(median(gaps), 2) if gaps else None
        rows.append(row)
        previous = stage
    return rows


def funnel(journeys: list[Journey], start: datetime, end: datetime) -> dict[str, Any]:
    cohort = [j for j in journeys if j.lead_created_at is not None and start <= j.lead_created_at < end]
    cycles = [
        _days(j.lead_created_at, j.closed_at)
        for j in cohort
        if j.lead_created_at is not None and j.closed_at is not None
    ]
    by_channel: dict[tuple[str, str | None], list[Journey]] = defaultdict(list)
    for journey in cohort:
        touches = journey.sorted_touches()
        first = touches[0] if touches else None
        by_channel[(first.channel if first else "Unassigned", first.campaign if first else None)].append(
            journey
        )
    return {
        "leads": len(cohort),
        "stages": _stages(cohort),
        "sales_cycle_days": {
            "median": round(median(cycles), 2) if cycles else None,
            "mean": round(sum(cycles) / len(cycles), 2) if cycles else None,
            "won": len(cycles),
        },
        "by_first_touch": [
            {
                "channel": channel,
                "campaign": campaign,
                "stages": {row["stage"]: row["count"] for row in _stages(group)},
                "revenue": round(sum(j.revenue for j in group), 2),
            }
            for (channel, campaign), group in sorted(
                by_channel.items(), key=lambda kv: (-len(kv[1]), kv[0][0])
            )
        ],
    }
