"""Email engagement read from the platforms that expose it as an events API (Klaviyo, HubSpot): one poll
reads from the cursor, maps the platform's events, attributes them to the sends they answer and
records them as ingestion does (so they reach the lead's journey, its score and its suppression)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import connector_step
from domain.engagement import (
    HUBSPOT_PROVIDER,
    KLAVIYO_PROVIDER,
    PollCursor,
    PollResult,
    hubspot_email_engagement,
    klaviyo_engagement,
    klaviyo_event_time,
)
from domain.errors import INVALID_CONFIG, PLATFORM_REJECTED
from domain.events import IncomingEvent
from domain.webhooks import PayloadError
from platforms.hubspot import HubSpotClient
from platforms.klaviyo import KlaviyoClient
from store.health import ConnectorStatsRecorder
from store.ingest import IngestStore
from store.sends import SentEmails

# Klaviyo indexes an event within seconds of it; a read starts this far before the newest read.
OVERLAP = timedelta(minutes=2)
# Pages per poll: a backlog (the first poll, or one after an outage) is read over several polls,
# each a short activity, with the cursor saved between them.
MAX_PAGES = 10


def _new_id() -> str:
    return str(uuid.uuid4())


class EngagementActivities:
    def __init__(
        self,
        ingest: IngestStore,
        sent: SentEmails,
        *,
        klaviyo: KlaviyoClient | None = None,
        hubspot: HubSpotClient | None = None,
        stats: ConnectorStatsRecorder | None = None,
        overlap: timedelta = OVERLAP,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self._ingest = ingest
        self._sent = sent
        self._klaviyo = klaviyo
        self._hubspot = hubspot
        self._overlap = overlap
        self._max_pages = max_pages
        self._stats = stats

    @activity.defn(name="engagement.poll_klaviyo")
    async def poll_klaviyo(self, cursor: PollCursor) -> PollResult:
        """Reads Klaviyo's events from the cursor (up to `max_pages` pages) and records the email
        engagement among them; the result's cursor is where the next poll starts."""
        if self._klaviyo is None:
            raise ApplicationError(
                "Klaviyo is not this deployment's email platform", type=INVALID_CONFIG, non_retryable=True
            )
        result = PollResult(cursor=cursor)
        next_url: str | None = None
        for page_number in range(self._max_pages):
            async with connector_step(self._stats, KLAVIYO_PROVIDER, "engagement.poll"):
                page = await (
                    self._klaviyo.events_page(next_url=next_url)
                    if next_url
                    else self._klaviyo.events_page(since=cursor.read_from(self._overlap))
                )
            try:
                times = [(str(item["id"]), klaviyo_event_time(item)) for item in page.get("data") or []]
                mapped, no_email = klaviyo_engagement(page, datetime.now(UTC), _new_id)
            except (PayloadError, KeyError, TypeError) as exc:
                # Not Klaviyo's published shape: the same read would fail again; the poller
                # keeps the failure and tries at its next interval.
                raise ApplicationError(
                    f"Klaviyo events page: {exc}", type=PLATFORM_REJECTED, non_retryable=True
                ) from exc
            result.cursor, fresh = result.cursor.advance(times, self._overlap)
            await self._record_page(result, mapped, fresh, read=len(times))
            result.unknown_recipients += no_email
            activity.heartbeat(page_number)
            next_url = (page.get("links") or {}).get("next")
            if not next_url:
                return result
        result.more = True
        return result

    @activity.defn(name="engagement.poll_hubspot")
    async def poll_hubspot(self, cursor: PollCursor) -> PollResult:
        """Reads HubSpot's marketing email events of one window (from `overlap` before the cursor
        to the moment the window opened), up to `max_pages` pages by offset; a window left
        unfinished is continued by the next poll from its offset (see `PollCursor.in_window`)."""
        if self._hubspot is None:
            raise ApplicationError(
                "HubSpot is not this deployment's email platform", type=INVALID_CONFIG, non_retryable=True
            )
        result = PollResult(cursor=cursor)
        window_to = cursor.window_to or datetime.now(UTC)
        offset = cursor.page
        for page_number in range(self._max_pages):
            async with connector_step(self._stats, HUBSPOT_PROVIDER, "engagement.poll"):
                page = await self._hubspot.email_events_page(
                    start=cursor.read_from(self._overlap), end=window_to, offset=offset
                )
            try:
                mapped, times = hubspot_email_engagement(page, datetime.now(UTC), _new_id)
            except PayloadError as exc:
                raise ApplicationError(
                    f"HubSpot email events page: {exc}", type=PLATFORM_REJECTED, non_retryable=True
                ) from exc
            more = bool(page.get("hasMore")) and bool(page.get("offset"))
            offset = str(page["offset"]) if more else None
            result.cursor, fresh = result.cursor.in_window(times, self._overlap, window_to, offset)
            await self._record_page(result, mapped, fresh, read=len(times))
            activity.heartbeat(page_number)
            if offset is None:
                return result
        result.more = True
        return result

    async def _record_page(
        self, result: PollResult, mapped: list[IncomingEvent], fresh: set[str], *, read: int
    ) -> None:
        """Attributes and records the page's events not read before, and counts them in `result`."""
        events = [e for e in mapped if e.message_id in fresh]
        await self._sent.attribute(events)
        recorded = await self._ingest.record(events) if events else []
        result.read += read
        result.recorded += sum(not r.duplicate for r in recorded)
        result.duplicates += sum(r.duplicate for r in recorded) + len(mapped) - len(events)

    def all(self) -> list[object]:
        return [self.poll_klaviyo, self.poll_hubspot]
