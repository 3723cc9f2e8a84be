"""Platform webhooks in: each provider's signature verified the way it signs, its payload mapped
onto the internal event model, recorded like any other event.

Configure each provider to call `https://<host>/v1/webhooks/<provider>?key=<ingest key>`.
A replayed delivery (same provider event id) is answered 200 and recorded nothing, so a
provider retrying after a lost answer never double counts; a stale one (timestamp outside the
tolerance) is refused with 401.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import SecretStr

from api.context import AppContext, context
from domain import signatures, webhooks
from domain.events import IncomingEvent
from platforms.errors import NotFoundError, PermanentPlatformError, PlatformError
from store.sends import SentEmails

router = APIRouter(tags=["webhooks"])
log = logging.getLogger("journeys.webhooks")


def _secret(value: SecretStr | None, provider: str, variable: str) -> str:
    if value is None:
        raise HTTPException(
            status_code=404, detail=f"webhooks from {provider} are not configured: set {variable}"
        )
    return value.get_secret_value()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]
        ) from exc


def _unprocessable(exc: webhooks.PayloadError) -> HTTPException:
    return HTTPException(
        status_code=422, detail=[{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
    )


def _json_object(raw: bytes) -> dict[str, Any]:
    payload = _json(raw)
    if not isinstance(payload, dict):
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body"], "msg": "must be an object", "type": "type_error"}]
        )
    return payload


async def _timestamped_hmac_body(request: Request, ctx: AppContext, secret: str, header: str) -> bytes:
    """The body of a delivery signed Stripe's way (`t=...,v1=...`), once its signature verifies."""
    raw = await request.body()
    _verified(
        lambda: signatures.verify_timestamped_hmac(
            request.headers.get(header),
            raw,
            secret,
            now=time.time(),
            tolerance=ctx.settings.webhook_tolerance_seconds,
        )
    )
    return raw


def _follow_up_failed(api: str, exc: PlatformError) -> HTTPException:
    """A notification whose lead could not be read for a reason other than the lead being gone:
    an outage, or one on our side (a retired API version, a revoked token, a missing permission).
    Either way the lead is not recorded, so the platform is asked to deliver it again (503) rather
    than told it was handled; ours are logged as errors, for someone to fix before its retries
    run out."""
    if isinstance(exc, PermanentPlatformError):
        log.error("%s refused the follow-up read; the platform will retry: %s", api, exc)
        reason = f"{api} refused the read ({exc}); fix the configuration"
    else:
        reason = f"{api} is unavailable ({exc})"
    return HTTPException(status_code=503, detail=f"{reason}; nothing was recorded, retry later")


def _new_id() -> str:
    return str(uuid.uuid4())


async def _record(
    ctx: AppContext, mapped: Callable[[], list[IncomingEvent]], *, attribute: bool = False
) -> dict[str, Any]:
    """`attribute`: email engagement is first attributed to the engine's send it answers."""
    try:
        events = mapped()
    except webhooks.PayloadError as exc:
        raise _unprocessable(exc) from exc
    if not events:
        return {"received": 0, "ignored": True}
    if attribute:
        await SentEmails(ctx.sessions).attribute(events)
    results = await ctx.ingest(events)
    return {
        "received": len(results),
        "duplicates": sum(r.duplicate for r in results),
        "event_ids": [r.event_id for r in results],
    }


def _verified(check: Callable[[], object]) -> None:
    try:
        check()
    except signatures.SignatureError as exc:
        raise HTTPException(status_code=401, detail=f"signature refused: {exc}") from exc


EXAMPLE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/json": {"example": {"received": 1, "duplicates": 0, "event_ids": ["..."]}}}
    }
}
REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, or the signature does not verify (or is stale)"},
    404: {"description": "this provider's secret is not configured"},
    422: {"description": "the payload is not what the provider sends"},
}


@router.post(
    "/v1/webhooks/stripe",
    summary="Stripe events (checkout, invoices, subscriptions); `Stripe-Signature` verified",
    responses={**EXAMPLE_ANSWER, **REFUSED},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": {
                        "id": "evt_1Q",
                        "type": "checkout.session.completed",
                        "created": 1764237600,
                        "data": {
                            "object": {
                                "id": "cs_1",
                                "customer": "cus_1",
                                "amount_total": 49900,
                                "currency": "usd",
                                "customer_details": {"email": "ada@example-corp.com"},
                                "mode": "subscription",
                            }
                        },
                    }
                }
            }
        }
    },
)
async def stripe(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "ingest")
    secret = _secret(ctx.settings.stripe_webhook_secret, "stripe", "JOURNEYS_STRIPE_WEBHOOK_SECRET")
    raw = await _timestamped_hmac_body(request, ctx, secret, "stripe-signature")
    payload = _json_object(raw)
    return await _record(ctx, lambda: webhooks.stripe_events(payload, datetime.now(UTC), _new_id))


