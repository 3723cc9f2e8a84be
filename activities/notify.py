"""Chat notifications (Slack) through `ChatPort`: sales alerts, escalations."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.contacts import personalize
from activities.errors import connector_step
from domain.connectors import ChatNotifyInput, WriteResult
from domain.text_safety import slack_escape
from platforms.ports import ChatMessage, ChatPort
from store.flows import FlowRecorder
from store.health import ConnectorStatsRecorder
from store.models import Lead
from store.repository import LeadStore


def _personalize_blocks(value: Any, lead: Lead | None) -> Any:
    if isinstance(value, str):
        return personalize(value, lead, slack_escape)
    if isinstance(value, list):
        return [_personalize_blocks(v, lead) for v in value]
    if isinstance(value, dict):
        return {k: _personalize_blocks(v, lead) for k, v in value.items()}
    return value


class NotifyActivities:
    def __init__(self, chat: ChatPort, store: LeadStore, stats: ConnectorStatsRecorder | None = None) -> None:
        self._chat = chat
        self._store = store
        self._stats = stats
        self._flows = FlowRecorder(store.sessions)

    @activity.defn(name="notify.post_message")
    async def post_message(self, data: ChatNotifyInput) -> WriteResult:
        lead = await self._store.get_lead(data.lead_id) if data.lead_id else None
        blocks = _personalize_blocks(data.blocks, lead) if data.blocks else None
        message = ChatMessage(
            channel=data.channel,
            text=personalize(data.text, lead, slack_escape),
            blocks=blocks,
        )
        async with connector_step(self._stats, self._chat.provider, "notify.post_message"):
            written = await self._chat.post_message(message, idempotency_key=data.idempotency_key)
        await self._flows.marked_done(data.flow, data.lead_id)
        return written

    def all(self) -> list[object]:
        return [self.post_message]
