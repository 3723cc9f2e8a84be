"""Hand-offs: a rep accepts a lead; ops read a hand-off's state and the SLA report."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.context import UNAVAILABLE_RETRY_AFTER, AppContext, context
from domain.handoff import ACCEPT_UPDATE, HANDOFF_STATE_QUERY, AcceptRequest, AcceptResult, HandoffState
from store.handoffs import HandoffLog

router = APIRouter(tags=["hand-offs"])
RPC_TIMEOUT = timedelta(seconds=10)

STATE_EXAMPLE = {
    "status": "waiting",
    "assignment": {"rep_id": "maria", "rep_name": "Maria Lopez", "team_id": "sales", "queue": False},
    "attempt": 1,
    "tried": ["maria"],
    "assigned_at": "2026-11-27T09:00:01Z",
    "notified_at": "2026-11-27T09:00:02Z",
    "audit": [{"at": "2026-11-27T09:00:01Z", "what": "assigned: weighted round robin", "rep_id": "maria"}],
}


def _handle(request: Request, handoff_id: str) -> Any:
    if not handoff_id.startswith("handoff-") or len(handoff_id) > 128:
        raise HTTPException(status_code=404, detail=f"no hand-off {handoff_id!r}")
    return request.app.state.temporal.get_workflow_handle(handoff_id)


async def _state(request: Request, handoff_id: str) -> HandoffState:
    try:
        raw = await _handle(request, handoff_id).query(HANDOFF_STATE_QUERY, rpc_timeout=RPC_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(status_code=404, detail=f"no hand-off {handoff_id!r}") from exc
        raise HTTPException(status_code=503, detail=f"Temporal: {exc.message}") from exc
    return HandoffState.model_validate(raw)


@router.post(
    "/v1/handoffs/{handoff_id}/accept",
    summary="The rep accepts the lead (only the rep holding it, or any rep of the team once queued; once)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "handoff_id": "handoff-830805f1-5d16-5e3a-9b1c-7fc0a10c9134-1",
                        "rep_id": "maria",
                        "accepted_at": "2026-11-27T09:01:12Z",
                        "seconds_from_mql": 71.4,
                    }
                }
            }
        },
        409: {
            "content": {
                "application/json": {"example": {"detail": "ben does not hold this lead (maria does)"}}
            }
        },
        503: {
            "description": "The hand-off did not take the click in time (its worker down or behind)",
            "content": {
                "application/json": {
                    "example": {
                        "detail": "the hand-off did not answer within 10s; resend the same acceptance: "
                        "it counts once"
                    }
                }
            },
        },
    },
)
async def accept(
    handoff_id: str, body: AcceptRequest, request: Request, ctx: AppContext = Depends(context)
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    body = body.model_copy(update={"clicked_at": datetime.now(UTC)})
    handle = _handle(request, handoff_id)
    try:
        # One update id per rep: a click resent after a 503 joins the first one (which may have
        # been taken meanwhile) instead of being judged again.
        wait = timedelta(seconds=ctx.settings.accept_wait_seconds)
        async with asyncio.timeout(wait.total_seconds()):
            result = await handle.execute_update(
                ACCEPT_UPDATE,
                body,
                id=f"accept-{body.rep_id}",
                result_type=AcceptResult,
                # Never shorter than the wait, so the 503 names the wait that actually ran out.
                rpc_timeout=max(RPC_TIMEOUT, wait),
            )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        raise HTTPException(status_code=409, detail=message) from exc
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        # The hand-off's worker is busy or restarting: the click is kept by Temporal under its id
        # and may still be taken; the client resends it and learns the outcome.
        raise HTTPException(
            status_code=503,
            detail=f"the hand-off did not answer within {wait.total_seconds():g}s; resend the "
            "same acceptance: it counts once",
            headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
        ) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            # The run has finished: the same rep's resent click gets its acceptance back.
            state = await _state(request, handoff_id)
            acceptance = state.acceptance(handoff_id)
            if acceptance is not None and acceptance.rep_id == body.rep_id:
                return acceptance.model_dump(mode="json")
            detail = (
                f"already accepted by {state.accepted_by}"
                if state.status == "accepted"
                else f"the hand-off is {state.status}"
            )
            raise HTTPException(status_code=409, detail=detail) from exc
        raise HTTPException(
            status_code=503,
            detail=f"Temporal: {exc.message}",
            headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
        ) from exc
    return result.model_dump(mode="json")


@router.get(
    "/v1/handoffs/{handoff_id}",
    summary="A hand-off's state: who holds the lead, every audited step",
    responses={200: {"content": {"application/json": {"example": STATE_EXAMPLE}}}},
)
async def get_handoff(
    handoff_id: str, request: Request, ctx: AppContext = Depends(context)
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    return (await _state(request, handoff_id)).model_dump(mode="json")


@router.get(
    "/v1/reports/sla",
    summary="The hand-off SLA: seconds from MQL to assigned, notified and accepted (p50, p90, p99), breaches",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "window_seconds": 604800,
                        "sla_seconds": 300,
                        "handoffs": 120,
                        "accepted": 117,
                        "breaches": 2,
                        "escalations": 5,
                        "seconds_from_mql": {
                            "assigned": {"p50": 0.41, "p90": 0.62, "p99": 1.9},
                            "notified": {"p50": 0.88, "p90": 1.3, "p99": 3.1},
                            "accepted": {"p50": 64.0, "p90": 210.0, "p99": 540.0},
                        },
                    }
                }
            }
        }
    },
)
async def sla_report(
    request: Request,
    window_hours: float = Query(24 * 7, gt=0, le=24 * 90),
    sla_seconds: int = Query(300, gt=0, le=30 * 86_400, description="the SLA to count breaches against"),
    ctx: AppContext = Depends(context),
) -> dict[str, Any]:
    await ctx.auth.require(request, "reports:read")
    return await HandoffLog(ctx.sessions).report(
        window=timedelta(hours=window_hours), sla=timedelta(seconds=sla_seconds)
    )