@router.post(
    "/v1/webhooks/calendly",
    summary="Calendly invitee.created / invitee.canceled; `Calendly-Webhook-Signature` verified",
    responses={**EXAMPLE_ANSWER, **REFUSED},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": {
                        "event": "invitee.created",
                        "created_at": "2026-11-27T10:00:00.000000Z",
                        "payload": {
                            "email": "ada@example-corp.com",
                            "name": "Ada Lovelace",
                            "uri": "https://api.calendly.com/scheduled_events/EV1/invitees/INV1",
                            "scheduled_event": {
                                "uri": "https://api.calendly.com/scheduled_events/EV1",
                                "name": "Demo",
                                "start_time": "2026-11-28T15:00:00Z",
                                "end_time": "2026-11-28T15:30:00Z",
                            },
                        },
                    }
                }
            }
        }
    },
)
async def calendly(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "ingest")
    secret = _secret(
        ctx.settings.calendly_webhook_signing_key, "calendly", "JOURNEYS_CALENDLY_WEBHOOK_SIGNING_KEY"
    )
    raw = await _timestamped_hmac_body(request, ctx, secret, "calendly-webhook-signature")
    payload = _json_object(raw)
    return await _record(ctx, lambda: webhooks.calendly_events(payload, datetime.now(UTC), _new_id))


@router.post(
    "/v1/webhooks/hubspot",
    summary="HubSpot CRM events (deal stage changes); `X-HubSpot-Signature-v3` verified",
    responses={**EXAMPLE_ANSWER, **REFUSED},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": [
                        {
                            "eventId": 100,
                            "subscriptionId": 2,
                            "portalId": 62515,
                            "occurredAt": 1764237600000,
                            "subscriptionType": "deal.propertyChange",
                            "attemptNumber": 0,
                            "objectId": 1234,
                            "propertyName": "dealstage",
                            "propertyValue": "closedwon",
                            "changeSource": "CRM_UI",
                        }
                    ]
                }
            }
        }
    },
)
async def hubspot(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "ingest")
    secret = _secret(ctx.settings.hubspot_client_secret, "hubspot", "JOURNEYS_HUBSPOT_CLIENT_SECRET")
    raw = await request.body()
    uri = str(request.url)
    if ctx.settings.public_base_url:
        uri = (
            ctx.settings.public_base_url.rstrip("/")
            + request.url.path
            + (f"?{request.url.query}" if request.url.query else "")
        )
    _verified(
        lambda: signatures.verify_hubspot_v3(
            request.headers.get("x-hubspot-signature-v3"),
            request.headers.get("x-hubspot-request-timestamp"),
            method=request.method,
            uri=uri,
            body=raw,
            client_secret=secret,
            now=time.time(),
            tolerance=ctx.settings.webhook_tolerance_seconds,
        )
    )
    payload = _json(raw)
    own = ctx.settings.hubspot_app_id
    return await _record(
        ctx, lambda: webhooks.hubspot_events(payload, datetime.now(UTC), _new_id, own_app_id=own)
    )


@router.post(
    "/v1/webhooks/resend",
    summary="Email engagement from Resend (Standard Webhooks / Svix signatures)",
    responses={**EXAMPLE_ANSWER, **REFUSED},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": {
                        "type": "email.clicked",
                        "created_at": "2026-11-27T10:00:00.000Z",
                        "data": {
                            "email_id": "4ef9a417",
                            "to": ["ada@example-corp.com"],
                            "subject": "Welcome",
                            "click": {"link": "https://example.com/pricing"},
                        },
                    }
                }
            }
        }
    },
)
async def resend(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "ingest")
    secret = _secret(ctx.settings.resend_webhook_secret, "resend", "JOURNEYS_RESEND_WEBHOOK_SECRET")
    raw = await request.body()
    headers = request.headers
    message_id = headers.get("webhook-id") or headers.get("svix-id")
    _verified(
        lambda: signatures.verify_standard_webhook(
            message_id,
            headers.get("webhook-timestamp") or headers.get("svix-timestamp"),
            headers.get("webhook-signature") or headers.get("svix-signature"),
            raw,
            secret,
            now=time.time(),
            tolerance=ctx.settings.webhook_tolerance_seconds,
        )
    )
    payload = _json_object(raw)
    assert message_id is not None
    return await _record(
        ctx, lambda: webhooks.resend_events(payload, datetime.now(UTC), _new_id, message_id=message_id)
    )


