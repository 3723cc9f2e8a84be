from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.context import AppContext, context
from domain.ids import lead_workflow_id
from domain.lead import LEAD_STATE_QUERY, LeadState
from domain.qualify import CHANGE_STAGE_UPDATE, StageChangeRequest, StageChangeResult
from store.models import Lead
from store.sends import SendLedger

router = APIRouter(tags=["leads"])
QUERY_TIMEOUT = timedelta(seconds=5)

LEAD_EXAMPLE = {
    "lead_id": "830805f1-5d16-5e3a-9b1c-7fc0a10c9134",
    "workflow_id": "lead-830805f1-5d16-5e3a-9b1c-7fc0a10c9134",
    "profile": {
        "email": "ada@example-corp.com",
        "first_name": "Ada",
        "company": "Example Corp",
        "consent": True,
        "consent_source": "form:demo:Request a demo",
        "consent_at": "2026-11-02T09:14:03+00:00",
    },
    "identities": {"email": ["ada@example-corp.com"], "anonymous": ["a-5b1c9e"], "user": ["u-1024"]},
    "account": {"account_id": "acct-77", "traits": {"industry": "Software", "employees": 420}},
    "events": {"page": 6, "form_submitted": 1},
    "sends_refused": [
        {
            "journey": "win_back",
            "purpose": "marketing",
            "reason": "unsubscribed at 2026-11-20T16:02:11+00:00",
            "refused_at": "2026-11-27T10:00:00+00:00",
        }
    ],
    "journey": {"stage": "lead", "activity": {"page_views": 6, "sessions": 2}},
    "journey_error": None,
}


async def _view(ctx: AppContext, request: Request, lead: Lead) -> dict[str, Any]:
    journey: dict[str, Any] | None = None
    journey_error: str | None = None
    try:
        state = await request.app.state.temporal.get_workflow_handle(lead_workflow_id(lead.lead_id)).query(
            LEAD_STATE_QUERY, result_type=LeadState, rpc_timeout=QUERY_TIMEOUT
        )
        journey = state.model_dump(mode="json", exclude={"seen_event_ids": True, "activity": {"web": True}})
        # The sessions as the views' own times make them (domain/sessions.py), newest last.
        journey["activity"]["recent_sessions"] = [
            {**session.model_dump(mode="json"), "duration_seconds": session.duration_seconds}
            for session in state.activity.web.recent()
        ]
    except (RPCError, RuntimeError) as exc:
        journey_error = f"journey state unavailable: {exc}"
    account = await ctx.leads.account(lead.account_id) if lead.account_id else None
    return {
        "lead_id": lead.lead_id,
        "workflow_id": lead_workflow_id(lead.lead_id),
        "merged_into": lead.merged_into,
        "profile": {
            "email": lead.email,
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "company": lead.company,
            "job_title": lead.job_title,
            "phone": lead.phone,
            "lead_source": lead.lead_source,
            "consent": lead.consent,
            "consent_source": lead.consent_source,
            "consent_at": lead.consent_at.isoformat() if lead.consent_at else None,
            "traits": lead.traits,
            "custom_fields": lead.custom_fields,
            "created_at": lead.created_at.isoformat(),
            "updated_at": lead.updated_at.isoformat(),
        },
        "identities": await ctx.leads.identities(lead.lead_id),
        "account": {"account_id": lead.account_id, "traits": account} if lead.account_id else None,
        "submissions": await ctx.leads.count_submissions(lead.lead_id),
        "events": await ctx.leads.count_events(lead.lead_id),
        # The emails the send gate refused this lead, newest first, with why.
        "sends_refused": await SendLedger(ctx.sessions).refusals(lead.lead_id),
        "journey": journey,
        "journey_error": journey_error,
    }


@router.get(
    "/v1/leads",
    summary="Find a lead by email",
    responses={200: {"content": {"application/json": {"example": {"leads": [LEAD_EXAMPLE]}}}}},
)
async def find_leads(
    request: Request,
    email: str = Query(..., examples=["ada@example-corp.com"]),
    ctx: AppContext = Depends(context),
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    lead = await ctx.leads.find_by_email(email)
    return {"leads": [await _view(ctx, request, lead)] if lead else []}


@router.get(
    "/v1/leads/{lead_id}",
    summary="The unified profile and the journey's state",
    responses={
        200: {"content": {"application/json": {"example": LEAD_EXAMPLE}}},
        404: {"description": "no such lead"},
    },
)
async def get_lead(lead_id: str, request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    lead = await ctx.leads.get_lead(lead_id)
    if lead is None:
        raise HTTPException(status_code=404, detail=f"no lead {lead_id!r}")
    return await _view(ctx, request, lead)


def _cursor(at: datetime, event_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), event_id]).encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, event_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(event_id)
    except (ValueError, TypeError) as exc:
        raise HTTPException(
            status_code=422,
            detail=[{"loc": ["query", "cursor"], "msg": "not a cursor this API gave", "type": "value_error"}],
        ) from exc


