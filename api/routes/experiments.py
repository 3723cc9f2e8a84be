"""Experiments: every test with exposures, one test's analysis (each arm against the control, a
two-proportion z-test, the interval of the difference, sample-size guidance, lift over the holdout),
and promoting a winner (leads new to the test get it from then on)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from api.context import AppContext, context
from domain.experiments import analyse
from domain.sequences import HOLDOUT
from store.experiments import ExperimentStore, load_catalog

router = APIRouter(tags=["experiments"])


class Promotion(BaseModel):
    variant: str = Field(min_length=1, max_length=100)
    by: str = Field(min_length=1, max_length=200)


@router.get(
    "/v1/experiments",
    summary="Every experiment with exposures, and the configured ones",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "experiments": [
                            {
                                "experiment_id": "welcome_nurture:invite_subject_test",
                                "exposed": 1840,
                                "arms": 3,
                                "first_exposure": "2026-11-02T09:00:12+00:00",
                                "name": "Welcome nurture: the webinar invite's subject",
                            }
                        ]
                    }
                }
            }
        }
    },
)
async def list_experiments(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    catalog = load_catalog(ctx.settings.experiments_file)
    seen = {row["experiment_id"]: row for row in await ExperimentStore(ctx.sessions).list()}
    for config in catalog.experiments:
        seen.setdefault(
            config.id, {"experiment_id": config.id, "exposed": 0, "arms": 0, "first_exposure": None}
        )
        seen[config.id]["name"] = config.name
    return {"experiments": sorted(seen.values(), key=lambda e: e["experiment_id"])}


@router.get(
    "/v1/experiments/{experiment_id}",
    summary="An experiment's results, arm by arm, with the verdict",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "experiment_id": "homepage_hero",
                        "control": "feature",
                        "winner": "outcome",
                        "verdict": "outcome beats feature",
                        "needed_per_arm": 3841,
                        "promoted": None,
                        "arms": [
                            {"variant": "feature", "exposed": 1000, "converted": 100, "rate": 0.1},
                            {
                                "variant": "outcome",
                                "exposed": 1000,
                                "converted": 130,
                                "rate": 0.13,
                                "lift_vs_control": 0.3,
                                "difference_ci95": [0.0021, 0.0579],
                                "p_value": 0.0355,
                                "significant": True,
                            },
                        ],
                        "lift_vs_holdout": {},
                        "conversion": {"type": "form_submitted"},
                        "window_days": 14,
                    }
                }
            }
        }
    },
)
async def get_experiment(
    experiment_id: str, request: Request, ctx: AppContext = Depends(context)
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    config = load_catalog(ctx.settings.experiments_file).resolved(experiment_id, ctx.settings.sequences_dir)
    store = ExperimentStore(ctx.sessions)
    assert config.conversion is not None and config.window is not None and config.minimum_lift is not None
    arms = await store.arms(experiment_id, config.conversion, config.window)
    if not arms:
        raise HTTPException(status_code=404, detail=f"no exposures for experiment {experiment_id!r}")
    if all(a.variant == HOLDOUT for a in arms):
        raise HTTPException(status_code=409, detail="only held-out leads so far: nothing to compare")
    result = analyse(
        experiment_id,
        arms,
        control=config.control,
        minimum_lift=config.minimum_lift,
        promoted=await store.promoted(experiment_id),
    )
    return {
        **result.model_dump(mode="json"),
        "name": config.name,
        "conversion": config.conversion.model_dump(mode="json"),
        "window_days": config.window.days,
    }


@router.post(
    "/v1/experiments/{experiment_id}/promote",
    summary="Promote a variant: leads new to the test get it; leads already in keep theirs",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"experiment_id": "homepage_hero", "promoted": "outcome", "by": "maria"}
                }
            }
        },
        404: {"description": "no such experiment"},
        422: {"description": "not one of its variants"},
    },
)
async def promote(
    experiment_id: str, body: Promotion, request: Request, ctx: AppContext = Depends(context)
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    store = ExperimentStore(ctx.sessions)
    variants = {row["experiment_id"]: row for row in await store.list()}
    if experiment_id not in variants:
        raise HTTPException(status_code=404, detail=f"no exposures for experiment {experiment_id!r}")
    config = load_catalog(ctx.settings.experiments_file).resolved(experiment_id, ctx.settings.sequences_dir)
    assert config.conversion is not None and config.window is not None
    known = {arm.variant for arm in await store.arms(experiment_id, config.conversion, config.window)}
    if body.variant == HOLDOUT or body.variant not in known:
        raise HTTPException(
            status_code=422, detail=f"variant: one of {sorted(known - {HOLDOUT})}, not {body.variant!r}"
        )
    await store.promote(experiment_id, body.variant, body.by)
    return {"experiment_id": experiment_id, "promoted": body.variant, "by": body.by}
