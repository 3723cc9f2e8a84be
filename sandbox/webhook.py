"""The receiver of outbound webhooks: a conforming Standard Webhooks consumer (standardwebhooks.com).

`POST /webhook/<name>` (any name, slashes allowed) with any body answers 2xx, so journeys can post
anywhere under it. When the sandbox knows a secret for `<name>`, the delivery must carry valid
`webhook-id`, `webhook-timestamp` (within 5 minutes) and `webhook-signature` (`v1,<base64
HMAC-SHA256 of "{id}.{timestamp}.{body}">`, any of a space-separated list) headers, or it is
answered 401. Deliveries are deduplicated on `webhook-id` per name, as the spec asks receivers to:
a new id is stored and marked "created" (202), a repeated one is marked "duplicate" and answered
200 with `{"duplicate": true}`. A delivery without a `webhook-id` is stored as new each time.

Sandbox control: `PUT /webhook/_secrets/<name>` with `{"secret": "whsec_..."}` sets the secret for
`<name>`; `DELETE` on the same path forgets it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, now_iso, register

SECRETS_PREFIX = "/_secrets/"
TOLERANCE_SECONDS = 300


def _key(secret: str) -> bytes | None:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def signature_problem(secret: str, headers: Any, raw: bytes, now: float) -> str | None:
    """Why a delivery fails the Standard Webhooks check, or None when it passes."""
    message_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not message_id or not stamp or not signatures:
        return "webhook-id, webhook-timestamp and webhook-signature are required"
    try:
        sent = int(stamp)
    except ValueError:
        return "webhook-timestamp is not unix seconds"
    if abs(now - sent) > TOLERANCE_SECONDS:
        return f"webhook-timestamp is {abs(now - sent):.0f} s away from now; tolerance {TOLERANCE_SECONDS} s"
    key = _key(secret)
    if key is None:
        return "the configured secret is not whsec_<base64>"
    digest = hmac.new(key, f"{message_id}.{sent}.".encode() + raw, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value):
            return None
    return "no v1 signature in webhook-signature matches the body"


@register("webhook")
class WebhookSink(ProviderHandler):
    """Any outbound webhook, verified when a secret is set, deduplicated on webhook-id."""

    @property
    def secrets(self) -> dict[str, Any]:
        return self.state.table("webhook_secrets")

    @property
    def messages(self) -> dict[str, Any]:
        return self.state.table("webhook_messages")

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        headers = {"Retry-After": f"{retry_after:g}"} if status in (429, 503) else {}
        reason = "too many requests" if status == 429 else "the receiver is failing"
        return JSONResponse({"error": reason}, status_code=status, headers=headers)

    async def answer(self) -> Response:
        method = self.request.method
        if self.path.startswith(SECRETS_PREFIX):
            return self.configure(self.path.removeprefix(SECRETS_PREFIX), method)
        if method not in ("POST", "PUT"):
            return JSONResponse({"error": "webhooks are POSTed"}, status_code=405)
        name = self.path.lstrip("/")
        raw = await self.request.body()
        secret = self.secrets.get(name, {}).get("secret")
        if secret:
            problem = signature_problem(secret, self.request.headers, raw, time.time())
            if problem:
                return JSONResponse({"error": "invalid signature", "detail": problem}, status_code=401)
        message_id = self.request.headers.get("webhook-id")
        with self.state.lock:
            if message_id:
                record_key = f"{name}|{message_id}"
                earlier = self.messages.get(record_key)
                if earlier is not None:
                    earlier["deliveries"] += 1
                    self.state.save_records()
                    self.effect("duplicate", "webhook_message", message_id)
                    return JSONResponse({"received": True, "duplicate": True, "webhook_id": message_id})
            else:
                record_key = f"{name}|sandbox-{self.state.next_id('webhook_messages', start=1)}"
            self.messages[record_key] = {
                "name": name,
                "webhook_id": message_id,
                "body": self.body,
                "verified": bool(secret),
                "deliveries": 1,
                "received_at": now_iso(),
            }
            self.state.save_records()
        self.effect("created", "webhook_message", message_id or record_key)
        return JSONResponse({"received": True, "duplicate": False, "webhook_id": message_id}, status_code=202)

    def configure(self, name: str, method: str) -> Response:
        if not name:
            return JSONResponse({"error": "PUT /webhook/_secrets/<name>"}, status_code=404)
        if method == "DELETE":
            with self.state.lock:
                self.secrets.pop(name, None)
                self.state.save_records()
            return Response(status_code=204)
        if method != "PUT":
            return JSONResponse({"error": "PUT or DELETE"}, status_code=405)
        secret = self.body.get("secret") if isinstance(self.body, dict) else None
        if not isinstance(secret, str) or _key(secret) is None:
            return JSONResponse({"error": 'expected {"secret": "whsec_<base64 key>"}'}, status_code=400)
        with self.state.lock:
            self.secrets[name] = {"name": name, "secret": secret}
            self.state.save_records()
        return JSONResponse({"name": name, "configured": True})
