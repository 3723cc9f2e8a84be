"""Google Calendar API v3: meeting invites as events on a calendar (`GoogleCalendarClient`).

Auth: an OAuth 2.0 access token as `Authorization: Bearer`, scope
`https://www.googleapis.com/auth/calendar.events`. Either a ready access token is given (the deployment
renews it), or a refresh token with its OAuth client id and secret: the client then asks
`POST https://oauth2.googleapis.com/token` (form body, `grant_type=refresh_token`) for an access token,
keeps it until a minute before `expires_in` runs out, and after a 401 refreshes once and repeats the call.
Token errors come back as `{"error": "invalid_grant", "error_description": ...}` and are permanent.

Endpoints (default base URL https://www.googleapis.com):
  `POST /calendar/v3/calendars/{calendarId}/events?sendUpdates=all` (events.insert: attendees get the
  invitation email), and `GET /calendar/v3/calendars/{calendarId}/events/{eventId}` (events.get).

Errors: `{"error": {"code", "message", "status", "errors": [{"domain", "reason", "message"}]}}`.
  429, and 403 with reason `rateLimitExceeded` or `userRateLimitExceeded`, are rate limits: Google asks
  for exponential backoff and seldom sends `Retry-After`, so without one the delay is
  `RATE_LIMIT_BACKOFF` seconds. 403 `quotaExceeded` ("Calendar usage limits exceeded", Google's
  anti-spam limits, mostly on invitations to external guests) and `dailyLimitExceeded` replenish over
  hours: rate limited with `USAGE_LIMIT_BACKOFF`. 401 `authError` is permanent (after the one refresh),
  as are 400, other 403s, 404 and 410; 5xx (`backendError`) and timeouts are transient.
  Quotas are per project and per user per minute (Cloud console), throttle key `google`; the token
  endpoint has its own key, `google:oauth`.

Idempotency: a client-chosen event id. The id is the base32hex form (lowercase `a-v`, `0-9`, 52
  characters; Google takes 5 to 1024) of the SHA-256 of the idempotency key, so every attempt of one key
  inserts the same id; the key also rides in `extendedProperties.private.journeysIdempotencyKey`. When an
  earlier attempt wrote the event, Google answers 409 `duplicate`; the event is then read back, checked to
  carry our key, and answered as `created=False` with that id; no second invitation goes out.
  Honest limits: Google warns that id collisions may not be caught at insert time in its distributed
  store, so a 409 whose event cannot be read yet is reported as transient (retried), not as a success;
  an event someone deleted keeps its id, so a replay answers `created=False` with a cancelled event
  rather than inviting again; the id is unique per calendar only, so the same key on two calendars makes
  two events.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from domain.ratelimits import Throttle
from platforms.base import CallObserver, PlatformClient
from platforms.errors import PermanentPlatformError, PlatformError, RateLimitedError, TransientPlatformError
from platforms.ports import CalendarEvent, WriteResult

KEY_PROPERTY = "journeysIdempotencyKey"
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
USAGE_LIMIT_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_LIMIT_BACKOFF = 5.0
USAGE_LIMIT_BACKOFF = 3600.0
# Refresh this long before the token's stated expiry, so no call carries a token about to lapse.
EXPIRY_MARGIN = 60.0

# Set while the token endpoint is called, so that call carries no stale bearer token.
_without_bearer: ContextVar[bool] = ContextVar("google_without_bearer", default=False)


def event_id_for(idempotency_key: str) -> str:
    """The event id every attempt of this key uses: base32hex (a-v, 0-9) of its SHA-256."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def _google_error(response: httpx.Response) -> tuple[str | None, str]:
    """(first reason, message) of a Google error body; the OAuth endpoint's flat shape too."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text.strip()[:300]
    if not isinstance(body, dict):
        return None, response.text[:300]
    error = body.get("error")
    if isinstance(error, dict):
        errors = error.get("errors") or []
        reason = errors[0].get("reason") if errors and isinstance(errors[0], dict) else None
        return (str(reason) if reason else error.get("status")), str(error.get("message") or "")
    if isinstance(error, str):
        return error, str(body.get("error_description") or error)
    return None, response.text[:300]


class GoogleCalendarClient(PlatformClient):
    """CalendarPort over Google Calendar API v3."""

    provider = "google"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str = "https://www.googleapis.com",
        access_token: str | None = None,
        refresh_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str = "https://oauth2.googleapis.com/token",
        send_updates: str = "all",
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        self._can_refresh = bool(refresh_token and client_id and client_secret)
        if not access_token and not self._can_refresh:
            raise ValueError(
                "Google Calendar needs an access token, or a refresh token with client id and secret"
            )
        self._access_token = access_token
        # A given token's lifetime is unknown: it is used until Google answers 401.
        self._expires_at = float("inf") if access_token else 0.0
        self._refresh_token = refresh_token
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_url = token_url
        self._send_updates = send_updates
        self._token_lock = asyncio.Lock()

    def _auth_headers(self) -> dict[str, str]:
        if _without_bearer.get() or not self._access_token:
            return {}
        return {"Authorization": f"Bearer {self._access_token}"}

    def _throttle_key(self, operation: str) -> str:
        return "google:oauth" if operation == "oauth.token" else self.provider

    def _error_message(self, response: httpx.Response) -> str:
        reason, message = _google_error(response)
        return (
            f"{response.status_code} {reason}: {message}" if reason else f"{response.status_code} {message}"
        )

    def _error(self, response: httpx.Response) -> PlatformError:
        reason, _ = _google_error(response)
        status = response.status_code
        if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS | USAGE_LIMIT_REASONS):
            told = self._retry_after(response)
            default = USAGE_LIMIT_BACKOFF if reason in USAGE_LIMIT_REASONS else RATE_LIMIT_BACKOFF
            return RateLimitedError(
                self.provider,
                self._error_message(response)[:500],
                retry_after=told if told is not None else default,
                status=status,
            )
        return super()._error(response)

    # --- tokens ---------------------------------------------------------------------------------

    async def _ensure_token(self) -> None:
        if self._access_token and time.monotonic() < self._expires_at:
            return
        await self._refresh(self._access_token)

    async def _refresh(self, stale: str | None) -> None:
        """A new access token, unless another task already replaced `stale` meanwhile."""
        async with self._token_lock:
            if self._access_token != stale and self._access_token and time.monotonic() < self._expires_at:
                return
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self._refresh_token or "",
                "client_id": self._client_id or "",
                "client_secret": self._client_secret or "",
            }
            flag = _without_bearer.set(True)
            try:
                response = await self._call(
                    "oauth.token",
                    "POST",
                    self._token_url,
                    content=urlencode(form).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            finally:
                _without_bearer.reset(flag)
            body = response.json()
            self._access_token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 3600))
            self._expires_at = time.monotonic() + max(0.0, lifetime - EXPIRY_MARGIN)

    async def _authorized(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        accept: Callable[[httpx.Response], bool] | None = None,
    ) -> httpx.Response:
        """One Calendar call with a current token; after a 401, one refresh and one more try."""
        await self._ensure_token()
        used = self._access_token
        options: dict[str, Any] = {"json": json, "params": params}
        if accept is not None:
            options["accept"] = accept
        try:
            return await self._call(operation, method, path, **options)
        except PermanentPlatformError as exc:
            if exc.status != 401 or not self._can_refresh:
                raise
        await self._refresh(used)
        return await self._call(operation, method, path, **options)

    # --- the port -------------------------------------------------------------------------------

    async def create_event(self, event: CalendarEvent, *, idempotency_key: str) -> WriteResult:
        event_id = event_id_for(idempotency_key)
        events_path = f"/calendar/v3/calendars/{quote(event.calendar_id, safe='')}/events"
        body: dict[str, Any] = {
            "id": event_id,
            "summary": event.summary,
            "description": event.description,
            "start": {"dateTime": event.start.isoformat(), "timeZone": event.time_zone},
            "end": {"dateTime": event.end.isoformat(), "timeZone": event.time_zone},
            "attendees": [{"email": email} for email in event.attendees],
            "extendedProperties": {"private": {KEY_PROPERTY: idempotency_key}},
        }
        response = await self._authorized(
            "events.insert",
            "POST",
            events_path,
            json=body,
            params={"sendUpdates": self._send_updates},
            accept=lambda r: r.status_code < 300 or _is_duplicate(r),
        )
        if response.status_code < 300:
            return WriteResult(provider=self.provider, object_type="event", id=str(response.json()["id"]))
        earlier = await self._authorized(
            "events.get",
            "GET",
            f"{events_path}/{event_id}",
            accept=lambda r: r.status_code < 300 or r.status_code == 404,
        )
        if earlier.status_code == 404:
            raise TransientPlatformError(
                self.provider, f"409 duplicate for event {event_id}, but it cannot be read yet", status=409
            )
        private = (earlier.json().get("extendedProperties") or {}).get("private") or {}
        if private.get(KEY_PROPERTY) != idempotency_key:
            raise PermanentPlatformError(
                self.provider, f"event id {event_id} is taken by an event of another key", status=409
            )
        return WriteResult(provider=self.provider, object_type="event", id=event_id, created=False)


def _is_duplicate(response: httpx.Response) -> bool:
    return response.status_code == 409 and _google_error(response)[0] == "duplicate"
