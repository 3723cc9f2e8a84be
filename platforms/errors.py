"""How platform answers are classified, so activities know what to retry and when."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import httpx


class PlatformError(Exception):
    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status


class PermanentPlatformError(PlatformError):
    """Validation, auth or not-found: retrying the same request cannot succeed."""


class NotFoundError(PermanentPlatformError):
    """The thing asked for does not exist (deleted, or never there): the one permanent failure
    that is about the thing and not about us. Any other permanent failure (a retired API version,
    a revoked token, a missing permission) is ours to fix, and what waits on the answer must not
    be taken as handled."""


class TransientPlatformError(PlatformError):
    """5xx, timeouts, connection failures: worth retrying with backoff."""


class RateLimitedError(TransientPlatformError):
    def __init__(self, provider: str, message: str, *, retry_after: float, status: int = 429) -> None:
        super().__init__(provider, message, status=status)
        self.retry_after = retry_after


class WriteInFlightError(RateLimitedError):
    """A retried write whose earlier attempt may still be carried out by the platform: retried
    once that time has passed (`retry_after`), when looking for the earlier one can be trusted."""

    def __init__(self, provider: str, message: str, *, retry_after: float) -> None:
        super().__init__(provider, message, retry_after=retry_after, status=409)


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """`Retry-After` is either delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify(provider: str, response: httpx.Response, message: str) -> PlatformError:
    status = response.status_code
    if status == 429:
        return RateLimitedError(
            provider, message, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500 or status == 408:
        return TransientPlatformError(provider, message, status=status)
    if status in (404, 410):
        return NotFoundError(provider, message, status=status)
    return PermanentPlatformError(provider, message, status=status)


async def send(provider: str, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Sends one request; any failure comes back as a classified PlatformError."""
    try:
        response = await client.send(request)
    except httpx.TimeoutException as exc:
        raise TransientPlatformError(provider, f"timeout: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise TransientPlatformError(provider, f"transport error: {exc!r}") from exc
    return response
