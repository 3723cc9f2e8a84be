"""Experiment exposures: a lead saw a variant (a sequence's split, a landing page, an email)."""

from __future__ import annotations

from temporalio import activity

from domain.experiments import ExposureInput
from store.db import SessionFactory
from store.experiments import ExperimentStore


class ExperimentActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._store = ExperimentStore(sessions)

    @activity.defn(name="experiments.expose")
    async def expose(self, data: ExposureInput) -> str:
        """Recorded once per (experiment, lead); returns the variant the lead keeps."""
        return await self._store.expose(data)

    def all(self) -> list[object]:
        return [self.expose]
