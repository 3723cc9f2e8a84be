"""Measure: attribution by channel and campaign, the funnel, integration health by day, and the
nightly batch run on demand for any range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from api.context import AppContext, context
from domain.attribution import MODELS, Model, attribute
from domain.funnel import funnel
from domain.reports import (
    MAX_RANGE_DAYS,
    REPORTS_WORKFLOW_TYPE,
    ReportsInput,
    day_start,
    reports_workflow_id,
)
from store.attribution import AttributionStore, load_spend
from store.flows import flow_report
from store.health import daily_health

router = APIRouter(tags=["measure"])
DASHBOARD = Path(__file__).resolve().parents[1] / "static" / "dashboard.html"
MODEL_NAMES = ", ".join(MODELS)


# Reports cover the engine's own years; far dates only overflow the arithmetic.
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 1, 1)


def _range(start: date | None, end: date | None, default_days: int = 30) -> tuple[date, date]:
    for name, value in (("start", start), ("end", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise HTTPException(status_code=422, detail=f"{name}: must be between {EARLIEST} and {LATEST}")
    end = end or datetime.now(UTC).date() + timedelta(days=1)
    start = start or end - timedelta(days=default_days)
    if end <= start:
        raise HTTPException(status_code=422, detail="end: must be after start")
    if (end - start).days > MAX_RANGE_DAYS:
        raise HTTPException(status_code=422, detail=f"end: at most {MAX_RANGE_DAYS} days after start")
    return start, end


@router.get(
    "/v1/reports/attribution",
    summary="Revenue, conversions, pipeline influenced and ROI by channel (or campaign), by model",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "model": "linear",
                        "start": "2026-11-01",
                        "end": "2026-12-01",
                        "currency": "USD",
                        "journeys": 412,
                        "revenue": 48900.0,
                        "rows": [
                            {
                                "channel": "Paid Search",
                                "campaign": None,
                                "revenue": 18250.0,
                                "conversions": 4.25,
                                "pipeline_influenced": 96000.0,
                                "leads_touched": 133,
                                "spend": 12500.0,
                                "roi": 0.46,
                            }
                        ],
                        "last_batch_run": {"computed_at": "2026-11-27T02:15:09+00:00", "runs": 1},
                    }
                }
            }
        }
    },
)
async def attribution(
    request: Request,
    ctx: AppContext = Depends(context),
    model: Model = Query("linear", description=MODEL_NAMES),
    start: date | None = Query(None, description="first day (default: 30 days before end)"),
    end: date | None = Query(None, description="day after the last (default: tomorrow)"),
    by: Literal["channel", "campaign"] = "channel",
    half_life_days: float = Query(7.0, gt=0, le=365, description="time decay only"),
) -> dict[str, Any]:
    await ctx.auth.require(request, "reports:read")
    first, after = _range(start, end)
    store = AttributionStore(ctx.sessions)
    plan = load_spend(ctx.settings.spend_file)
    journeys = await store.journeys(
        day_start(first), day_start(after), default_opportunity_amount=plan.default_opportunity_amount
    )
    credits = attribute(
        journeys,
        model,
        by_campaign=by == "campaign",
        half_life=timedelta(days=half_life_days),
        spend=plan.for_range(first, after),
    )
    stored = await store.saved(first, after, model)
    return {
        "model": model,
        "start": first.isoformat(),
        "end": after.isoformat(),
        "currency": plan.currency,
        "journeys": len(journeys),
        "revenue": round(sum(c.revenue for c in credits), 2),
        "rows": [c.model_dump() for c in credits],
        "last_batch_run": {k: v for k, v in stored.items() if k != "credits"} if stored else None,
    }


@router.get(
    "/v1/reports/funnel",
    summary="The funnel of the leads created in a range: stages, conversion, time",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "start": "2026-11-01",
                        "end": "2026-12-01",
                        "leads": 212,
                        "stages": [
                            {"stage": "lead", "count": 212},
                            {
                                "stage": "mql",
                                "count": 41,
                                "conversion_from_previous": 0.1934,
                                "median_days_from_previous": 6.5,
                            },
                        ],
                        "sales_cycle_days": {"median": 38.0, "mean": 44.2, "won": 9},
                        "by_first_touch": [
                            {
                                "channel": "Paid Search",
                                "campaign": "brand",
                                "stages": {"lead": 61, "mql": 14, "sql": 9, "customer": 3},
                                "revenue": 14970.0,
                            }
                        ],
                    }
                }
            }
        }
    },
)
async def funnel_report(
    request: Request,
    ctx: AppContext = Depends(context),
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    await ctx.auth.require(request, "reports:read")
    first, after = _range(start, end)
    store = AttributionStore(ctx.sessions)
    # The cohort's later steps count too: read up to now.
    journeys = await store.journeys(day_start(first), datetime.now(UTC) + timedelta(minutes=1), clip=False)
    return {
        "start": first.isoformat(),
        "end": after.isoformat(),
        **funnel(journeys, day_start(first), day_start(after)),
    }


@router.get(
    "/v1/reports/integrations/daily",
    summary="Integration health per day and provider (the nightly rollup)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "start": "2026-11-13",
                        "end": "2026-11-27",
                        "days": [
                            {
                                "day": "2026-11-26",
                                "provider": "hubspot",
                                "syncs": 1193,
                                "sync_success_rate": 0.9983,
                                "calls": 1195,
                                "call_success_rate": 0.9874,
                                "call_ms_mean": 184.2,
                                "call_ms_max": 2210.0,
                            }
                        ],
                    }
                }
            }
        }
    },
)
async def integrations_daily(
    request: Request,
    ctx: AppContext = Depends(context),
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    await ctx.auth.require(request, "reports:read")
    first, after = _range(start, end, default_days=14)
    return {
        "start": first.isoformat(),
        "end": after.isoformat(),
        "days": await daily_health(ctx.sessions, first, after),
    }


@router.get(
    "/v1/reports/flows",
    summary="The seed's data flows timed end to end (p50/p90/p99 seconds) against their targets",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "window_hours": 24,
                        "flows": [
                            {
                                "flow": "form_to_email",
                                "target_seconds": 30.0,
                                "count": 380,
                                "p50_seconds": 0.21,
                                "p90_seconds": 0.4,
                                "p99_seconds": 1.1,
                                "over_target": 0,
                                "meets_target": True,
                            }
                        ],
                    }
                }
            }
        }
    },
)
async def flows(
    request: Request,
    ctx: AppContext = Depends(context),
    window_hours: float = Query(24, gt=0, le=24 * 90),
) -> dict[str, Any]:
    await ctx.auth.require(request, "reports:read")
    return {
        "window_hours": window_hours,
        "flows": await flow_report(ctx.sessions, timedelta(hours=window_hours)),
    }


@router.post(
    "/v1/reports/runs",
    status_code=202,
    summary="Run the nightly batch (attribution for every model, the health rollup) for a range now",
    responses={
        202: {
            "content": {
                "application/json": {
                    "example": {"workflow_id": "reports-2026-11-01-2026-12-01", "run_id": "6f1c..."}
                }
            }
        },
        422: {"description": "bad range"},
    },
)
async def run_reports(
    request: Request, body: dict[str, Any], ctx: AppContext = Depends(context)
) -> JSONResponse:
    await ctx.auth.require(request, "admin")
    try:
        data = ReportsInput.model_validate(body)
    except ValidationError as exc:
        raise HTTPException(
            status_code=422,
            detail=[{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors(include_url=False)],
        ) from exc
    if data.start is None or data.end is None:
        raise HTTPException(status_code=422, detail="start and end: both required here")
    workflow_id = reports_workflow_id(data.start, data.end)
    try:
        handle = await request.app.state.temporal.start_workflow(
            REPORTS_WORKFLOW_TYPE,
            data,
            id=workflow_id,
            task_queue=ctx.settings.temporal_task_queue,
            # A rerun of a finished range is welcome (it replaces the results); a running one is joined.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except RPCError as exc:
        raise HTTPException(status_code=503, detail=f"Temporal: {exc.message}") from exc
    return JSONResponse({"workflow_id": handle.id, "run_id": handle.result_run_id}, status_code=202)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    """The page holds no data: it asks the JSON reports above with the admin key it is given
    (`/dashboard#key=...`, kept in the tab's session storage only)."""
    return HTMLResponse(
        DASHBOARD.read_text(encoding="utf-8"),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP,
            "Referrer-Policy": "no-referrer",
        },
    )


# Its own inline script and style only; data only from this origin.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self'"
)
