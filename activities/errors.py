"""Platform failures as Temporal sees them: permanent ones stop retrying, 429 waits as told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from platforms.errors import PermanentPlatformError, PlatformError, RateLimitedError


@asynccontextmanager
async def platform_errors() -> AsyncIterator[None]:
    try:
        yield
    except RateLimitedError as exc:
        raise ApplicationError(
            str(exc),
            {"provider": exc.provider, "status": exc.status},
            type="RateLimited",
            next_retry_delay=timedelta(seconds=max(exc.retry_after, 0.1)),
        ) from exc
    except PermanentPlatformError as exc:
        raise ApplicationError(
            str(exc),
            {"provider": exc.provider, "status": exc.status},
            type="PlatformRejected",
            non_retryable=True,
        ) from exc
    except PlatformError as exc:
        raise ApplicationError(
            str(exc), {"provider": exc.provider, "status": exc.status}, type="PlatformUnavailable"
        ) from exc
