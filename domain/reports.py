"""The nightly batch (the seed's daily syncs): attribution for each model and the integration-health
rollup, for yesterday on a Temporal Schedule, or for any range on demand. Reruns replace results."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from pydantic import BaseModel, Field, model_validator

from domain.attribution import MODELS, Model

REPORTS_WORKFLOW_TYPE = "NightlyReports"
NIGHTLY_SCHEDULE_ID = "journeys-nightly-reports"
# 02:15 UTC: after the day's events are in, before anyone opens the dashboard.
NIGHTLY_CRON = "15 2 * * *"
MAX_RANGE_DAYS = 366


def day_start(day: date) -> datetime:
    """Midnight UTC opening `day`: a report's range [start, end) of days as instants."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def reports_workflow_id(start: date, end: date) -> str:
    return f"reports-{start.isoformat()}-{end.isoformat()}"


class ReportsInput(BaseModel):
    """A range [start, end) of days; none given: yesterday (what the schedule runs)."""

    start: date | None = None
    end: date | None = None
    models: list[Model] = Field(default_factory=lambda: list(MODELS))

    @model_validator(mode="after")
    def _range(self) -> ReportsInput:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither (yesterday)")
        if self.start and self.end:
            if self.end <= self.start:
                raise ValueError("end: must be after start")
            if (self.end - self.start).days > MAX_RANGE_DAYS:
                raise ValueError(f"end: at most {MAX_RANGE_DAYS} days after start")
        return self


class AttributionRunInput(BaseModel):
    start: date
    end: date
    model: Model


class AttributionRunResult(BaseModel):
    model: Model
    journeys: int
    revenue: float
    channels: int


class ReportsResult(BaseModel):
    start: date
    end: date
    attribution: list[AttributionRunResult]
    health_days: int