KIT_EVENT_EXAMPLE = {
    "delivery_id": 123456,
    "events": [
        {
            "id": "9c2e1f3a-6b7d-4e8f-a1b2-c3d4e5f60718",
            "type": "subscriber.unsubscribed",
            "created": "2026-12-04T14:32:10Z",
            "data": {
                "subscriber": {
                    "id": 987654,
                    "first_name": "Ada",
                    "email_address": "ada@example-corp.com",
                    "state": "cancelled",
                    "created_at": "2026-11-29T14:32:10Z",
                    "fields": {},
                }
            },
        }
    ],
}


@router.post(
    "/v1/webhooks/kit",
    summary="Unsubscribes, bounces and complaints from a Kit webhook endpoint; `X-Kit-Signature` verified",
    responses={**EXAMPLE_ANSWER, **REFUSED},
    openapi_extra={"requestBody": {"content": {"application/json": {"example": KIT_EVENT_EXAMPLE}}}},
)
async def kit(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "ingest")
    secret = _secret(ctx.settings.kit_webhook_secret, "kit", "JOURNEYS_KIT_WEBHOOK_SECRET")
    raw = await _timestamped_hmac_body(request, ctx, secret, "x-kit-signature")
    payload = _json_object(raw)
    return await _record(
        ctx, lambda: webhooks.kit_events(payload, datetime.now(UTC), _new_id), attribute=True
    )


@router.post(
    "/v1/webhooks/kit/link_click",
    summary="A click on one link, from a legacy Kit webhook (`subscriber.link_click`); unsigned",
    description=(
        "Kit reports clicks only through its legacy webhooks, one per link and without a signature: "
        "register `.../v1/webhooks/kit/link_click?key=<ingest key>&url=<the link>` as the webhook's "
        "`target_url`, with the same link as its `initiator_value`. The ingest key is what "
        "authenticates the call."
    ),
    responses={**EXAMPLE_ANSWER, **REFUSED},
)
async def kit_link_click(
    request: Request,
    url: str = Query(..., description="the link this webhook was registered for"),
    ctx: AppContext = Depends(context),
) -> dict[str, Any]:
    await ctx.auth.require(request, "ingest")
    payload = _json_object(await request.body())
    return await _record(
        ctx, lambda: webhooks.kit_link_click(payload, url, datetime.now(UTC), _new_id), attribute=True
    )


@router.get(
    "/v1/webhooks/facebook",
    summary="Meta's subscription check: echoes hub.challenge when hub.verify_token matches",
    responses={
        200: {"content": {"text/plain": {"example": "1158201444"}}},
        403: {"description": "wrong token"},
    },
)
async def facebook_verify(
    request: Request,
    mode: str = Query("", alias="hub.mode", examples=["subscribe"]),
    token: str = Query("", alias="hub.verify_token", examples=["<JOURNEYS_FACEBOOK_VERIFY_TOKEN>"]),
    # Meta's challenges are numbers: echoed only then.
    challenge: str = Query("", alias="hub.challenge", pattern=r"^\d{1,32}$", examples=["1158201444"]),
    ctx: AppContext = Depends(context),
) -> PlainTextResponse:
    await ctx.auth.require(request, "ingest")
    expected = _secret(ctx.settings.facebook_verify_token, "facebook", "JOURNEYS_FACEBOOK_VERIFY_TOKEN")
    if mode != "subscribe" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(status_code=403, detail="hub.verify_token does not match")
    return PlainTextResponse(challenge)


