"""Segment's HTTP Tracking API, so that an unmodified Segment library can send here.

Auth as Segment's: Basic with the write key as user name and an empty password, or `writeKey`
in the body; an ingest key (or the admin key) is the write key, and so is a browser key from one
of its sites' pages. Answers as Segment's do: 200 `{"success": true}`, which Segment's libraries
read as delivered. Here it also means durably recorded.

Besides the HTTP API's paths (`/v1/track`, ...), the paths Segment's browser library
(analytics.js, `@segment/analytics-next`) posts to: the call type's first letter (`/v1/t`,
`/v1/p`, `/v1/i`, `/v1/g`, `/v1/a`, `/v1/s`) and `/v1/b` for its batches, with the JSON sent as
`text/plain` (a CORS-simple type) and the write key in the body as well as in Basic auth. A
`sendBeacon` or `keepalive` delivery is an ordinary POST here; a retried delivery carries the
same `messageId` and is recorded once.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from api.auth import SEGMENT_KINDS, UNKNOWN_KEY
from api.browser import refuse_what_a_browser_cannot_send
from api.context import AppContext, context
from domain.events import IncomingEvent
from domain.segment import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, email_of, parse_message, to_incoming

router = APIRouter(tags=["segment"])

EXAMPLES: dict[str, dict[str, Any]] = {
    "identify": {
        "userId": "u-1024",
        "anonymousId": "a-5b1c9e",
        "traits": {"email": "ada@example-corp.com", "firstName": "Ada", "title": "VP Engineering"},
        "messageId": "msg-identify-1",
        "timestamp": "2026-11-27T10:00:00Z",
    },
    "track": {
        "userId": "u-1024",
        "event": "Whitepaper Downloaded",
        "properties": {"topic": "durable-execution"},
        "messageId": "msg-track-1",
    },
    "page": {
        "anonymousId": "a-5b1c9e",
        "name": "Pricing",
        "properties": {"path": "/pricing", "url": "https://example.com/pricing"},
        "context": {"campaign": {"source": "google", "medium": "cpc", "name": "brand"}},
        "messageId": "msg-page-1",
    },
    "screen": {"userId": "u-1024", "name": "Dashboard", "messageId": "msg-screen-1"},
    "group": {
        "userId": "u-1024",
        "groupId": "acct-77",
        "traits": {"name": "Example Corp", "industry": "Software", "employees": 420},
        "messageId": "msg-group-1",
    },
    "alias": {"previousId": "a-5b1c9e", "userId": "u-1024", "messageId": "msg-alias-1"},
}
EXAMPLES["batch"] = {
    "batch": [{**EXAMPLES["page"], "type": "page"}, {**EXAMPLES["track"], "type": "track"}],
    "sentAt": "2026-11-27T10:00:01Z",
}
OK: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {"example": {"success": True}}}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or unknown write key"},
    403: {"description": "a browser key from another origin, or asserting what only a server knows"},
    429: {"description": "over the key's rate limit (browser keys: also per client IP); see Retry-After"},
    413: {"description": "a message over 32 KB or a batch over 500 KB"},
    422: {"description": "field-level errors; nothing was recorded"},
    503: {"description": "PostgreSQL or Temporal unavailable; nothing was recorded"},
}


def _openapi(kind: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}, "example": EXAMPLES[kind]},
                "text/plain": {"schema": {"type": "string"}, "example": json.dumps(EXAMPLES[kind])},
            },
        }
    }


async def _body(request: Request, limit: int) -> bytes:
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding == "gzip":
        # Inflated only up to one byte past the limit: a small body that inflates to gigabytes
        # (a gzip bomb) costs no more memory than a body at the limit.
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            inflated = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise HTTPException(status_code=400, detail="the body is not valid gzip") from exc
        if len(inflated) <= limit and not inflater.eof:
            raise HTTPException(status_code=400, detail="the body is not valid gzip")
        if len(inflated) > limit:
            raise HTTPException(
                status_code=413, detail=f"the request inflates past the {limit // 1024} KB limit"
            )
        raw = inflated
    if len(raw) > limit:
        raise HTTPException(
            status_code=413,
            detail=f"the request is {len(raw) / 1024:.1f} KB; the limit is {limit // 1024} KB",
        )
    return raw


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]
        ) from exc
    if not isinstance(parsed, dict):
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body"], "msg": "must be a JSON object", "type": "type_error"}]
        )
    return parsed


def _incoming(raw: dict[str, Any], loc: list[str | int], received_at: datetime) -> IncomingEvent:
    message, errors = parse_message(raw, loc)
    if message is None:
        raise HTTPException(status_code=422, detail=errors)
    email, problem = email_of(message)
    if problem:
        raise HTTPException(
            status_code=422,
            detail=[{"loc": [*loc, "traits", "email"], "msg": problem, "type": "invalid_email"}],
        )
    return to_incoming(message, raw, received_at=received_at, event_id=str(uuid.uuid4()), email=email)


async def _single(kind: str, request: Request, ctx: AppContext) -> JSONResponse:
    received_at = datetime.now(UTC)
    raw = await _body(request, MAX_MESSAGE_BYTES)
    body = _json_object(raw)
    principal = await ctx.auth.require(request, "browser", _write_key(request, body))
    body.pop("writeKey", None)
    events = [_incoming({**body, "type": kind}, ["body"], received_at)]
    if principal.is_browser:
        await refuse_what_a_browser_cannot_send(ctx, events)
    await ctx.ingest(events)
    return JSONResponse({"success": True})


def _write_key(request: Request, body: dict[str, Any]) -> str | None:
    if request.headers.get("authorization"):
        return None  # the header decides
    key = body.get("writeKey")
    return key if isinstance(key, str) and key else None


def _route(kind: str) -> Callable[..., Awaitable[JSONResponse]]:
    async def endpoint(request: Request, ctx: AppContext = Depends(context)) -> JSONResponse:
        return await _single(kind, request, ctx)

    endpoint.__name__ = f"segment_{kind}"
    return endpoint


SUMMARIES = {
    "identify": "Who the user is: ties userId/anonymousId to traits (email, name, company)",
    "track": "An action the user took",
    "page": "A web page view",
    "screen": "An app screen view",
    "group": "The account (company) the user belongs to, with firmographics",
    "alias": "Merge two identities: previousId is userId",
}
for _path, _kind in SEGMENT_KINDS.items():
    _short = len(_path) == 1
    router.add_api_route(
        f"/v1/{_path}",
        _route(_kind),
        methods=["POST"],
        summary=f"{_kind}, as Segment's browser library posts it (text/plain JSON)"
        if _short
        else SUMMARIES[_kind],
        responses={**OK, **ERRORS},
        openapi_extra=_openapi(_kind),
        name=f"segment_{_kind}_browser" if _short else f"segment_{_kind}",
    )


@router.post(
    "/v1/b",
    summary="A batch, as Segment's browser library posts it with its batching delivery (text/plain JSON)",
    responses={**OK, **ERRORS},
    openapi_extra=_openapi("batch"),
    name="segment_batch_browser",
)
@router.post(
    "/v1/batch",
    summary="Up to 500 KB of messages of any type, as Segment's libraries send them",
    responses={**OK, **ERRORS},
    openapi_extra=_openapi("batch"),
)
async def segment_batch(request: Request, ctx: AppContext = Depends(context)) -> JSONResponse:
    received_at = datetime.now(UTC)
    raw = await _body(request, MAX_BATCH_BYTES)
    body = _json_object(raw)
    principal = await ctx.auth.require(request, "browser", _write_key(request, body))
    messages = body.get("batch")
    if not isinstance(messages, list):
        raise HTTPException(
            status_code=422,
            detail=[{"loc": ["body", "batch"], "msg": "must be a list of messages", "type": "type_error"}],
        )
    shared = {k: v for k, v in body.items() if k in ("sentAt", "context", "integrations")}
    events: list[IncomingEvent] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(messages):
        if isinstance(item, dict) and len(json.dumps(item)) > MAX_MESSAGE_BYTES:
            raise HTTPException(
                status_code=413,
                detail=f"message batch[{index}] is over the {MAX_MESSAGE_BYTES // 1024} KB limit",
            )
        # Segment's browser library puts the write key in every message of a batch: never stored.
        merged = (
            {k: v for k, v in {**shared, **item}.items() if k != "writeKey"}
            if isinstance(item, dict)
            else item
        )
        if (
            isinstance(merged, dict)
            and isinstance(shared.get("context"), dict)
            and isinstance(item.get("context"), dict)
        ):
            merged["context"] = {**shared["context"], **item["context"]}
        try:
            events.append(_incoming(merged, ["body", "batch", index], received_at))
        except HTTPException as exc:
            errors.extend(
                exc.detail if isinstance(exc.detail, list) else [{"loc": ["body"], "msg": str(exc.detail)}]
            )
    if errors:
        raise HTTPException(status_code=422, detail=errors)
    if principal.is_browser:
        await refuse_what_a_browser_cannot_send(ctx, events)
    if events:
        await ctx.ingest(events)
    return JSONResponse({"success": True})


@router.get(
    "/v1/projects/{write_key}/settings",
    summary="A browser key's settings as Segment's CDN serves a source's: point the library's "
    "`cdnURL` here and it posts to this API",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "integrations": {
                            "Segment.io": {
                                "apiKey": "jrn_browser_3f9a1c2b4d5e_...",
                                "apiHost": "api.example.com/v1",
                                "protocol": "https",
                            }
                        },
                        "plan": {},
                    }
                }
            }
        },
        401: {"description": "not a browser key in force"},
    },
)
async def project_settings(
    write_key: str, request: Request, ctx: AppContext = Depends(context)
) -> JSONResponse:
    principal = await ctx.auth.principal(write_key)
    if principal is None or not principal.is_browser:
        raise HTTPException(status_code=401, detail=f"{UNKNOWN_KEY} (here: a browser key in force)")
    base = (ctx.settings.public_base_url or str(request.base_url)).rstrip("/")
    scheme, _, host = base.partition("://")
    return JSONResponse(
        {
            "integrations": {
                "Segment.io": {"apiKey": write_key, "apiHost": f"{host}/v1", "protocol": scheme}
            },
            "plan": {},
            "middlewareSettings": {},
            "enabledMiddleware": {},
            "metrics": {"sampleRate": 0},
            "legacyVideoPluginsEnabled": False,
            "remotePlugins": [],
        },
        headers={"Cache-Control": "public, max-age=300"},
    )
