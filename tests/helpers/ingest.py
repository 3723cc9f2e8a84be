"""A stand-in for ingestion in narrow activity tests: it keeps what it is given and answers a
repeated platform event id as a duplicate, as the store's unique key does."""

from __future__ import annotations

from domain.events import IncomingEvent
from store.ingest import RecordResult


class RecordingIngest:
    def __init__(self) -> None:
        self.recorded: list[IncomingEvent] = []

    async def record(self, events: list[IncomingEvent]) -> list[RecordResult]:
        seen = {e.message_id for e in self.recorded}
        self.recorded += events
        return [
            RecordResult(event_id=e.lead_event.event_id, lead_id=None, duplicate=e.message_id in seen)
            for e in events
        ]