@router.get(
    "/v1/leads/{lead_id}/events",
    summary="The lead's event timeline, newest first, paged",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "events": [
                            {
                                "event_id": "1b2c...",
                                "type": "page",
                                "name": "Pricing",
                                "source": "segment",
                                "occurred_at": "2026-11-27T10:00:00Z",
                                "properties": {"path": "/pricing"},
                            }
                        ],
                        "next_cursor": "WyIyMDI2LTExLTI3VDEwOjAwOjAwKzAwOjAwIiwgIjFiMmMiXQ==",
                    }
                }
            }
        }
    },
)
async def lead_events(
    lead_id: str,
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    ctx: AppContext = Depends(context),
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    if await ctx.leads.get_lead(lead_id) is None:
        raise HTTPException(status_code=404, detail=f"no lead {lead_id!r}")
    rows = await ctx.leads.events(lead_id, limit=limit, before=_parse_cursor(cursor) if cursor else None)
    return {
        "events": [
            {
                "event_id": row.event_id,
                "type": row.type,
                "name": row.name,
                "source": row.source,
                "message_id": row.message_id,
                "occurred_at": row.occurred_at.isoformat(),
                "received_at": row.received_at.isoformat(),
                "properties": row.lead_event.get("properties", {}),
                "touch": row.lead_event.get("touch", {}),
            }
            for row in rows
        ],
        "next_cursor": _cursor(rows[-1].occurred_at, rows[-1].event_id) if len(rows) == limit else None,
    }


@router.delete(
    "/v1/leads/{lead_id}",
    summary="Erase a lead: profile, events, identities, submissions; its journey is ended",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "lead_id": "830805f1-5d16-5e3a-9b1c-7fc0a10c9134",
                        "erased": {"events": 12, "identities": 3, "merged_leads": 0},
                        "journey_ended": True,
                    }
                }
            }
        },
        404: {"description": "no such lead (or already erased)"},
    },
)
async def erase_lead(lead_id: str, request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    principal = await ctx.auth.require(request, "pii:erase")
    counts = await ctx.leads.erase(lead_id, requested_by=principal.key_id)
    if counts is None:
        raise HTTPException(status_code=404, detail=f"no lead {lead_id!r}")
    ended = True
    try:
        await request.app.state.temporal.get_workflow_handle(lead_workflow_id(lead_id)).terminate(
            reason="lead erased on request"
        )
    except RPCError as exc:
        # Not running (never started, merged, already ended): nothing left to stop.
        ended = exc.status == RPCStatusCode.NOT_FOUND
        if not ended:
            raise HTTPException(
                status_code=503, detail=f"data erased; the journey could not be ended yet ({exc}); retry"
            ) from exc
    return {"lead_id": lead_id, "erased": counts, "journey_ended": ended}


@router.get(
    "/v1/leads/{lead_id}/export",
    summary="Everything held about a lead, personal data included (a subject access request)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "lead_id": "830805f1-5d16-5e3a-9b1c-7fc0a10c9134",
                        "profile": {"email": "ada@example-corp.com", "first_name": "Ada"},
                        "identities": [{"kind": "email", "value": "ada@example-corp.com"}],
                        "form_submissions": [],
                        "events": [],
                        "journey": {"stage": "lead"},
                    }
                }
            }
        },
        404: {"description": "no such lead"},
    },
)
async def export_lead(lead_id: str, request: Request, ctx: AppContext = Depends(context)) -> JSONResponse:
    await ctx.auth.require(request, "pii:export")
    exported = await ctx.leads.export(lead_id)
    if exported is None:
        raise HTTPException(status_code=404, detail=f"no lead {lead_id!r}")
    journey: dict[str, Any] | None = None
    try:
        state = await request.app.state.temporal.get_workflow_handle(lead_workflow_id(lead_id)).query(
            LEAD_STATE_QUERY, result_type=LeadState, rpc_timeout=QUERY_TIMEOUT
        )
        journey = state.model_dump(mode="json")
    except (RPCError, RuntimeError):
        journey = None
    return JSONResponse(
        {"lead_id": lead_id, **exported, "journey": journey},
        headers={"Content-Disposition": f'attachment; filename="lead-{lead_id}.json"'},
    )


@router.post(
    "/v1/leads/{lead_id}/stage",
    summary="Move a lead by hand: SQL on acceptance, disqualify, recycle (validated by the journey)",
    description=(
        "Forward moves, disqualifying a lead before it is a customer, and recycling an MQL, SQL or "
        "disqualified lead are allowed; anything else answers 409 with the reason. A recycled lead's "
        "behaviour score starts over and its paused nurture resumes. Admin scope."
    ),
    responses={
        200: {
            "content": {
                "application/json": {"example": {"stage": "recycled", "previous": "mql", "changed": True}}
            }
        },
        404: {"description": "no such lead, or its journey is not running"},
        409: {
            "content": {
                "application/json": {"example": {"detail": "a customer lead cannot move to recycled"}}
            }
        },
    },
)
async def change_stage(
    lead_id: str,
    body: StageChangeRequest,
    request: Request,
    ctx: AppContext = Depends(context),
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    handle = request.app.state.temporal.get_workflow_handle(lead_workflow_id(lead_id))
    try:
        result = await handle.execute_update(
            CHANGE_STAGE_UPDATE, body, result_type=StageChangeResult, rpc_timeout=QUERY_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        raise HTTPException(status_code=409, detail=message) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(status_code=404, detail=f"no running journey for lead {lead_id!r}") from exc
        raise HTTPException(status_code=503, detail=f"Temporal: {exc.message}") from exc
    return result.model_dump(mode="json")
