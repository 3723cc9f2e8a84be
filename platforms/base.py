"""What every platform client shares: throttling, classified errors and per-call observation.

A client subclasses `PlatformClient`, sets `provider`, builds its auth headers and, where the
platform words its errors its own way, overrides `_error_message` and `_retry_after`. Every
request goes through `_call`, which takes a token from the shared throttle first (so all workers
together stay under the platform's limit; a slot too far out becomes `RateLimitedError`), turns
timeouts and error answers into the classified errors of `platforms.errors`, and reports the
call's outcome and latency to the observer behind integration health.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

import httpx

from domain.ledger import LedgerEntry
from domain.ratelimits import OverRateLimit, Throttle
from platforms.errors import (
    PermanentPlatformError,
    PlatformError,
    RateLimitedError,
    classify,
    parse_retry_after,
    send,
)


class MemoryLedger:
    """A `domain.ledger.WriteLedger` in memory: for tests and single-process tools."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self._sent_at: dict[str, float] = {}
        self._clock = clock

    async def recall(self, key: str) -> LedgerEntry | None:
        entry = self.entries.get(key)
        if entry is None or entry.status == "done":
            return entry
        return entry.model_copy(update={"pending_for": self._clock() - self._sent_at[key]})

    async def pending(self, key: str, provider: str) -> None:
        if key not in self.entries:
            self.entries[key] = LedgerEntry(status="pending")
            self._sent_at[key] = self._clock()

    async def done(self, key: str, external_id: str) -> None:
        self.entries[key] = LedgerEntry(status="done", external_id=external_id)


class CallObserver(Protocol):
    """Told about every platform call: `outcome` is ok, rejected, rate_limited or unavailable."""

    def observe(self, provider: str, operation: str, outcome: str, seconds: float) -> None: ...


def _success(response: httpx.Response) -> bool:
    return response.status_code < 300


class PlatformClient:
    provider: ClassVar[str]

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._throttle = throttle
        self._observer = observer

    def _auth_headers(self) -> dict[str, str]:
        return {}

    def _throttle_key(self, operation: str) -> str:
        return self.provider

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        accept: Callable[[httpx.Response], bool] = _success,
        extensions: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One request to `base_url + path` (or to `path` when it is absolute).

        `accept` says which answers are results rather than errors: a client that treats
        a 409 as "already written" passes a predicate that lets 409 through.
        """
        if self._throttle is not None:
            try:
                await self._throttle.acquire(self._throttle_key(operation))
            except OverRateLimit as exc:
                raise RateLimitedError(self.provider, str(exc), retry_after=exc.retry_after) from exc
        url = path if path.startswith(("http://", "https://")) else f"{self._base_url}{path}"
        request = self._http.build_request(
            method,
            url,
            json=json,
            params=params,
            content=content,
            headers={**self._auth_headers(), **(headers or {})},
            extensions=extensions,
        )
        started = time.perf_counter()
        outcome = "ok"
        try:
            response = await send(self.provider, self._http, request)
            if not accept(response):
                raise self._error(response)
            return response
        except RateLimitedError:
            outcome = "rate_limited"
            raise
        except PermanentPlatformError:
            outcome = "rejected"
            raise
        except PlatformError:
            outcome = "unavailable"
            raise
        finally:
            if self._observer is not None:
                self._observer.observe(self.provider, operation, outcome, time.perf_counter() - started)

    def _error_message(self, response: httpx.Response) -> str:
        return f"{response.status_code} {response.text[:300]}"

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds to wait after a 429, when the platform says so in its own way."""
        value = response.headers.get("Retry-After")
        return parse_retry_after(value) if value else None

    def _error(self, response: httpx.Response) -> PlatformError:
        error = classify(self.provider, response, self._error_message(response)[:500])
        if isinstance(error, RateLimitedError):
            told = self._retry_after(response)
            error.retry_after = told if told is not None else 1.0
        return error
