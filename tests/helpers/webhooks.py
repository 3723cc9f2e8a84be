"""Platform webhook deliveries signed as each provider signs them (the dev stack's secrets)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from devstack.stack import DEV_WEBHOOK_SECRETS, DevStack
from domain.signatures import sign_hubspot_v3, sign_timestamped_hmac


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


async def _post_timestamped_hmac(
    hooks: httpx.AsyncClient,
    path: str,
    header: str,
    secret: str,
    payload: dict[str, Any],
    at: int | None,
) -> httpx.Response:
    """A delivery signed Stripe's way (`t=...,v1=<hex HMAC of "{t}.{body}">`), as Kit signs too."""
    raw = body_of(payload)
    signed = sign_timestamped_hmac(raw, secret, at or int(time.time()))
    return await hooks.post(path, content=raw, headers={header: signed, "Content-Type": "application/json"})


async def post_stripe(
    hooks: httpx.AsyncClient, payload: dict[str, Any], *, at: int | None = None, secret: str | None = None
) -> httpx.Response:
    secret = secret or DEV_WEBHOOK_SECRETS["JOURNEYS_STRIPE_WEBHOOK_SECRET"]
    return await _post_timestamped_hmac(hooks, "/v1/webhooks/stripe", "Stripe-Signature", secret, payload, at)


async def post_hubspot(
    stack: DevStack, hooks: httpx.AsyncClient, events: list[dict[str, Any]]
) -> httpx.Response:
    """Delivers webhook events as HubSpot signs them (v3: method, full URI, body, timestamp)."""
    raw = body_of(events)
    url = httpx.URL(f"{stack.settings.api_url}/v1/webhooks/hubspot", params=hooks.params)
    timestamp = str(int(time.time() * 1000))
    signature = sign_hubspot_v3(
        method="POST",
        uri=str(url),
        body=raw,
        client_secret=DEV_WEBHOOK_SECRETS["JOURNEYS_HUBSPOT_CLIENT_SECRET"],
        timestamp_ms=timestamp,
    )
    return await hooks.post(
        "/v1/webhooks/hubspot",
        content=raw,
        headers={"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp},
    )


def deal_won(deal_id: str) -> dict[str, Any]:
    return {
        "eventId": uuid.uuid4().int % 10**12,
        "subscriptionId": 1,
        "portalId": 62515,
        "appId": 1,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": int(deal_id),
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
        "changeSource": "CRM_UI",
    }


def subscription_deleted(customer: str) -> dict[str, Any]:
    """Stripe's event when a subscription ends: it names the customer by id only."""
    return {
        "id": f"evt_{uuid.uuid4().hex[:12]}",
        "type": "customer.subscription.deleted",
        "created": int(time.time()),
        "data": {"object": {"id": "sub_1", "customer": customer, "status": "canceled"}},
    }


def checkout(
    email: str, customer: str, *, event_id: str | None = None, session_id: str = "cs_1"
) -> dict[str, Any]:
    """Stripe's checkout.session.completed for a subscription bought by `email`."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:12]}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": session_id,
                "customer": customer,
                "amount_total": 49900,
                "currency": "usd",
                "mode": "subscription",
                "customer_details": {"email": email},
            }
        },
    }


async def post_kit(
    hooks: httpx.AsyncClient, payload: dict[str, Any], *, secret: str, at: int | None = None
) -> httpx.Response:
    """A Kit webhook endpoint's delivery, signed in `X-Kit-Signature` with the endpoint's secret
    (the dev stack's is `DevStack.kit_webhook_secret`, made by the sandbox's Kit)."""
    return await _post_timestamped_hmac(hooks, "/v1/webhooks/kit", "X-Kit-Signature", secret, payload, at)
