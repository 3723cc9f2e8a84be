"""The codec server: the Temporal UI (and `temporal --codec-endpoint`) decode payloads here.

Admins call `/codec/decode` with their key; the UI, which cannot send our keys, calls
`/codec/{JOURNEYS_CODEC_UI_TOKEN}/decode` (give the UI that URL as its codec endpoint, over
HTTPS in production). Anyone else gets 401 and sees only ciphertext.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.context import AppContext, context

router = APIRouter(tags=["codec"])
EXAMPLE = {
    "payloads": [
        {
            "metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": "azE="},
            "data": "<base64 nonce + ciphertext>",
        }
    ]
}
DOCS: dict[str, Any] = {
    "openapi_extra": {"requestBody": {"content": {"application/json": {"example": EXAMPLE}}}},
    "responses": {
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "payloads": [
                            {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJsZWFkX2lkIjoi..."}
                        ]
                    }
                }
            }
        },
        401: {"description": "no admin key (or UI token)"},
        404: {"description": "payload encryption is not configured"},
    },
}


async def _run(request: Request, ctx: AppContext, action: str) -> JSONResponse:
    codec = request.app.state.temporal.data_converter.payload_codec
    if codec is None:
        raise HTTPException(
            status_code=404, detail="payload encryption is not configured (JOURNEYS_CODEC_KEYS)"
        )
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as exc:
        raise HTTPException(status_code=422, detail=f"not a Payloads JSON object: {exc}") from exc
    converted = await (codec.decode if action == "decode" else codec.encode)(payloads.payloads)
    return JSONResponse(json_format.MessageToDict(Payloads(payloads=converted)))


@router.post("/codec/decode", summary="Decrypt payloads (admin key)", **DOCS)
async def decode(request: Request, ctx: AppContext = Depends(context)) -> JSONResponse:
    await ctx.auth.require(request, "admin")
    return await _run(request, ctx, "decode")


@router.post("/codec/encode", summary="Encrypt payloads (admin key)", **DOCS)
async def encode(request: Request, ctx: AppContext = Depends(context)) -> JSONResponse:
    await ctx.auth.require(request, "admin")
    return await _run(request, ctx, "encode")


def _ui_token(ctx: AppContext, token: str) -> None:
    expected = ctx.settings.codec_ui_token
    if expected is None or not secrets.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status_code=401, detail="unknown codec token")


@router.post(
    "/codec/{token}/decode", summary="Decrypt payloads for the Temporal UI (UI token in the path)", **DOCS
)
async def ui_decode(token: str, request: Request, ctx: AppContext = Depends(context)) -> JSONResponse:
    _ui_token(ctx, token)
    return await _run(request, ctx, "decode")


@router.post(
    "/codec/{token}/encode", summary="Encrypt payloads for the Temporal UI (UI token in the path)", **DOCS
)
async def ui_encode(token: str, request: Request, ctx: AppContext = Depends(context)) -> JSONResponse:
    _ui_token(ctx, token)
    return await _run(request, ctx, "encode")
