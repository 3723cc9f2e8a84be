from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from api.context import AppContext, context
from store.keys import KeyRecord

router = APIRouter(tags=["admin"])


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=255, examples=["website tracking"])
    scope: Literal["ingest", "admin"] = "ingest"
    rate_per_second: float = Field(100.0, gt=0, le=100_000)


def _view(record: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "name": record.name,
        "scope": record.scope,
        "rate_per_second": record.rate_per_second,
        "created_at": record.created_at.isoformat() if record.created_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


@router.post(
    "/v1/admin/keys",
    status_code=201,
    summary="Create an API key; the clear key is in this answer only",
    responses={
        201: {
            "content": {
                "application/json": {
                    "example": {
                        "key_id": "3f9a1c2b4d5e",
                        "name": "website tracking",
                        "scope": "ingest",
                        "rate_per_second": 100,
                        "key": "jrn_ingest_3f9a1c2b4d5e_...",
                    }
                }
            }
        }
    },
)
async def create_key(body: NewKey, request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    record, clear = await ctx.keys.create(body.name, body.scope, body.rate_per_second)
    return {**_view(record), "key": clear}


@router.get(
    "/v1/admin/keys",
    summary="List API keys (never their clear values)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "keys": [
                            {
                                "key_id": "3f9a1c2b4d5e",
                                "name": "website tracking",
                                "scope": "ingest",
                                "rate_per_second": 100,
                                "created_at": "2026-11-27T10:00:00+00:00",
                                "revoked_at": None,
                            }
                        ]
                    }
                }
            }
        }
    },
)
async def list_keys(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    return {"keys": [_view(r) for r in await ctx.keys.list()]}


@router.delete(
    "/v1/admin/keys/{key_id}",
    status_code=204,
    summary="Revoke an API key (takes effect within 5 s on every API process)",
    responses={
        404: {"content": {"application/json": {"example": {"detail": "no active key '3f9a1c2b4d5e'"}}}}
    },
)
async def revoke_key(
    request: Request, key_id: str = Path(examples=["3f9a1c2b4d5e"]), ctx: AppContext = Depends(context)
) -> None:
    await ctx.auth.require(request, "admin")
    if not await ctx.keys.revoke(key_id):
        raise HTTPException(status_code=404, detail=f"no active key {key_id!r}")
    ctx.auth.forget()
