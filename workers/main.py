"""The worker process: builds the platform clients and the store, then polls its task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from temporalio.worker import Worker

from domain.ledger import WriteLedger
from domain.ratelimits import Throttle
from runtime.heartbeat import keep_alive_options
from runtime.pollers import ensure_pollers
from runtime.schedules import ensure_schedules
from runtime.settings import Settings
from runtime.telemetry import setup_tracing
from runtime.temporal import connect, metrics_runtime
from store.db import create_engine, session_factory
from store.health import ConnectorStatsRecorder
from store.ratelimit import PostgresThrottle
from store.repository import LeadStore
from store.writes import PostgresWriteLedger
from workers.registry import WORKFLOWS, Dependencies, all_activities

log = logging.getLogger("journeys.worker")


def build_activities(
    settings: Settings,
    http: httpx.AsyncClient,
    store: LeadStore,
    *,
    throttle: Throttle | None = None,
    stats: ConnectorStatsRecorder | None = None,
    ledger: WriteLedger | None = None,
) -> list[Callable[..., Any]]:
    """Every registered journey's activities, with their clients pointed where the settings say."""
    # Each call to a platform is a client span in the activity's trace.
    HTTPXClientInstrumentor().instrument_client(http)
    return all_activities(
        Dependencies(settings=settings, http=http, store=store, throttle=throttle, stats=stats, ledger=ledger)
    )


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.effective_database_url)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)
        store = LeadStore(sessions)
        throttle = PostgresThrottle(
            sessions, settings.effective_rate_limits, max_wait=settings.rate_limit_max_wait_seconds
        )
        stats = ConnectorStatsRecorder(sessions)
        stats_stop = asyncio.Event()
        stats_task = asyncio.create_task(stats.run(stats_stop))

        async def stop_stats() -> None:
            stats_stop.set()
            await stats_task

        stack.push_async_callback(stop_stats)
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                timeout=httpx.Timeout(20.0, connect=5.0), limits=httpx.Limits(max_connections=100)
            )
        )
        runtime = (
            metrics_runtime(settings.worker_metrics_port, settings.worker_metrics_host)
            if settings.worker_metrics_port
            else None
        )
        client = await connect(settings, runtime=runtime)
        try:
            await ensure_schedules(client, settings.temporal_task_queue)
        except Exception:
            log.warning("schedules not set up; journeys run, nightly reports wait", exc_info=True)
        try:
            await ensure_pollers(client, settings)
        except Exception:
            log.warning("engagement pollers not started; the next worker start tries again", exc_info=True)
        worker = Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=WORKFLOWS,
            activities=build_activities(
                settings, http, store, throttle=throttle, stats=stats, ledger=PostgresWriteLedger(sessions)
            ),
            graceful_shutdown_timeout=timedelta(seconds=5),
            **keep_alive_options(),
        )
        log.info(
            "worker polling task queue %r on %s", settings.temporal_task_queue, settings.temporal_address
        )
        async with worker:
            await stop.wait()
        log.info("worker stopped")


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    stop = asyncio.Event()

    provider = setup_tracing("journeys-worker", settings)

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop=stop)

    asyncio.run(runner())
    if provider is not None:
        provider.shutdown()
