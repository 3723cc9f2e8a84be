"""Connecting HubSpot's webhooks to the engine: `journeys hubspot connect` (which `dev` runs against
the sandbox's HubSpot at each start). HubSpot signs deliveries with the app's client secret, which
the API holds as `JOURNEYS_HUBSPOT_CLIENT_SECRET`; this sets where they go and what they carry."""

from __future__ import annotations

import httpx

from platforms.hubspot import WEBHOOK_SUBSCRIPTIONS, HubSpotClient
from runtime.settings import Settings


def receiver_url(public_url: str, ingest_key: str) -> str:
    return f"{public_url.rstrip('/')}/v1/webhooks/hubspot?key={ingest_key}"


async def connect_hubspot_webhooks(
    settings: Settings, *, app_id: str, public_url: str, ingest_key: str, developer_token: str | None = None
) -> list[int]:
    """Sets the app's target URL and subscriptions. The Webhooks API takes the app developer's
    credential (`developer_token`), not the portal's private app token; the sandbox takes either."""
    token = developer_token or settings.hubspot_token.get_secret_value()
    async with httpx.AsyncClient(timeout=30.0) as http:
        hubspot = HubSpotClient(http, base_url=settings.hubspot_url, token=token)
        return await hubspot.connect_webhooks(
            app_id, target_url=receiver_url(public_url, ingest_key), subscriptions=WEBHOOK_SUBSCRIPTIONS
        )
