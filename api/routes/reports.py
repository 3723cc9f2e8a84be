"""Reports: integration health against the seed's data-sync KPI."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.context import AppContext, context
from store.health import integration_report

router = APIRouter(tags=["reports"])

INTEGRATIONS_EXAMPLE = {
    "window_seconds": 86400,
    "since": "2026-11-26T09:00:00+00:00",
    "target_sync_success_rate": 0.99,
    "providers": [
        {
            "provider": "hubspot",
            "calls": {"ok": 1180, "rejected": 2, "rate_limited": 9, "unavailable": 4, "total": 1195},
            "call_success_rate": 0.98745,
            "call_latency_ms": {"mean": 184.2, "max": 2210.0},
            "syncs": {"ok": 1178, "rejected": 2, "rate_limited": 9, "unavailable": 4, "total": 1193},
            "sync_success_rate": 0.9983,
            "meets_target": True,
            "operations": [
                {
                    "operation": "crm.upsert_contact",
                    "kind": "sync",
                    "ok": 590,
                    "rejected": 1,
                    "rate_limited": 4,
                    "unavailable": 2,
                    "total": 597,
                    "success_rate": 0.99831,
                    "mean_ms": 201.5,
                    "max_ms": 2230.1,
                }
            ],
        }
    ],
}


@router.get(
    "/v1/reports/integrations",
    summary="Integration health: per connector success rate, latency and errors against the 99% KPI",
    description=(
        "`calls` count every HTTP request to the platform, retries included; `syncs` count connector "
        "activity attempts. The KPI is the share of syncs that succeeded among those that finished "
        "(succeeded, or rejected for good): a 429 retried to success is a healthy sync, and appears under "
        "`rate_limited` as a retry. Admin scope."
    ),
    responses={200: {"content": {"application/json": {"example": INTEGRATIONS_EXAMPLE}}}},
)
async def integrations(
    request: Request,
    window_hours: float = Query(24, gt=0, le=24 * 90, description="how far back to look"),
    ctx: AppContext = Depends(context),
) -> dict[str, Any]:
    await ctx.auth.require(request, "reports:read")
    return await integration_report(ctx.sessions, window=timedelta(hours=window_hours))
