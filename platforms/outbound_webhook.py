"""Outbound webhooks to a customer's endpoint, signed as the Standard Webhooks spec asks
(standardwebhooks.com): the generic `WebhookPort`.

Request: `POST <delivery.url>` with the JSON body `{"type": <event type>, "timestamp": <ISO 8601 UTC>,
"data": <payload>}` (minified; the bytes signed are the bytes sent; `timestamp` is this attempt's
time, as `WebhookDelivery` carries no event time) and the headers
- `webhook-id`: the message id, the receiver's idempotency key: the idempotency key itself when it is
  a plain token (letters, digits, `_`, `-`, `:`, at most 200), else `msg_` and a hash of it, since
  the spec forbids `.` in it; the same on every retry;
- `webhook-timestamp`: unix seconds of this attempt (new on each retry, as the spec says);
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed by the
  base64-decoded `whsec_...` secret; during a rotation, one `v1,` signature per secret, space-separated.
Auth is that signature: nothing else is sent. `base_url` only serves relative delivery URLs.

Answers, per the spec's guidance: 2xx is delivered. A 3xx is a failure, never followed (the spec:
update the URL instead; this client refuses an httpx client set to follow redirects) ->
`PermanentPlatformError`. 410 Gone means the receiver wants no more webhooks
-> `PermanentPlatformError` saying to disable the endpoint. 429 -> `RateLimitedError` with its
`Retry-After` (1 s without one); a 5xx that carries `Retry-After` (e.g. 503) -> `RateLimitedError`
with that delay; other 5xx, 408, timeouts and connection failures -> `TransientPlatformError`;
any other 4xx -> `PermanentPlatformError` with the status (never the receiver's body or
`Location`: a target's answer is not read back through the engine). Targets are public
addresses only, checked at connect time: the host is resolved once, every address checked
(loopback, link-local, private, carrier-grade NAT and reserved ranges refused), and the connection
made to the checked address, so DNS rebinding cannot swap one in (`allow_private` for dev).
The spec recommends a 15-30 s request timeout: that is the shared httpx client's (the worker's
is 20 s).

Rate limits: set by each receiver, not by us; calls are throttled per receiving host under the key
`webhook:<host>` (configure `webhook:*`).

Idempotency: at-least-once delivery, exactly-once processing by a conforming receiver, which
dedupes on `webhook-id` (the spec's instruction to consumers). A retry with the same key sends the
same `webhook-id` and a fresh timestamp and signature. The answer is `WriteResult(id=<webhook-id>)`;
`created` is False only when the receiver's 2xx JSON body says `"duplicate": true` (what the
sandbox's sink answers; the spec defines no such signal, so for other receivers it stays True).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import ipaddress
import json
import re
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from domain.network import refused_address
from domain.ratelimits import Throttle
from domain.signatures import SignatureError, sign_standard_webhook
from platforms.base import CallObserver, PlatformClient
from platforms.errors import (
    PermanentPlatformError,
    PlatformError,
    RateLimitedError,
    TransientPlatformError,
    parse_retry_after,
)
from platforms.ports import WebhookDelivery, WriteResult

SAFE_MESSAGE_ID = re.compile(r"[A-Za-z0-9_:\-]{1,200}")
USER_AGENT = "journeys-webhooks/1.0"

# The host of the delivery under way, for the throttle key (each task sees its own).
_delivery_host: contextvars.ContextVar[str] = contextvars.ContextVar("webhook_delivery_host", default="")


def message_id_for(idempotency_key: str) -> str:
    """The `webhook-id` for a key: stable across retries, header-safe, without the `.` the spec forbids."""
    if SAFE_MESSAGE_ID.fullmatch(idempotency_key):
        return idempotency_key
    return "msg_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


class OutboundWebhookClient(PlatformClient):
    """`WebhookPort`: one signing secret (plus, while rotating, the previous ones) for the endpoints."""

    provider: ClassVar[str] = "webhook"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        secret: str,
        previous_secrets: Sequence[str] = (),
        base_url: str = "",
        throttle: Throttle | None = None,
        observer: CallObserver | None = None,
        allow_private: bool = False,
    ) -> None:
        """`allow_private`: targets on this machine or a private network are allowed (the dev
        stack's sink is on loopback); never outside dev."""
        super().__init__(http, base_url=base_url, throttle=throttle, observer=observer)
        self._allow_private = allow_private
        if http.follow_redirects:
            raise ValueError(
                "webhooks must not follow redirects: pass an httpx client with follow_redirects=False"
            )
        self._secrets = (secret, *previous_secrets)
        for candidate in self._secrets:
            try:
                sign_standard_webhook("probe", 0, b"", candidate)
            except SignatureError as exc:
                raise ValueError(f"a Standard Webhooks secret is whsec_<base64 key>: {exc}") from exc
            if not candidate.removeprefix("whsec_"):
                raise ValueError("the Standard Webhooks secret is empty")

    def sign(self, message_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` header: one `v1,<sig>` per secret, current first."""
        return " ".join(sign_standard_webhook(message_id, timestamp, body, s) for s in self._secrets)

    async def deliver(self, delivery: WebhookDelivery, *, idempotency_key: str) -> WriteResult:
        url = self._target(delivery.url)
        message_id = message_id_for(idempotency_key)
        sent_at = datetime.now(UTC)
        envelope = {
            "type": delivery.event_type,
            "timestamp": sent_at.isoformat().replace("+00:00", "Z"),
            "data": delivery.payload,
        }
        try:
            body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise PermanentPlatformError(self.provider, f"the payload is not JSON: {exc}") from exc
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.sign(message_id, timestamp, body),
        }
        pinned, extensions = await self._pinned(url)
        if pinned is not url:
            headers["host"] = url.netloc.decode()
        token = _delivery_host.set(url.host)
        try:
            response = await self._call(
                "deliver", "POST", str(pinned), content=body, headers=headers, extensions=extensions
            )
        finally:
            _delivery_host.reset(token)
        return WriteResult(
            provider=self.provider,
            object_type="webhook_message",
            id=message_id,
            created=not _says_duplicate(response),
        )

    def _target(self, raw: str) -> httpx.URL:
        try:
            url = httpx.URL(raw if raw.startswith(("http://", "https://")) else f"{self._base_url}{raw}")
        except httpx.InvalidURL as exc:
            raise PermanentPlatformError(self.provider, f"not a URL: {raw!r}") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise PermanentPlatformError(self.provider, f"webhooks go to an http(s) URL, not {raw!r}")
        return url

    async def _pinned(self, url: httpx.URL) -> tuple[httpx.URL, dict[str, Any]]:
        """The URL to connect to: the target's host resolved once, every address it resolves to
        checked, and the connection made to the checked address (with the name kept for TLS and
        the Host header), so a second lookup cannot swap in another (DNS rebinding)."""
        if self._allow_private:
            return url, {}
        try:
            literal: str | None = str(ipaddress.ip_address(url.host))
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = await asyncio.get_running_loop().getaddrinfo(
                    url.host, url.port or (443 if url.scheme == "https" else 80), type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise TransientPlatformError(self.provider, f"{url.host} does not resolve now") from exc
            addresses = [str(info[4][0]) for info in found]
        for address in addresses:
            why = refused_address(address)
            if why is not None:
                raise PermanentPlatformError(
                    self.provider, f"webhooks go to public addresses; {url.host} is {why}"
                )
        if literal is not None:
            return url, {}
        ip = ipaddress.ip_address(addresses[0])
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return url.copy_with(host=host), {"sni_hostname": url.host}

    def _throttle_key(self, operation: str) -> str:
        host = _delivery_host.get()
        return f"{self.provider}:{host}" if host else self.provider

    def _error_message(self, response: httpx.Response) -> str:
        """The status only: what the target answered is never repeated (an endpoint aimed at an
        internal service must not read it back through the engine's errors)."""
        status = response.status_code
        if 300 <= status < 400:
            return f"{status} redirect not followed: point the webhook at the final URL"
        if status == 410:
            return "410 Gone: the receiver wants no more webhooks; disable this endpoint"
        return f"{status} from the receiver"

    def _error(self, response: httpx.Response) -> PlatformError:
        retry_after = response.headers.get("Retry-After")
        if response.status_code >= 500 and retry_after:
            return RateLimitedError(
                self.provider,
                self._error_message(response)[:500],
                retry_after=parse_retry_after(retry_after),
                status=response.status_code,
            )
        return super()._error(response)


def _says_duplicate(response: httpx.Response) -> bool:
    if "json" not in response.headers.get("content-type", ""):
        return False
    try:
        answer: Any = response.json()
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("duplicate") is True
