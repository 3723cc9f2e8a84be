"""The nightly batch's activities: attribution for a range and model (stored, replacing an earlier
run of the same range and model), and a day's integration-health rollup."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from temporalio import activity

from domain.attribution import attribute
from domain.reports import AttributionRunInput, AttributionRunResult, day_start
from store.attribution import AttributionStore, load_spend
from store.db import SessionFactory
from store.health import roll_up_day


class ReportActivities:
    def __init__(self, sessions: SessionFactory, *, spend_file: Path, half_life: timedelta) -> None:
        self._sessions = sessions
        self._store = AttributionStore(sessions)
        self._spend_file = spend_file
        self._half_life = half_life

    @activity.defn(name="reports.attribution")
    async def attribution(self, data: AttributionRunInput) -> AttributionRunResult:
        plan = load_spend(self._spend_file)
        journeys = await self._store.journeys(
            day_start(data.start),
            day_start(data.end),
            default_opportunity_amount=plan.default_opportunity_amount,
        )
        credits = attribute(
            journeys, data.model, half_life=self._half_life, spend=plan.for_range(data.start, data.end)
        )
        await self._store.save(data.start, data.end, data.model, credits, datetime.now(UTC))
        return AttributionRunResult(
            model=data.model,
            journeys=len(journeys),
            revenue=round(sum(c.revenue for c in credits), 2),
            channels=len(credits),
        )

    @activity.defn(name="reports.integration_rollup")
    async def integration_rollup(self, day: date) -> int:
        return await roll_up_day(self._sessions, day)

    def all(self) -> list[object]:
        return [self.attribution, self.integration_rollup]
