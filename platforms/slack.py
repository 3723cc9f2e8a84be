"""Slack: channel notifications through the Web API (`SlackClient`) or an incoming webhook
(`SlackWebhookClient`).

Web API (`SlackClient`)
  Auth: a bot token (`xoxb-...`) as `Authorization: Bearer`. Scopes: `chat:write` to post and
  `channels:history` (`groups:history` for private channels) for the read that keeps posts idempotent;
  the bot has to be a member of the channel.
  Endpoints: `POST {base}/api/chat.postMessage` with a JSON body (`channel`, `text`, `blocks`,
  `metadata`; `Content-Type: application/json; charset=utf-8`), and `GET {base}/api/conversations.history`
  (`channel`, `oldest`, `limit`, `include_all_metadata`, `cursor`), read page after page through
  `response_metadata.next_cursor`. Default base URL: https://slack.com.
  Errors: Slack answers nearly every failure with HTTP 200 and `{"ok": false, "error": "<code>"}` (plus
  `response_metadata.messages` for block errors, `needed`/`provided` for scope errors). Codes about auth,
  the channel or the payload (`invalid_auth`, `not_authed`, `channel_not_found`, `is_archived`,
  `invalid_blocks`, `missing_scope`, ...) are permanent; `internal_error`, `fatal_error`,
  `service_unavailable`, `request_timeout` and the enterprise-migration codes are transient; HTTP 5xx too.
  Rate limits: HTTP 429 with `Retry-After` in seconds (and `"error": "ratelimited"`), or the method's own
  `rate_limited` code, become `RateLimitedError`. chat.postMessage allows about one message per second
  per channel (short bursts tolerated) under a workspace-wide cap, so its throttle key is
  `slack:{channel}`. conversations.history is a Tier 3 method (about 50 calls a minute) for most apps,
  but Slack cut it to 1 call a minute and 15 messages a page for apps outside the Marketplace created
  after 2025-05-29 (and later for existing installs): its throttle key is `slack:conversations.history`,
  and such an app should be given `history_page_size=15`.
  Idempotency: Slack has no idempotency key, so it is kept by a read before the write. Every message
  carries message metadata, `{"event_type": "journeys_notification", "event_payload":
  {"idempotency_key": key}}`. Before posting, the channel's messages newer than `dedupe_window` are read
  newest first with `include_all_metadata=true`; a message carrying the same key is the earlier write,
  answered as `created=False` with its `ts`, and nothing is posted.
  Honest limits: a replay later than `dedupe_window` after the first post, or after someone deleted the
  message, posts again; two attempts of the same key running at the same moment can both miss each other
  (Temporal runs one attempt at a time, unless a timed-out attempt is still in flight); the read stops
  after `max_history_pages` pages; every post costs one history read; and the read needs a conversation
  ID (`C...`, `G...`, `D...`): with a `#name` Slack answers `channel_not_found`, reported as permanent.

Incoming webhook (`SlackWebhookClient`)
  Auth: the webhook URL itself (`https://hooks.slack.com/services/T.../B.../...`) is the secret; each URL
  posts to the one channel chosen when it was created. `POST` a JSON body (`text`, `blocks`); Slack
  answers `200 ok` as plain text, or a plain-text code: 400 `invalid_payload`/`no_text`/`invalid_blocks`,
  403 `action_prohibited`/`invalid_token`, 404 `no_service`/`channel_not_found`, 410
  `channel_is_archived`, 429 with `Retry-After`, 5xx `rollup_error`.
  Idempotency: none possible. A webhook can neither carry metadata nor be read back, and its answer names
  no message, so delivery is at least once: a replay after an answer that was never heard posts a second
  message. The result's id is derived from the idempotency key (stable across replays) and `created` is
  always True, because the client cannot know better.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import httpx

from domain.ledger import WriteLedger
from domain.ratelimits import Throttle
from platforms.base import CallObserver, PlatformClient
from platforms.errors import (
    PermanentPlatformError,
    PlatformError,
    RateLimitedError,
    TransientPlatformError,
    WriteInFlightError,
)
from platforms.ports import ChatMessage, WriteResult

EVENT_TYPE = "journeys_notification"

# Codes Slack documents as "try again": the server failed, possibly after part of the work was done.
TRANSIENT_CODES = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
        "org_login_required",
        "rollup_error",
    }
)
RATE_LIMIT_CODES = frozenset({"ratelimited", "rate_limited"})
# `rate_limited` on chat.postMessage means the app posted too much for a while; Slack gives no delay.
DEFAULT_POST_BACKOFF = 30.0

# The channel of the call being made, for `_throttle_key`; a context variable so concurrent posts
# from one client to different channels each get their own bucket.
_channel: ContextVar[str | None] = ContextVar("slack_channel", default=None)

JSON_UTF8 = {"Content-Type": "application/json; charset=utf-8"}


def _slack_code(response: httpx.Response) -> str | None:
    """The `error` of an `{"ok": false}` body, or the plain-text code of a webhook answer."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text if text and " " not in text and len(text) <= 80 and text != "ok" else None
    if isinstance(body, dict) and body.get("ok") is False:
        return str(body.get("error") or "unknown_error")
    return None