@router.post(
    "/v1/webhooks/facebook",
    summary="Meta Lead Ads (`leadgen`): `X-Hub-Signature-256` verified, each lead read from the Graph API",
    responses={
        **EXAMPLE_ANSWER,
        **REFUSED,
        503: {"description": "the Graph API could not be read; Meta retries the delivery"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": {
                        "object": "page",
                        "entry": [
                            {
                                "id": "516540199134611",
                                "time": 1764237600,
                                "changes": [
                                    {
                                        "field": "leadgen",
                                        "value": {
                                            "leadgen_id": "555971704561545",
                                            "form_id": "551111744595541",
                                            "page_id": "516540199134611",
                                            "ad_id": "6021234567890",
                                            "created_time": 1764237600,
                                        },
                                    }
                                ],
                            }
                        ],
                    }
                }
            }
        }
    },
)
async def facebook(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "ingest")
    secret = _secret(ctx.settings.facebook_app_secret, "facebook", "JOURNEYS_FACEBOOK_APP_SECRET")
    raw = await request.body()
    _verified(
        lambda: signatures.verify_hub_signature(request.headers.get("x-hub-signature-256"), raw, secret)
    )
    payload = _json_object(raw)
    try:
        changes = webhooks.facebook_leadgen_ids(payload)
    except webhooks.PayloadError as exc:
        raise _unprocessable(exc) from exc
    received_at = datetime.now(UTC)
    leads: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for change in changes:
        try:
            leads.append((change, await ctx.facebook.get_lead(str(change["leadgen_id"]))))
        except NotFoundError as exc:
            # The lead was deleted: nothing to record, and no point in Meta retrying.
            log.warning("lead %s no longer exists: %s", change["leadgen_id"], exc)
        except PlatformError as exc:
            raise _follow_up_failed("the Graph API", exc) from exc
    return await _record(
        ctx,
        lambda: [webhooks.facebook_lead_event(change, lead, received_at, _new_id) for change, lead in leads],
    )


LINKEDIN_CHALLENGE = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@router.get(
    "/v1/webhooks/linkedin",
    summary="LinkedIn's webhook validation: answers the challenge with its HMAC",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"challengeCode": "890e4665-...", "challengeResponse": "<hex>"}
                }
            }
        }
    },
)
async def linkedin_validate(
    request: Request,
    # LinkedIn's challenge codes are UUIDs: anything else would make this an HMAC oracle under the
    # client secret that signs LinkedIn's deliveries (a forged body's signature for the asking).
    challenge_code: str = Query(
        ...,
        alias="challengeCode",
        pattern=LINKEDIN_CHALLENGE,
        examples=["890e4665-4dfe-4ab1-b689-ed553bceeed1"],
    ),
    ctx: AppContext = Depends(context),
) -> dict[str, str]:
    await ctx.auth.require(request, "ingest")
    secret = _secret(ctx.settings.linkedin_client_secret, "linkedin", "JOURNEYS_LINKEDIN_CLIENT_SECRET")
    return {
        "challengeCode": challenge_code,
        "challengeResponse": signatures.linkedin_challenge_response(challenge_code, secret),
    }


@router.post(
    "/v1/webhooks/linkedin",
    summary="LinkedIn Lead Gen Forms (Lead Sync): `X-LI-Signature` verified, answers read from the API",
    responses={
        **EXAMPLE_ANSWER,
        **REFUSED,
        503: {"description": "LinkedIn's API could not be read; LinkedIn retries the notification"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": {
                        "type": "LEAD_ACTION",
                        "leadAction": "CREATED",
                        "occurredAt": 1764237600000,
                        "leadType": "SPONSORED",
                        "leadGenFormResponse": "urn:li:leadGenFormResponse:3f1a9c2e-...",
                        "leadGenForm": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:123456,1)",
                        "owner": {"sponsoredAccount": "urn:li:sponsoredAccount:507000001"},
                    }
                }
            }
        }
    },
)
async def linkedin(request: Request, ctx: AppContext = Depends(context)) -> dict[str, Any]:
    await ctx.auth.require(request, "ingest")
    secret = _secret(ctx.settings.linkedin_client_secret, "linkedin", "JOURNEYS_LINKEDIN_CLIENT_SECRET")
    raw = await request.body()
    _verified(
        lambda: signatures.verify_linkedin_signature(request.headers.get("x-li-signature"), raw, secret)
    )
    payload = _json_object(raw)
    try:
        named = webhooks.linkedin_notification(payload)
    except webhooks.PayloadError as exc:
        raise _unprocessable(exc) from exc
    if named is None:
        return {"received": 0, "ignored": True}
    response_id, form_id = named
    try:
        response = await ctx.linkedin.form_response(response_id)
        form = await ctx.linkedin.form(form_id)
    except NotFoundError as exc:
        log.warning("LinkedIn lead %s no longer exists: %s", response_id, exc)
        return {"received": 0, "ignored": True, "reason": "the form response no longer exists"}
    except PlatformError as exc:
        raise _follow_up_failed("LinkedIn's API", exc) from exc
    received_at = datetime.now(UTC)
    return await _record(
        ctx, lambda: [webhooks.linkedin_lead_event(payload, response, form, received_at, _new_id)]
    )
