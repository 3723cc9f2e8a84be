"""Platform failures as Temporal sees them: permanent ones stop retrying, 429 waits as told."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.errors import NOT_FOUND, PLATFORM_REJECTED, PLATFORM_UNAVAILABLE, RATE_LIMITED
from platforms.errors import PermanentPlatformError, PlatformError, RateLimitedError
from store.health import ConnectorStatsRecorder


def _count(exc: PlatformError, kind: str) -> None:
    """`journeys_connector_errors` on the worker's metrics endpoint, by provider and kind."""
    if not activity.in_activity():
        return
    activity.metric_meter().create_counter(
        "journeys_connector_errors", "Platform calls that failed, by provider and kind"
    ).add(1, {"provider": exc.provider, "kind": kind})


@asynccontextmanager
async def platform_errors() -> AsyncIterator[None]:
    try:
        yield
    except RateLimitedError as exc:
        _count(exc, "rate_limited")
        raise ApplicationError(
            str(exc),
            {"provider": exc.provider, "status": exc.status},
            type=RATE_LIMITED,
            next_retry_delay=timedelta(seconds=max(exc.retry_after, 0.1)),
        ) from exc
    except PermanentPlatformError as exc:
        _count(exc, "rejected")
        raise ApplicationError(
            str(exc),
            {"provider": exc.provider, "status": exc.status},
            type=PLATFORM_REJECTED,
            non_retryable=True,
        ) from exc
    except PlatformError as exc:
        _count(exc, "unavailable")
        raise ApplicationError(
            str(exc), {"provider": exc.provider, "status": exc.status}, type=PLATFORM_UNAVAILABLE
        ) from exc


_OUTCOME_OF_TYPE = {RATE_LIMITED: "rate_limited", PLATFORM_REJECTED: "rejected", NOT_FOUND: "rejected"}


@asynccontextmanager
async def connector_step(
    stats: ConnectorStatsRecorder | None, provider: str, operation: str
) -> AsyncIterator[None]:
    """One connector activity attempt: typed errors, and its outcome counted for integration health."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        async with platform_errors():
            yield
    except ApplicationError as exc:
        outcome = _OUTCOME_OF_TYPE.get(exc.type or "", "unavailable")
        raise
    except BaseException:
        outcome = "unavailable"
        raise
    finally:
        if stats is not None:
            stats.record(provider, operation, "sync", outcome, (time.perf_counter() - started) * 1000)
