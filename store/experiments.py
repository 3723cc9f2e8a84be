"""Experiment exposures and promotions in PostgreSQL, and each arm's conversions counted from the
events table (a lead converts when a matching event follows its first exposure within the window)."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text

from domain.experiments import Arm, ExposureInput
from domain.sequences import Duration, EventMatch, load_sequences
from store.db import SessionFactory

_EXISTING = text("SELECT variant FROM experiment_exposures WHERE experiment_id = :exp AND lead_id = :lead")
_PROMOTED = text("SELECT variant FROM experiment_promotions WHERE experiment_id = :exp")
_INSERT = text(
    "INSERT INTO experiment_exposures (experiment_id, lead_id, variant, source, exposed_at) "
    "VALUES (:exp, :lead, :variant, :source, :at) ON CONFLICT DO NOTHING"
)
_ARMS = text(
    """
    SELECT x.variant, count(*) AS exposed,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM events e
               WHERE e.lead_id = x.lead_id AND e.type = :type
                 AND (CAST(:name AS text) IS NULL OR lower(e.name) = lower(CAST(:name AS text)))
                 AND e.occurred_at >= x.exposed_at AND e.occurred_at < x.exposed_at + :window)) AS converted
    FROM experiment_exposures x WHERE x.experiment_id = :exp
    GROUP BY x.variant ORDER BY x.variant
    """
)


class ExperimentConfig(BaseModel):
    model_config = {"extra": "forbid"}

    id: str = Field(min_length=1, max_length=200)
    name: str = ""
    control: str | None = None
    conversion: EventMatch | None = None
    window: Duration | None = None
    minimum_lift: float | None = Field(None, gt=0, le=10)


class ExperimentDefaults(BaseModel):
    model_config = {"extra": "forbid"}

    conversion: EventMatch = EventMatch.model_validate({"type": "meeting_booked"})
    window: Duration = timedelta(days=30)
    minimum_lift: float = Field(0.2, gt=0, le=10)


class ExperimentCatalog(BaseModel):
    model_config = {"extra": "forbid"}

    defaults: ExperimentDefaults = Field(default_factory=ExperimentDefaults)
    experiments: list[ExperimentConfig] = Field(default_factory=list)

    def resolved(self, experiment_id: str, sequences_dir: Path | None = None) -> ExperimentConfig:
        """The experiment's settings: its entry, else the sequence goal for a split, else defaults."""
        found = next((e for e in self.experiments if e.id == experiment_id), None)
        config = found.model_copy() if found else ExperimentConfig(id=experiment_id)
        if config.conversion is None and sequences_dir is not None and ":" in experiment_id:
            sequence = load_sequences(sequences_dir).get(experiment_id.split(":", 1)[0])
            if sequence is not None and sequence.goal is not None:
                config.conversion = sequence.goal
        config.conversion = config.conversion or self.defaults.conversion
        config.window = config.window or self.defaults.window
        config.minimum_lift = config.minimum_lift or self.defaults.minimum_lift
        return config


def load_catalog(path: Path) -> ExperimentCatalog:
    if not path.exists():
        return ExperimentCatalog()
    return ExperimentCatalog.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


class ExperimentStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def expose(self, data: ExposureInput) -> str:
        """The lead's variant for good: the one first recorded, else (for a sequence's split) the
        promoted winner, else the one given (the deterministic assignment, or what a page showed)."""
        async with self._sessions() as session, session.begin():
            existing = (
                await session.execute(_EXISTING, {"exp": data.experiment_id, "lead": data.lead_id})
            ).scalar()
            if existing is not None:
                return str(existing)
            promoted = (await session.execute(_PROMOTED, {"exp": data.experiment_id})).scalar()
            # We assign sequence variants, so a promotion changes what a new lead gets; a page reports
            # what it showed, which is what counts (the page's team ships the promoted one).
            ours = data.source == "sequence" and data.variant != "holdout"
            variant = str(promoted) if promoted and ours else data.variant
            await session.execute(
                _INSERT,
                {
                    "exp": data.experiment_id,
                    "lead": data.lead_id,
                    "variant": variant,
                    "source": data.source,
                    "at": data.exposed_at,
                },
            )
            again = (
                await session.execute(_EXISTING, {"exp": data.experiment_id, "lead": data.lead_id})
            ).scalar()
        return str(again or variant)

    async def arms(self, experiment_id: str, conversion: EventMatch, window: timedelta) -> list[Arm]:
        params: dict[str, Any] = {
            "exp": experiment_id,
            "type": conversion.type.value,
            "name": conversion.name,
            "window": window,
        }
        async with self._sessions() as session:
            rows = (await session.execute(_ARMS, params)).all()
        return [Arm(variant=r.variant, exposed=int(r.exposed), converted=int(r.converted)) for r in rows]

    async def promote(self, experiment_id: str, variant: str, by: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO experiment_promotions (experiment_id, variant, promoted_by) "
                    "VALUES (:exp, :v, :by) "
                    "ON CONFLICT (experiment_id) DO UPDATE SET variant = excluded.variant, "
                    "promoted_by = excluded.promoted_by, promoted_at = now()"
                ),
                {"exp": experiment_id, "v": variant, "by": by},
            )

    async def promoted(self, experiment_id: str) -> str | None:
        async with self._sessions() as session:
            value = (await session.execute(_PROMOTED, {"exp": experiment_id})).scalar()
        return str(value) if value else None

    async def list(self) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT experiment_id, count(*) AS exposed, count(DISTINCT variant) AS arms, "
                        "min(exposed_at) AS first_exposure FROM experiment_exposures GROUP BY experiment_id "
                        "ORDER BY experiment_id"
                    )
                )
            ).all()
        return [
            {
                "experiment_id": r.experiment_id,
                "exposed": int(r.exposed),
                "arms": int(r.arms),
                "first_exposure": r.first_exposure.isoformat(),
            }
            for r in rows
        ]