def _is_ok(response: httpx.Response) -> bool:
    if response.status_code >= 300:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("ok") is True


class _SlackErrors(PlatformClient):
    """How both Slack clients read an answer that failed."""

    provider = "slack"

    def _throttle_key(self, operation: str) -> str:
        channel = _channel.get()
        return f"slack:{channel}" if channel else "slack"

    def _error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return f"{response.status_code} {response.text.strip()[:300]}"
        if not isinstance(body, dict):
            return f"{response.status_code} {response.text[:300]}"
        parts = [str(body.get("error") or f"HTTP {response.status_code}")]
        details = (body.get("response_metadata") or {}).get("messages")
        if isinstance(details, list) and details:
            parts.append("; ".join(str(d) for d in details[:5]))
        if body.get("needed"):
            parts.append(f"needed: {body['needed']}, provided: {body.get('provided', '')}")
        return " ".join(parts)

    def _error(self, response: httpx.Response) -> PlatformError:
        code = _slack_code(response)
        message = self._error_message(response)[:500]
        status = response.status_code
        if status == 429 or code in RATE_LIMIT_CODES:
            told = self._retry_after(response)
            default = DEFAULT_POST_BACKOFF if code == "rate_limited" else 1.0
            return RateLimitedError(
                self.provider, message, retry_after=told if told is not None else default, status=status
            )
        if status >= 500 or status == 408 or code in TRANSIENT_CODES:
            return TransientPlatformError(self.provider, message, status=status)
        if code is not None:
            return PermanentPlatformError(self.provider, message, status=status)
        return super()._error(response)


