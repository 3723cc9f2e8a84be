"""The seed's data flows, timed end to end: from the event (received) to the platform write that
completes the flow. The first completion of a key counts; retries and replays change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from domain.connectors import FlowMark
from store.db import SessionFactory

# The seed's latency targets.
TARGETS: dict[str, timedelta] = {
    "form_to_email": timedelta(seconds=30),
    "form_to_crm": timedelta(seconds=30),
    "click_to_crm": timedelta(minutes=2),
    "score_to_sales_alert": timedelta(minutes=5),
    "meeting_to_crm": timedelta(seconds=60),
    "purchase_to_customer_success": timedelta(seconds=60),
}

_RECORD = text(
    "INSERT INTO data_flows (key, flow, lead_id, started_at, done_at) "
    "VALUES (:key, :flow, :lead, :started, :done) ON CONFLICT (key) DO NOTHING"
)
_EVENT_TIME = text("SELECT received_at FROM events WHERE event_id = :id")
_REPORT = text(
    """
    SELECT flow, count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - started_at)) AS p50,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - started_at)) AS p90,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - started_at)) AS p99,
           count(*) FILTER (WHERE done_at - started_at > :slow * interval '1 second') AS over
    FROM data_flows WHERE flow = :flow AND done_at >= :since GROUP BY flow
    """
)
_SALES_ALERTS = text(
    """
    SELECT count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM notified_at - mql_at)) AS p50,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM notified_at - mql_at)) AS p90,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM notified_at - mql_at)) AS p99,
           count(*) FILTER (WHERE notified_at - mql_at > :slow * interval '1 second') AS over
    FROM handoffs WHERE notified_at IS NOT NULL AND notified_at >= :since
    """
)


class FlowRecorder:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def done(self, flow: str, key: str, lead_id: str, started_at: datetime | None) -> None:
        if started_at is None:
            return
        async with self._sessions() as session, session.begin():
            await session.execute(
                _RECORD,
                {
                    "key": f"{flow}:{key}",
                    "flow": flow,
                    "lead": lead_id,
                    "started": started_at,
                    "done": datetime.now(UTC),
                },
            )

    async def marked_done(self, mark: FlowMark | None, lead_id: str | None) -> None:
        """A write that carried a flow mark completed: timed from its event's arrival."""
        if mark is None or not lead_id:
            return
        await self.done(mark.flow, mark.event_id, lead_id, await self.event_received(mark.event_id))

    async def event_received(self, event_id: str | None) -> datetime | None:
        if not event_id:
            return None
        async with self._sessions() as session:
            value = (await session.execute(_EVENT_TIME, {"id": event_id})).scalar()
        return value if isinstance(value, datetime) else None


async def flow_report(sessions: SessionFactory, window: timedelta) -> list[dict[str, Any]]:
    """Per flow: count, p50/p90/p99 seconds, how many exceeded the seed's target, whether p99 meets it."""
    since = datetime.now(UTC) - window
    rows = []
    async with sessions() as session:
        for flow, target in TARGETS.items():
            params = {"flow": flow, "since": since, "slow": target.total_seconds()}
            query = _SALES_ALERTS if flow == "score_to_sales_alert" else _REPORT
            row = (await session.execute(query, params)).one_or_none()
            n = int(row.n) if row is not None and row.n else 0
            rows.append(
                {
                    "flow": flow,
                    "target_seconds": target.total_seconds(),
                    "count": n,
                    "p50_seconds": round(float(row.p50), 3) if n and row is not None else None,
                    "p90_seconds": round(float(row.p90), 3) if n and row is not None else None,
                    "p99_seconds": round(float(row.p99), 3) if n and row is not None else None,
                    "over_target": int(row.over) if n and row is not None else 0,
                    "meets_target": (float(row.p99) <= target.total_seconds())
                    if n and row is not None
                    else None,
                }
            )
    return rows
