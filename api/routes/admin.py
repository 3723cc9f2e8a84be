from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field, field_validator, model_validator

from api.context import AppContext, context
from domain.browser import MAX_ORIGINS, normalize_origins
from store.keys import KeyRecord, default_rate

router = APIRouter(tags=["admin"])


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=255, examples=["website tracking"])
    scope: Literal[
        "browser",
        "ingest",
        "admin",
        "reports:read",
        "metrics:read",
        "pii:export",
        "pii:erase",
        "roster:write",
    ] = Field(
        "ingest",
        description="`browser`: a public key for web pages (page views, identify, the site's own "
        "events, forms), bound to `origins`; `ingest`: a server's key for every event and webhook; "
        "`admin`: everything. One job each, nothing else: `reports:read` (GET /v1/reports/...), "
        "`metrics:read` (GET /metrics), `pii:export` (a lead's export), `pii:erase` (a lead's "
        "erasure), `roster:write` (PUT and DELETE /v1/roster)",
    )
    rate_per_second: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="requests a second for the key in all (default 100; browser keys 1,000)",
    )
    origins: list[str] = Field(
        default_factory=list,
        max_length=MAX_ORIGINS,
        description="browser keys: the site origins (scheme://host[:port]) whose pages may use the key",
        examples=[["https://www.example.com"]],
    )
    rate_per_ip: float | None = Field(
        None, gt=0, le=100_000, description="browser keys: requests a second per client IP (default 10)"
    )

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return normalize_origins(value)

    @model_validator(mode="after")
    def _browser_fields(self) -> NewKey:
        if self.scope == "browser" and not self.origins:
            raise ValueError("a browser key needs `origins`: the sites whose pages may use it")
        if self.scope != "browser" and (self.origins or self.rate_per_ip is not None):
            raise ValueError("`origins` and `rate_per_ip` are for browser keys only")
        return self


def _view(record: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "name": record.name,
        "scope": record.scope,
        "rate_per_second": record.rate_per_second,
        "origins": list(record.origins),
        "rate_per_ip": record.rate_per_ip,
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
                        "origins": [],
                        "rate_per_ip": None,
                        "key": "jrn_ingest_3f9a1c2b4d5e_...",
                    }
                }
            }
        }
    },
)
async def create_key(body: NewKey, request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "admin")
    record, clear = await ctx.keys.create(
        body.name,
        body.scope,
        body.rate_per_second or default_rate(body.scope),
        origins=body.origins,
        rate_per_ip=body.rate_per_ip,
    )
    ctx.auth.forget()  # usable at once on this process (within a second on the others)
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
