"""Customer accounts: where an account stands in its customer journey (health, onboarding, renewal,
surveys, its CSM, every audited step), read from the running journey."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from temporalio.service import RPCError, RPCStatusCode

from api.context import AppContext, context
from domain.customers import (
    CUSTOMER_STATE_QUERY,
    ONBOARDING_STATE_QUERY,
    CustomerState,
    OnboardingState,
    customer_workflow_id,
    onboarding_workflow_id,
)

router = APIRouter(tags=["customers"])
RPC_TIMEOUT = timedelta(seconds=10)
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,254}$")


async def _query(request: Request, workflow_id: str, query: str) -> Any | None:
    try:
        return await request.app.state.temporal.get_workflow_handle(workflow_id).query(
            query, rpc_timeout=RPC_TIMEOUT
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise HTTPException(status_code=503, detail=f"Temporal: {exc.message}") from exc


@router.get(
    "/v1/customers/{account_id}",
    summary="A customer account's journey: status, health and why, onboarding milestones, renewal, surveys",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "account_id": "acme",
                        "status": "active",
                        "health": 72,
                        "health_band": "healthy",
                        "health_reasons": ["baseline 50", "Logged In x40: +20"],
                        "onboarding": "completed",
                        "subscription_ends_at": "2027-11-02T10:00:00Z",
                        "csm": {"csm_id": "olivia", "name": "Olivia Park"},
                        "workflow_id": "customer-acme",
                        "onboarding_milestones": [
                            {
                                "id": "first_login",
                                "due_at": "2026-11-05T10:00:00Z",
                                "done_at": "2026-11-02T15:12:00Z",
                            }
                        ],
                    }
                }
            }
        }
    },
)
async def get_customer(
    account_id: str, request: Request, ctx: AppContext = Depends(context)
) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    if not ACCOUNT_ID.match(account_id):
        raise HTTPException(status_code=422, detail="account_id: letters, digits and _.:@- only, at most 255")
    raw = await _query(request, customer_workflow_id(account_id), CUSTOMER_STATE_QUERY)
    if raw is None:
        raise HTTPException(status_code=404, detail=f"no customer journey for account {account_id!r}")
    state = CustomerState.model_validate(raw)
    onboarding_raw = await _query(request, onboarding_workflow_id(account_id), ONBOARDING_STATE_QUERY)
    onboarding = OnboardingState.model_validate(onboarding_raw) if onboarding_raw is not None else None
    body = state.model_dump(mode="json", exclude={"seen_events"})
    body["workflow_id"] = customer_workflow_id(account_id)
    body["onboarding_milestones"] = (
        [m.model_dump(mode="json") for m in onboarding.milestones] if onboarding else []
    )
    return body