class SlackClient(_SlackErrors):
    """ChatPort over the Web API with a bot token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str = "https://slack.com",
        token: str,
        dedupe_window: timedelta = timedelta(hours=24),
        history_page_size: int = 100,
        max_history_pages: int = 20,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
        ledger: WriteLedger | None = None,
    ) -> None:
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        self._token = token
        self._ledger = ledger
        self._dedupe_window = dedupe_window
        self._page_size = max(1, min(history_page_size, 999))
        self._max_pages = max(1, max_history_pages)
        self._dms: dict[str, str] = {}

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _throttle_key(self, operation: str) -> str:
        if operation == "conversations.history":
            return "slack:conversations.history"
        return super()._throttle_key(operation)

    async def _conversation(self, channel: str) -> str:
        """A user id (`U…`, `W…`) names a direct message: `conversations.open` gives its `D…` id,
        which history needs (and which is the same for every call, so it is cached)."""
        if not channel.startswith(("U", "W")):
            return channel
        if channel not in self._dms:
            response = await self._call(
                "conversations.open",
                "POST",
                "/api/conversations.open",
                json={"users": channel},
                headers=JSON_UTF8,
                accept=_is_ok,
            )
            self._dms[channel] = str(response.json()["channel"]["id"])
        return self._dms[channel]

    async def post_message(self, message: ChatMessage, *, idempotency_key: str) -> WriteResult:
        # With a ledger, only a retry whose earlier outcome was lost reads the channel's history
        # (Tier 3, about 50 a minute for the whole workspace): a first attempt posts at once.
        entry = await self._ledger.recall(idempotency_key) if self._ledger else None
        if entry is not None and entry.status == "done" and entry.external_id:
            return WriteResult(
                provider=self.provider, object_type="message", id=entry.external_id, created=False
            )
        if entry is not None and entry.in_flight_for() > 0:
            # The earlier attempt may still land: look for it once it cannot.
            raise WriteInFlightError(
                self.provider,
                "an earlier attempt of this message may still be posted; retrying once it cannot",
                retry_after=entry.in_flight_for(),
            )
        message = message.model_copy(update={"channel": await self._conversation(message.channel)})
        if self._ledger is None or entry is not None:
            earlier = await self.find_message(message.channel, idempotency_key)
            if earlier is not None:
                if self._ledger is not None:
                    await self._ledger.done(idempotency_key, earlier)
                return WriteResult(provider=self.provider, object_type="message", id=earlier, created=False)
        if self._ledger is not None:
            await self._ledger.pending(idempotency_key, self.provider)
        body: dict[str, Any] = {
            "channel": message.channel,
            "text": message.text,
            "metadata": {"event_type": EVENT_TYPE, "event_payload": {"idempotency_key": idempotency_key}},
        }
        if message.blocks is not None:
            body["blocks"] = message.blocks
        token = _channel.set(message.channel)
        try:
            response = await self._call(
                "chat.postMessage",
                "POST",
                "/api/chat.postMessage",
                json=body,
                headers=JSON_UTF8,
                accept=_is_ok,
            )
        finally:
            _channel.reset(token)
        ts = str(response.json()["ts"])
        if self._ledger is not None:
            await self._ledger.done(idempotency_key, ts)
        return WriteResult(provider=self.provider, object_type="message", id=ts)

    async def find_message(self, channel: str, idempotency_key: str) -> str | None:
        """The `ts` of a message in `channel`, newer than the dedupe window, posted with this key."""
        params: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{time.time() - self._dedupe_window.total_seconds():.6f}",
            "limit": self._page_size,
            "include_all_metadata": "true",
        }
        for _ in range(self._max_pages):
            response = await self._call(
                "conversations.history", "GET", "/api/conversations.history", params=params, accept=_is_ok
            )
            page = response.json()
            for item in page.get("messages") or []:
                metadata = item.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (
                    metadata.get("event_type") == EVENT_TYPE
                    and payload.get("idempotency_key") == idempotency_key
                ):
                    return str(item["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not page.get("has_more", True):
                return None
            params = {**params, "cursor": cursor}
        return None


class SlackWebhookClient(_SlackErrors):
    """ChatPort over incoming webhooks: at least once (see the module docstring)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str = "https://hooks.slack.com",
        webhook_url: str,
        channel_webhooks: Mapping[str, str] | None = None,
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        """`webhook_url` is absolute, or a `/services/...` path under `base_url`; `channel_webhooks`
        picks another webhook by the message's channel, since each webhook posts to one channel."""
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        self._webhook_url = webhook_url
        self._channel_webhooks = dict(channel_webhooks or {})

    async def post_message(self, message: ChatMessage, *, idempotency_key: str) -> WriteResult:
        url = self._channel_webhooks.get(message.channel, self._webhook_url)
        body: dict[str, Any] = {"text": message.text}
        if message.blocks is not None:
            body["blocks"] = message.blocks
        token = _channel.set(message.channel)
        try:
            await self._call("incoming_webhook", "POST", url, json=body, headers=JSON_UTF8)
        finally:
            _channel.reset(token)
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        return WriteResult(provider=self.provider, object_type="webhook_message", id=f"webhook-{digest}")
