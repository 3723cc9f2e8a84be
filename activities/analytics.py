"""Analytics events (GA4 Measurement Protocol) through `AnalyticsPort`, and signed outbound webhooks."""

from __future__ import annotations

from temporalio import activity

from activities.errors import connector_step
from domain.connectors import AnalyticsEventInput, WebhookDeliveryInput, WriteResult
from platforms.ports import AnalyticsEvent, AnalyticsPort, WebhookDelivery, WebhookPort
from store.health import ConnectorStatsRecorder


class AnalyticsActivities:
    def __init__(self, analytics: AnalyticsPort, stats: ConnectorStatsRecorder | None = None) -> None:
        self._analytics = analytics
        self._stats = stats

    @activity.defn(name="analytics.send_event")
    async def send_event(self, data: AnalyticsEventInput) -> WriteResult:
        event = AnalyticsEvent(
            client_id=data.client_id,
            user_id=data.lead_id,
            name=data.name,
            params=data.params,
            occurred_at=data.occurred_at,
        )
        async with connector_step(self._stats, self._analytics.provider, "analytics.send_event"):
            return await self._analytics.send_event(event, idempotency_key=data.idempotency_key)

    def all(self) -> list[object]:
        return [self.send_event]


class WebhookActivities:
    def __init__(self, webhooks: WebhookPort, stats: ConnectorStatsRecorder | None = None) -> None:
        self._webhooks = webhooks
        self._stats = stats

    @activity.defn(name="webhook.deliver")
    async def deliver(self, data: WebhookDeliveryInput) -> WriteResult:
        delivery = WebhookDelivery(url=data.url, event_type=data.event_type, payload=data.payload)
        async with connector_step(self._stats, self._webhooks.provider, "webhook.deliver"):
            return await self._webhooks.deliver(delivery, idempotency_key=data.idempotency_key)

    def all(self) -> list[object]:
        return [self.deliver]
