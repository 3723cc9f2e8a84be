"""Connecting Kit's webhooks to the engine: `journeys kit connect` (which `dev` runs against the
sandbox's Kit at each start).

Kit makes the signing secret of a webhook endpoint and shows it once (see `platforms.kit`), so the
engine cannot be configured with a secret of its own choosing: this step registers the receivers
through Kit's API and hands back the secret, which the API then reads from
`JOURNEYS_KIT_WEBHOOK_SECRET`.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from platforms.kit import KitClient, KitWebhooks
from runtime.settings import Settings


def receiver_urls(public_url: str, ingest_key: str) -> tuple[str, str]:
    """Where Kit posts: the endpoint's signed deliveries, and the legacy link clicks."""
    base = public_url.rstrip("/")
    return f"{base}/v1/webhooks/kit?key={ingest_key}", f"{base}/v1/webhooks/kit/link_click?key={ingest_key}"


async def connect_kit_webhooks(
    settings: Settings, *, public_url: str, ingest_key: str, links: Sequence[str]
) -> KitWebhooks:
    """Registers the engine at `public_url` with the configured Kit account (`JOURNEYS_KIT_*`)."""
    endpoint_url, link_click_url = receiver_urls(public_url, ingest_key)
    async with httpx.AsyncClient(timeout=30.0) as http:
        key, token = settings.kit_credentials()
        kit = KitClient(http, base_url=settings.kit_url, api_key=key, access_token=token)
        return await kit.connect_webhooks(
            endpoint_url=endpoint_url, link_click_url=link_click_url, links=links
        )
