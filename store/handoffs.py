"""The hand-off log: when each lead became an MQL, was assigned, its rep told, and the lead
accepted; the data behind `GET /v1/reports/sla`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from domain.handoff import Milestone
from store.db import SessionFactory

# The first time wins for each milestone: a retried record, or a later escalation, keeps it.
_COLUMNS = {"mql": "mql_at", "assigned": "assigned_at", "notified": "notified_at", "accepted": "accepted_at"}

_UPSERT = """
INSERT INTO handoffs (handoff_id, lead_id, {column}, rep_id, status, escalations, escalated_at, updated_at)
VALUES (:handoff_id, :lead_id, :at, :rep_id, :status, 0, '{{}}', now())
ON CONFLICT (handoff_id) DO UPDATE SET
    {column} = coalesce(handoffs.{column}, excluded.{column}),
    rep_id = coalesce(excluded.rep_id, handoffs.rep_id),
    status = CASE WHEN handoffs.status IN ('accepted', 'closed') THEN handoffs.status
                  ELSE excluded.status END,
    updated_at = now()
"""

_UPSERT_STATUS = """
INSERT INTO handoffs (handoff_id, lead_id, rep_id, status, escalations, escalated_at, updated_at)
VALUES (:handoff_id, :lead_id, :rep_id, :status, 0, '{}', now())
ON CONFLICT (handoff_id) DO UPDATE SET
    status = CASE WHEN handoffs.status IN ('accepted', 'closed') THEN handoffs.status
                  ELSE excluded.status END,
    updated_at = now()
"""

# An escalation is kept by its time (the workflow's, the same in every retry of the record), so a
# record retried after a lost answer counts it once.
_ESCALATED = text(
    """
INSERT INTO handoffs (handoff_id, lead_id, rep_id, status, escalations, escalated_at, updated_at)
VALUES (:handoff_id, :lead_id, :rep_id, 'open', 1, ARRAY[CAST(:at AS timestamptz)], now())
ON CONFLICT (handoff_id) DO UPDATE SET
    rep_id = coalesce(excluded.rep_id, handoffs.rep_id),
    escalated_at = CASE WHEN CAST(:at AS timestamptz) = ANY(handoffs.escalated_at) THEN handoffs.escalated_at
                        ELSE array_append(handoffs.escalated_at, CAST(:at AS timestamptz)) END,
    escalations = CASE WHEN CAST(:at AS timestamptz) = ANY(handoffs.escalated_at) THEN handoffs.escalations
                       ELSE handoffs.escalations + 1 END,
    updated_at = now()
"""
)

_REPORT = text(
    """
    SELECT
        count(*) AS handoffs,
        count(accepted_at) AS accepted,
        percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP
            (ORDER BY extract(epoch FROM assigned_at - mql_at)) AS assigned,
        percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP
            (ORDER BY extract(epoch FROM notified_at - mql_at)) AS notified,
        percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP
            (ORDER BY extract(epoch FROM accepted_at - mql_at)) AS accepted_s,
        count(*) FILTER (WHERE coalesce(accepted_at, now()) - mql_at > make_interval(secs => :sla)
                         AND status <> 'closed') AS breaches,
        sum(escalations) AS escalations
    FROM handoffs
    WHERE mql_at >= :since
    """
)


class HandoffLog:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def record(self, milestone: Milestone) -> None:
        values: dict[str, Any] = {
            "handoff_id": milestone.handoff_id,
            "lead_id": milestone.lead_id,
            "at": milestone.at,
            "rep_id": milestone.rep_id,
        }
        if milestone.kind == "escalated":
            statement = _ESCALATED
        else:
            # A closing has no time column of its own: its time is the row's last update.
            column = _COLUMNS.get(milestone.kind)
            if column is None:
                statement = text(_UPSERT_STATUS)
                del values["at"]
            else:
                statement = text(_UPSERT.format(column=column))
            values["status"] = {"accepted": "accepted", "closed": "closed"}.get(milestone.kind, "open")
        async with self._sessions() as session, session.begin():
            await session.execute(statement, values)

    async def report(self, *, window: timedelta, sla: timedelta) -> dict[str, Any]:
        since = datetime.now(UTC) - window
        async with self._sessions() as session:
            row = (await session.execute(_REPORT, {"since": since, "sla": sla.total_seconds()})).one()

        def spread(values: list[float] | None) -> dict[str, float | None]:
            if not values:
                return {"p50": None, "p90": None, "p99": None}
            return {
                name: (None if v is None else round(float(v), 3))
                for name, v in zip(("p50", "p90", "p99"), values, strict=True)
            }

        return {
            "window_seconds": int(window.total_seconds()),
            "sla_seconds": int(sla.total_seconds()),
            "handoffs": int(row.handoffs),
            "accepted": int(row.accepted),
            "breaches": int(row.breaches or 0),
            "escalations": int(row.escalations or 0),
            "seconds_from_mql": {
                "assigned": spread(row.assigned),
                "notified": spread(row.notified),
                "accepted": spread(row.accepted_s),
            },
        }
