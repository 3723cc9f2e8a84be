"""A weekly window of local hours (a rep's working hours, a sequence's send window)."""

from __future__ import annotations

from datetime import time
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class WeeklyHours(BaseModel):
    """Weekdays (0 = Monday .. 6 = Sunday) and local [start, end), within one day."""

    # Unknown keys are typos in a hand-edited file: refuse them instead of ignoring them.
    model_config = ConfigDict(extra="forbid")
    # Whose local times these are, and what a window is called, for the error messages.
    local_times: ClassVar[str] = "local times"
    within: ClassVar[str] = "hours stay within a day"

    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    start: time = time(9, 0)
    end: time = time(17, 0)

    @field_validator("days")
    @classmethod
    def _valid_days(cls, days: list[int]) -> list[int]:
        if not days:
            raise ValueError("at least one day is needed (0 = Monday .. 6 = Sunday)")
        for day in days:
            if not 0 <= day <= 6:
                raise ValueError(f"{day} is not a day (0 = Monday .. 6 = Sunday)")
        return sorted(set(days))

    @model_validator(mode="after")
    def _start_before_end(self) -> WeeklyHours:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError(f"start and end are {self.local_times}: write them without an offset")
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end} ({self.within})")
        return self
