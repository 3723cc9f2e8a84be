"""CRM changes read from a CRM without webhooks for them (Salesforce): one poll reads the field
history of the person object and of opportunities since the cursor, maps what reps did
(domain.crm_changes) and records it as ingestion does, so it reaches the lead's journey."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import connector_step
from domain.crm_changes import DEAL_HISTORY, HISTORY, SALESFORCE_PROVIDER, salesforce_changes
from domain.engagement import PollCursor, PollResult
from domain.errors import INVALID_CONFIG, PLATFORM_REJECTED
from domain.webhooks import PayloadError
from platforms.salesforce import SalesforceClient
from store.health import ConnectorStatsRecorder
from store.ingest import IngestStore

# History rows carry a second's resolution and a commit can trail them: reads start this far back.
OVERLAP = timedelta(minutes=1)
# History rows per object and poll; a backlog is read over several polls, the cursor saved between.
PAGE = 200


def _new_id() -> str:
    return str(uuid.uuid4())


class CrmChangeActivities:
    def __init__(
        self,
        ingest: IngestStore,
        *,
        salesforce: SalesforceClient | None = None,
        person_object: str = "Lead",
        stats: ConnectorStatsRecorder | None = None,
        overlap: timedelta = OVERLAP,
        page: int = PAGE,
    ) -> None:
        self._ingest = ingest
        self._salesforce = salesforce
        self._person_object = person_object
        self._stats = stats
        self._overlap = overlap
        self._page = page

    @activity.defn(name="crm_changes.poll_salesforce")
    async def poll_salesforce(self, cursor: PollCursor) -> PollResult:
        """Reads the person object's and opportunities' field history from the cursor on; a
        history that filled its page holds the cursor at its last row, so nothing is skipped."""
        if self._salesforce is None:
            raise ApplicationError(
                "Salesforce is not this deployment's CRM", type=INVALID_CONFIG, non_retryable=True
            )
        async with connector_step(self._stats, SALESFORCE_PROVIDER, "changes.poll"):
            own = await self._salesforce.own_user_id()
        result = PollResult(cursor=cursor)
        reads: list[tuple[str, datetime]] = []
        cap: datetime | None = None
        received = datetime.now(UTC)
        for history, parent in (HISTORY[self._person_object], DEAL_HISTORY):
            async with connector_step(self._stats, SALESFORCE_PROVIDER, "changes.poll"):
                rows = await self._salesforce.history_since(
                    history, parent, cursor.read_from(self._overlap), limit=self._page
                )
            try:
                mapped, read = salesforce_changes(
                    history, parent, rows, own_user_id=own, received_at=received, new_id=_new_id
                )
            except PayloadError as exc:
                raise ApplicationError(
                    f"Salesforce {history}: {exc}", type=PLATFORM_REJECTED, non_retryable=True
                ) from exc
            if len(rows) >= self._page and read:
                newest = max(at for _, at in read)
                cap = newest if cap is None else min(cap, newest)
                result.more = True
            reads += read
            # What the overlap reads again was recorded by an earlier poll (ingestion dedupes too).
            fresh = [e for e in mapped if e.payload["Id"] not in cursor.recent]
            recorded = await self._ingest.record(fresh) if fresh else []
            result.recorded += sum(not r.duplicate for r in recorded)
            result.duplicates += sum(r.duplicate for r in recorded) + len(mapped) - len(fresh)
            activity.heartbeat(history)
        result.read = len(reads)
        result.cursor, _ = cursor.advance(reads, self._overlap)
        if cap is not None and result.cursor.since > cap:
            result.cursor = result.cursor.model_copy(update={"since": cap})
        return result

    def all(self) -> list[object]:
        return [self.poll_salesforce]
