"""CRM changes read from a CRM without webhooks for them (Salesforce): one poll reads the field
history of the person object and of opportunities since the cursor, maps what reps did
(domain.crm_changes) and records it as ingestion does, so it reaches the lead's journey."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import connector_step
from domain.crm_changes import (
    DEAL_HISTORY,
    HISTORY,
    HUBSPOT_PROVIDER,
    SALESFORCE_PROVIDER,
    hubspot_activities,
    salesforce_activities,
    salesforce_changes,
    salesforce_removals,
)
from domain.engagement import PollCursor, PollResult
from domain.errors import INVALID_CONFIG, PLATFORM_REJECTED
from domain.events import IncomingEvent
from domain.webhooks import PayloadError
from platforms.hubspot import HubSpotClient
from platforms.salesforce import SalesforceClient
from store.health import ConnectorStatsRecorder
from store.ingest import IngestStore

# History rows carry a second's resolution and a commit can trail them: reads start this far back.
OVERLAP = timedelta(minutes=1)
# History rows per object and poll; a backlog is read over several polls, the cursor saved between.
PAGE = 200


Mapped = tuple[list[IncomingEvent], list[tuple[str, datetime]]]
# One read of a poll: its name, the call, and the mapping of its rows to events and cursor entries.
Read = tuple[str, Callable[[], Awaitable[list[dict[str, Any]]]], Callable[[list[dict[str, Any]]], Mapped]]


def _new_id() -> str:
    return str(uuid.uuid4())


class CrmChangeActivities:
    def __init__(
        self,
        ingest: IngestStore,
        *,
        salesforce: SalesforceClient | None = None,
        hubspot: HubSpotClient | None = None,
        person_object: str = "Lead",
        stats: ConnectorStatsRecorder | None = None,
        overlap: timedelta = OVERLAP,
        page: int = PAGE,
    ) -> None:
        self._ingest = ingest
        self._salesforce = salesforce
        self._hubspot = hubspot
        self._person_object = person_object
        self._stats = stats
        self._overlap = overlap
        self._page = page

    @activity.defn(name="crm_changes.poll_salesforce")
    async def poll_salesforce(self, cursor: PollCursor) -> PollResult:
        """Reads, from the cursor on, the person object's and opportunities' field history, the
        person records deleted or merged away, and the tasks closed; a read that filled its page
        holds the cursor at its last row, so nothing is skipped."""
        salesforce = self._salesforce
        if salesforce is None:
            raise ApplicationError(
                "Salesforce is not this deployment's CRM", type=INVALID_CONFIG, non_retryable=True
            )
        async with connector_step(self._stats, SALESFORCE_PROVIDER, "changes.poll"):
            own = await salesforce.own_user_id()
        since = cursor.read_from(self._overlap)
        received = datetime.now(UTC)
        person = self._person_object
        person_history, person_parent = HISTORY[person]
        deal_history, deal_parent = DEAL_HISTORY

        def history(name: str, parent: str) -> Read:
            async def read() -> list[dict[str, Any]]:
                return await salesforce.history_since(name, parent, since, limit=self._page)

            def mapped(rows: list[dict[str, Any]]) -> Mapped:
                return salesforce_changes(
                    name, parent, rows, own_user_id=own, received_at=received, new_id=_new_id
                )

            return name, read, mapped

        async def deleted() -> list[dict[str, Any]]:
            return await salesforce.deleted_since(person, since, limit=self._page)

        async def tasks() -> list[dict[str, Any]]:
            return await salesforce.closed_tasks_since(since, limit=self._page)

        reads: list[Read] = [
            history(person_history, person_parent),
            history(deal_history, deal_parent),
            (
                f"{person} deleted",
                deleted,
                lambda rows: salesforce_removals(
                    person, rows, own_user_id=own, received_at=received, new_id=_new_id
                ),
            ),
            (
                "Task",
                tasks,
                lambda rows: salesforce_activities(
                    person, rows, own_user_id=own, received_at=received, new_id=_new_id
                ),
            ),
        ]
        return await self._poll(SALESFORCE_PROVIDER, cursor, reads)

    @activity.defn(name="crm_changes.poll_hubspot")
    async def poll_hubspot(self, cursor: PollCursor) -> PollResult:
        """Reads the tasks completed and the calls logged since the cursor (HubSpot's webhooks
        report neither), with the contacts each is about; the rest of HubSpot's CRM changes call in
        by webhook."""
        hubspot = self._hubspot
        if hubspot is None:
            raise ApplicationError(
                "HubSpot is not this deployment's CRM", type=INVALID_CONFIG, non_retryable=True
            )
        since = cursor.read_from(self._overlap)
        received = datetime.now(UTC)

        def completed(object_type: str) -> Read:
            contacts: dict[str, list[str]] = {}

            async def read() -> list[dict[str, Any]]:
                rows = await hubspot.completed_since(object_type, since, limit=self._page)
                for row in rows:
                    if f"{object_type}:{row.get('id')}" not in cursor.recent:
                        contacts[str(row.get("id"))] = await hubspot.contacts_of(
                            object_type, str(row.get("id"))
                        )
                return rows

            def mapped(rows: list[dict[str, Any]]) -> Mapped:
                return hubspot_activities(object_type, rows, contacts, received_at=received, new_id=_new_id)

            return object_type, read, mapped

        return await self._poll(HUBSPOT_PROVIDER, cursor, [completed("tasks"), completed("calls")])

    async def _poll(self, provider: str, cursor: PollCursor, reads: list[Read]) -> PollResult:
        """Each read in turn, its events recorded as ingestion does; the cursor moves past what
        every read saw, and no further than the oldest end of a read that filled its page."""
        result = PollResult(cursor=cursor)
        seen: list[tuple[str, datetime]] = []
        cap: datetime | None = None
        for name, read, mapper in reads:
            async with connector_step(self._stats, provider, "changes.poll"):
                rows = await read()
            try:
                mapped, read_rows = mapper(rows)
            except PayloadError as exc:
                raise ApplicationError(
                    f"{provider} {name}: {exc}", type=PLATFORM_REJECTED, non_retryable=True
                ) from exc
            if len(rows) >= self._page and read_rows:
                newest = max(at for _, at in read_rows)
                cap = newest if cap is None else min(cap, newest)
                result.more = True
            seen += read_rows
            # What the overlap reads again was recorded by an earlier poll (ingestion dedupes too).
            fresh = [e for e in mapped if e.payload["Id"] not in cursor.recent]
            recorded = await self._ingest.record(fresh) if fresh else []
            result.recorded += sum(not r.duplicate for r in recorded)
            result.duplicates += sum(r.duplicate for r in recorded) + len(mapped) - len(fresh)
            activity.heartbeat(name)
        result.read = len(seen)
        result.cursor, _ = cursor.advance(seen, self._overlap)
        if cap is not None and result.cursor.since > cap:
            result.cursor = result.cursor.model_copy(update={"since": cap})
        return result

    def all(self) -> list[object]:
        return [self.poll_salesforce, self.poll_hubspot]
