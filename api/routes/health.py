from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.context import AppContext, context

router = APIRouter(tags=["health"])
HEALTH_TIMEOUT = 2.0


@router.get(
    "/healthz",
    summary="Whether the API reaches Temporal and PostgreSQL",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"status": "ok", "parts": {"temporal": "ok", "postgres": "ok"}}
                }
            }
        },
        503: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "unavailable",
                        "parts": {"temporal": "unavailable: RPCError", "postgres": "ok"},
                        "failing": ["temporal"],
                    }
                }
            }
        },
    },
)
async def healthz(ctx: AppContext = Depends(context)) -> JSONResponse:
    parts: dict[str, str] = {}

    async def check_postgres() -> None:
        try:
            await asyncio.wait_for(ctx.leads.ping(), HEALTH_TIMEOUT)
            parts["postgres"] = "ok"
        except (TimeoutError, OSError, SQLAlchemyError) as exc:
            parts["postgres"] = f"unavailable: {type(exc).__name__}"

    async def check_temporal() -> None:
        parts["temporal"] = (
            "ok" if await ctx.availability.probe() else f"unavailable: {ctx.availability.reason}"
        )

    await asyncio.gather(check_postgres(), check_temporal())
    failing = sorted(k for k, v in parts.items() if v != "ok")
    body: dict[str, Any] = {"status": "unavailable" if failing else "ok", "parts": parts}
    if failing:
        body["failing"] = failing
    return JSONResponse(body, status_code=503 if failing else 200)
