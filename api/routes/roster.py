"""The sales roster through the API: read it, replace it (an out-of-office, a new rep), or go back
to the file. Validated as the file is; a bad roster changes nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from api.context import AppContext, context
from store.rosters import RosterSource

router = APIRouter(tags=["roster"])

REP_EXAMPLE = {
    "id": "ana",
    "name": "Ana Ruiz",
    "email": "ana@example.com",
    "slack_user_id": "U0ANARUIZ",
    "timezone": "America/New_York",
    "working_hours": {"days": [0, 1, 2, 3, 4], "start": "09:00:00", "end": "17:00:00"},
    "capacity": 3,
    "territories": ["US", "CA"],
    "out_of_office": [{"start": "2026-12-24T00:00:00-05:00", "end": "2026-12-28T00:00:00-05:00"}],
}


def _source(ctx: AppContext) -> RosterSource:
    return RosterSource(ctx.sessions, ctx.settings.roster_file)


@router.get(
    "/v1/roster",
    summary="The sales roster in force: from the API if one was set, else config/roster.toml",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"source": "file", "roster": {"version": 1, "reps": [REP_EXAMPLE]}}
                }
            }
        }
    },
)
async def get_roster(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    source = _source(ctx)
    document = await source.document()
    roster = await source.current()
    return {
        "source": "api" if document else "file",
        "updated_by": document["updated_by"] if document else None,
        "updated_at": document["updated_at"] if document else None,
        "roster": roster.model_dump(mode="json"),
    }


@router.put(
    "/v1/roster",
    summary="Replace the roster (validated as the file is); hand-offs use it within seconds",
    responses={
        200: {"content": {"application/json": {"example": {"source": "api", "reps": 5, "teams": 1}}}},
        422: {
            "content": {
                "application/json": {
                    "example": {"detail": "roster: reps[2] (id 'cho').timezone: unknown time zone"}
                }
            }
        },
    },
)
async def put_roster(
    request: Request,
    body: dict[str, Any] = Body(
        examples=[{"version": 2, "reps": [REP_EXAMPLE], "teams": [], "default_team": "sales"}]
    ),
    ctx: AppContext = Depends(context),
) -> dict[str, Any]:
    principal = await ctx.auth.require(request, "roster:write")
    try:
        roster = await _source(ctx).replace(body, updated_by=f"key {principal.key_id}")
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return {"source": "api", "reps": len(roster.reps), "teams": len(roster.teams)}


@router.delete(
    "/v1/roster",
    status_code=204,
    summary="Forget the roster set through the API: config/roster.toml applies again",
    responses={401: {"content": {"application/json": {"example": {"detail": "missing or unknown API key"}}}}},
)
async def delete_roster(request: Request, ctx: AppContext = Depends(context)) -> None:
    await ctx.auth.require(request, "roster:write")
    await _source(ctx).reset()
