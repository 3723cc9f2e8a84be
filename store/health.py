"""Integration health: every platform call and every connector activity, counted per minute.

`ConnectorStatsRecorder` is the `CallObserver` the worker hands to each platform client. It
counts in memory and flushes one upsert per (provider, operation, kind, minute) every few
seconds, so observing costs no round trip on the call's path; the same observation goes to
the worker's Prometheus endpoint through the activity's metric meter. `integration_report`
reads the table back for `GET /v1/reports/integrations`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from temporalio import activity

from store.db import SessionFactory
from store.models import ConnectorStat

log = logging.getLogger("journeys.connectors")

OUTCOMES = ("ok", "rejected", "rate_limited", "unavailable")
# The seed's KPI for data sync.
SYNC_SUCCESS_TARGET = 0.99

_UPSERT = text(
    """
    INSERT INTO connector_stats AS s
        (provider, operation, kind, bucket, ok, rejected, rate_limited, unavailable, total_ms, max_ms)
    VALUES (:provider, :operation, :kind, :bucket, :ok, :rejected, :rate_limited, :unavailable,
            :total_ms, :max_ms)
    ON CONFLICT (provider, operation, kind, bucket) DO UPDATE SET
        ok = s.ok + excluded.ok,
        rejected = s.rejected + excluded.rejected,
        rate_limited = s.rate_limited + excluded.rate_limited,
        unavailable = s.unavailable + excluded.unavailable,
        total_ms = s.total_ms + excluded.total_ms,
        max_ms = greatest(s.max_ms, excluded.max_ms)
    """
)


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    total_ms: float = 0.0
    max_ms: float = 0.0


def _metrics(provider: str, operation: str, kind: str, outcome: str, ms: float) -> None:
    if not activity.in_activity():
        return
    meter = activity.metric_meter()
    attributes = {"provider": provider, "operation": operation, "outcome": outcome}
    if kind == "call":
        meter.create_counter("journeys_connector_calls", "Platform HTTP calls by outcome").add(1, attributes)
        meter.create_histogram("journeys_connector_call_latency", "Platform HTTP call latency", "ms").record(
            int(ms), {"provider": provider, "operation": operation}
        )
    else:
        meter.create_counter("journeys_connector_syncs", "Connector activities by final outcome").add(
            1, attributes
        )


class ConnectorStatsRecorder:
    def __init__(self, sessions: SessionFactory | None, *, flush_seconds: float = 5.0) -> None:
        self._sessions = sessions
        self._flush_seconds = flush_seconds
        self._pending: dict[tuple[str, str, str, datetime], _Tally] = defaultdict(_Tally)

    def observe(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        self.record(provider, operation, "call", outcome, seconds * 1000)

    def record(self, provider: str, operation: str, kind: str, outcome: str, ms: float) -> None:
        bucket = datetime.now(UTC).replace(second=0, microsecond=0)
        tally = self._pending[(provider, operation, kind, bucket)]
        tally.counts[outcome] = tally.counts.get(outcome, 0) + 1
        tally.total_ms += ms
        tally.max_ms = max(tally.max_ms, ms)
        _metrics(provider, operation, kind, outcome, ms)

    async def flush(self) -> None:
        if not self._pending or self._sessions is None:
            return
        pending, self._pending = self._pending, defaultdict(_Tally)
        rows = [
            {
                "provider": provider,
                "operation": operation,
                "kind": kind,
                "bucket": bucket,
                **{o: tally.counts.get(o, 0) for o in OUTCOMES},
                "total_ms": tally.total_ms,
                "max_ms": tally.max_ms,
            }
            for (provider, operation, kind, bucket), tally in pending.items()
        ]
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(_UPSERT, rows)
        except Exception:
            # Statistics are worth less than the calls they describe: keep them for the next flush.
            log.warning("connector stats not flushed; kept for the next try", exc_info=True)
            for key, tally in pending.items():
                merged = self._pending[key]
                for outcome, n in tally.counts.items():
                    merged.counts[outcome] = merged.counts.get(outcome, 0) + n
                merged.total_ms += tally.total_ms
                merged.max_ms = max(merged.max_ms, tally.max_ms)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._flush_seconds)
            except TimeoutError:
                pass
            await self.flush()


def _rate(ok: int, failed: int) -> float | None:
    return None if ok + failed == 0 else round(ok / (ok + failed), 5)


async def integration_report(sessions: SessionFactory, *, window: timedelta) -> dict[str, Any]:
    """Per provider: HTTP calls (every attempt) and syncs (connector activities, final outcome).

    The KPI is judged on syncs: a call that hit a 429 and succeeded on retry is a healthy sync.
    """
    since = datetime.now(UTC) - window
    columns = [func.sum(getattr(ConnectorStat, o)).label(o) for o in OUTCOMES]
    query = (
        select(
            ConnectorStat.provider,
            ConnectorStat.operation,
            ConnectorStat.kind,
            *columns,
            func.sum(ConnectorStat.total_ms).label("total_ms"),
            func.max(ConnectorStat.max_ms).label("max_ms"),
        )
        .where(ConnectorStat.bucket >= since.replace(second=0, microsecond=0))
        .group_by(ConnectorStat.provider, ConnectorStat.operation, ConnectorStat.kind)
        .order_by(ConnectorStat.provider, ConnectorStat.operation)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    providers: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = providers.setdefault(
            row.provider,
            {
                "provider": row.provider,
                "calls": dict.fromkeys(OUTCOMES, 0),
                "syncs": dict.fromkeys(OUTCOMES, 0),
                "call_ms_total": 0.0,
                "call_ms_max": 0.0,
                "operations": [],
            },
        )
        counts = {o: int(getattr(row, o) or 0) for o in OUTCOMES}
        target = entry["calls"] if row.kind == "call" else entry["syncs"]
        for outcome, n in counts.items():
            target[outcome] += n
        total = sum(counts.values())
        if row.kind == "call":
            entry["call_ms_total"] += float(row.total_ms or 0)
            entry["call_ms_max"] = max(entry["call_ms_max"], float(row.max_ms or 0))
        entry["operations"].append(
            {
                "operation": row.operation,
                "kind": row.kind,
                **counts,
                "total": total,
                "success_rate": _rate(
                    counts["ok"], counts["rejected"] if row.kind == "sync" else total - counts["ok"]
                ),
                "mean_ms": round(float(row.total_ms or 0) / total, 1) if total else None,
                "max_ms": round(float(row.max_ms or 0), 1),
            }
        )
    result = []
    for entry in providers.values():
        calls, syncs = entry["calls"], entry["syncs"]
        call_total = sum(calls.values())
        sync_rate = _rate(syncs["ok"], syncs["rejected"])
        sync_total = sum(syncs.values())
        result.append(
            {
                "provider": entry["provider"],
                "calls": {**calls, "total": call_total},
                "call_success_rate": _rate(calls["ok"], call_total - calls["ok"]),
                "call_latency_ms": {
                    "mean": round(entry["call_ms_total"] / call_total, 1) if call_total else None,
                    "max": round(entry["call_ms_max"], 1),
                },
                "syncs": {**syncs, "total": sync_total},
                "sync_success_rate": sync_rate,
                "meets_target": None if sync_rate is None else sync_rate >= SYNC_SUCCESS_TARGET,
                "operations": entry["operations"],
            }
        )
    return {
        "window_seconds": int(window.total_seconds()),
        "since": since.isoformat(),
        "target_sync_success_rate": SYNC_SUCCESS_TARGET,
        "providers": result,
    }


_ROLLUP = text(
    """
    INSERT INTO integration_daily
        (day, provider, operation, kind, ok, rejected, rate_limited, unavailable, total_ms, max_ms)
    SELECT CAST(:day AS date), provider, operation, kind, sum(ok), sum(rejected), sum(rate_limited),
           sum(unavailable), sum(total_ms), max(max_ms)
    FROM connector_stats
    WHERE bucket >= CAST(:day AS date) AND bucket < CAST(:day AS date) + 1
    GROUP BY provider, operation, kind
    ON CONFLICT (day, provider, operation, kind) DO UPDATE SET
        ok = excluded.ok, rejected = excluded.rejected, rate_limited = excluded.rate_limited,
        unavailable = excluded.unavailable, total_ms = excluded.total_ms, max_ms = excluded.max_ms
    """
)


async def roll_up_day(sessions: SessionFactory, day: date) -> int:
    """The day's per-minute connector stats summed into `integration_daily` (recomputed, so a rerun
    gives the same rows). Returns how many (provider, operation, kind) rows the day has."""
    async with sessions() as session, session.begin():
        result = await session.execute(_ROLLUP, {"day": day})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def daily_health(sessions: SessionFactory, start: date, end: date) -> list[dict[str, Any]]:
    """Per day and provider: syncs and their success rate, calls and their mean latency."""
    query = text(
        """
        SELECT day, provider, kind, sum(ok) ok, sum(rejected) rejected, sum(rate_limited) rate_limited,
               sum(unavailable) unavailable, sum(total_ms) total_ms, max(max_ms) max_ms
        FROM integration_daily WHERE day >= :start AND day < :end
        GROUP BY day, provider, kind ORDER BY day, provider, kind
        """
    )
    async with sessions() as session:
        rows = (await session.execute(query, {"start": start, "end": end})).all()
    days: dict[tuple[date, str], dict[str, Any]] = {}
    for row in rows:
        entry = days.setdefault(
            (row.day, row.provider), {"day": row.day.isoformat(), "provider": row.provider}
        )
        total = int(row.ok + row.rejected + row.rate_limited + row.unavailable)
        entry[f"{row.kind}s"] = total
        entry[f"{row.kind}_success_rate"] = round(int(row.ok) / total, 4) if total else None
        if row.kind == "call":
            entry["call_ms_mean"] = round(float(row.total_ms) / total, 1) if total else None
            entry["call_ms_max"] = float(row.max_ms)
    return list(days.values())
