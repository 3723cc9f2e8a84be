"""Journey control for services: start a registered journey, read it, signal it, update it,
cancel it.

Temporal's answers become HTTP ones: not found 404, already running 409, bad input 422.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.context import AppContext, context
from domain.journeys import BY_WORKFLOW_TYPE, JOURNEYS, JourneySpec

router = APIRouter(tags=["journeys"])
RPC_TIMEOUT = timedelta(seconds=5)
# An update waits for the workflow's answer, which may call a platform first.
UPDATE_TIMEOUT = timedelta(seconds=30)
# Our ids are built from business keys; anything else is not ours (and never reaches a query).
WORKFLOW_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def _client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def _invalid(exc: ValidationError) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[
            {"loc": ["body", *error["loc"]], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False)
        ],
    )


def _temporal_error(exc: RPCError, workflow_id: str) -> HTTPException:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return HTTPException(status_code=404, detail=f"no journey {workflow_id!r}")
    if exc.status in (RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.FAILED_PRECONDITION):
        return HTTPException(status_code=409, detail=f"journey {workflow_id!r}: {exc.message}")
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return HTTPException(status_code=422, detail=exc.message)
    return HTTPException(status_code=503, detail=f"Temporal: {exc.message}")


async def _spec_of(request: Request, workflow_id: str) -> tuple[JourneySpec, Any]:
    if not WORKFLOW_ID.fullmatch(workflow_id):
        raise HTTPException(status_code=404, detail=f"no journey {workflow_id!r}")
    try:
        described = await _client(request).get_workflow_handle(workflow_id).describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as exc:
        raise _temporal_error(exc, workflow_id) from exc
    spec = BY_WORKFLOW_TYPE.get(described.workflow_type)
    if spec is None:
        raise HTTPException(status_code=404, detail=f"{workflow_id!r} is not a journey this API controls")
    return spec, described


@router.post(
    "/v1/journeys/{journey_type}",
    status_code=201,
    summary="Start a registered journey with a validated input",
    responses={
        201: {
            "content": {
                "application/json": {
                    "example": {"workflow_id": "lead-830805f1-...", "run_id": "f3dd1f7c-..."}
                }
            }
        },
        404: {"description": "no such journey type"},
        409: {"description": "that journey is already running"},
        422: {"description": "the input does not fit the journey"},
    },
)
async def start_journey(
    journey_type: str,
    request: Request,
    body: dict[str, Any] = Body(examples=[{"lead_id": "830805f1-5d16-5e3a-9b1c-7fc0a10c9134"}]),
    ctx: AppContext = Depends(context),
) -> JSONResponse:
    await ctx.auth.require(request, "admin")
    spec = JOURNEYS.get(journey_type)
    if spec is None or not spec.startable:
        startable = sorted(name for name, s in JOURNEYS.items() if s.startable)
        raise HTTPException(
            status_code=404, detail=f"no journey type {journey_type!r} to start; known: {startable}"
        )
    try:
        data = spec.input_model.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from exc
    workflow_id = spec.workflow_id(data)
    try:
        handle = await _client(request).start_workflow(
            spec.workflow_type,
            data,
            id=workflow_id,
            task_queue=ctx.settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            rpc_timeout=RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError as exc:
        raise HTTPException(status_code=409, detail=f"journey {workflow_id!r} is already running") from exc
    except RPCError as exc:
        raise _temporal_error(exc, workflow_id) from exc
    return JSONResponse({"workflow_id": handle.id, "run_id": handle.result_run_id}, status_code=201)


@router.get(
    "/v1/journeys/{workflow_id}",
    summary="A journey's status, search attributes and state",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "workflow_id": "lead-830805f1-...",
                        "type": "LeadJourney",
                        "status": "RUNNING",
                        "search_attributes": {"LifecycleStage": ["lead"]},
                        "state": {"stage": "lead"},
                    }
                }
            }
        },
        404: {"description": "no such journey"},
    },
)
async def read_journey(
    workflow_id: str, request: Request, ctx: AppContext = Depends(context)
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    spec, described = await _spec_of(request, workflow_id)
    state: Any = None
    if spec.state_query and described.status == WorkflowExecutionStatus.RUNNING:
        try:
            result = (
                await _client(request)
                .get_workflow_handle(workflow_id)
                .query(spec.state_query, result_type=spec.state_model, rpc_timeout=RPC_TIMEOUT)
            )
            state = result.model_dump(mode="json") if result is not None else None
        except RPCError:
            state = None
    # Visibility holds the attributes the run upserted; describe's copy can lag behind it.
    attributes = described.typed_search_attributes
    async for listed in _client(request).list_workflows(f"WorkflowId = '{workflow_id}'", limit=1):
        attributes = listed.typed_search_attributes
    return {
        "workflow_id": workflow_id,
        "run_id": described.run_id,
        "type": described.workflow_type,
        "status": described.status.name if described.status else None,
        "started_at": described.start_time.isoformat(),
        "closed_at": described.close_time.isoformat() if described.close_time else None,
        "search_attributes": {
            pair.key.name: pair.value if isinstance(pair.value, str | int | float | bool) else str(pair.value)
            for pair in attributes
        },
        "state": state,
    }


@router.post(
    "/v1/journeys/{workflow_id}/signals/{signal}",
    status_code=202,
    summary="Send a journey one of the signals it allows, with a validated body",
    responses={
        404: {"description": "no such journey"},
        422: {"description": "signal not allowed, or bad body"},
    },
)
async def signal_journey(
    workflow_id: str,
    signal: str,
    request: Request,
    body: dict[str, Any] = Body(examples=[{"into_lead_id": "0a1b..."}]),
    ctx: AppContext = Depends(context),
) -> dict[str, str]:
    await ctx.auth.require(request, "admin")
    spec, _ = await _spec_of(request, workflow_id)
    model = spec.signals.get(signal)
    if model is None:
        raise HTTPException(
            status_code=422,
            detail=f"{spec.workflow_type} takes the signals {sorted(spec.signals)}, not {signal!r}",
        )
    try:
        data = model.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from exc
    try:
        await _client(request).get_workflow_handle(workflow_id).signal(signal, data, rpc_timeout=RPC_TIMEOUT)
    except RPCError as exc:
        raise _temporal_error(exc, workflow_id) from exc
    return {"workflow_id": workflow_id, "signal": signal, "status": "sent"}


@router.post(
    "/v1/journeys/{workflow_id}/updates/{update}",
    summary="Send a journey one of the updates it allows, and get its answer",
    responses={
        200: {
            "content": {"application/json": {"example": {"stage": "sql", "previous": "mql", "changed": True}}}
        },
        404: {"description": "no such journey"},
        409: {"description": "the journey refused the update (its validator's reason), or it is not running"},
        422: {"description": "update not allowed, or bad body"},
    },
)
async def update_journey(
    workflow_id: str,
    update: str,
    request: Request,
    body: dict[str, Any] = Body(examples=[{"stage": "recycled", "reason": "no budget", "by": "sdr"}]),
    ctx: AppContext = Depends(context),
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    spec, described = await _spec_of(request, workflow_id)
    models = spec.updates.get(update)
    if models is None:
        raise HTTPException(
            status_code=422,
            detail=f"{spec.workflow_type} takes the updates {sorted(spec.updates)}, not {update!r}",
        )
    request_model, result_model = models
    try:
        data = request_model.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from exc
    if described.status != WorkflowExecutionStatus.RUNNING:
        raise HTTPException(
            status_code=409, detail=f"journey {workflow_id!r} is {described.status.name.lower()}"
        )
    try:
        result = await (
            _client(request)
            .get_workflow_handle(workflow_id)
            .execute_update(update, data, result_type=result_model, rpc_timeout=UPDATE_TIMEOUT)
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        raise HTTPException(status_code=409, detail=message) from exc
    except RPCError as exc:
        raise _temporal_error(exc, workflow_id) from exc
    return result.model_dump(mode="json")


@router.post(
    "/v1/journeys/{workflow_id}/cancel",
    status_code=202,
    summary="Ask a journey to cancel",
    responses={
        202: {
            "content": {
                "application/json": {
                    "example": {"workflow_id": "lead-830805f1-...", "status": "cancel requested"}
                }
            }
        },
        404: {"description": "no such journey"},
        409: {"description": "the journey is not running"},
    },
)
async def cancel_journey(
    workflow_id: str, request: Request, ctx: AppContext = Depends(context)
) -> dict[str, str]:
    await ctx.auth.require(request, "admin")
    _, described = await _spec_of(request, workflow_id)
    if described.status != WorkflowExecutionStatus.RUNNING:
        raise HTTPException(
            status_code=409, detail=f"journey {workflow_id!r} is {described.status.name.lower()}"
        )
    try:
        await _client(request).get_workflow_handle(workflow_id).cancel(rpc_timeout=RPC_TIMEOUT)
    except RPCError as exc:
        raise _temporal_error(exc, workflow_id) from exc
    return {"workflow_id": workflow_id, "status": "cancel requested"}
