"""Webhook signatures, verified the way each provider signs. Pure: the caller passes the clock.

Each `sign_*` is the sender's side, for tests and for the sandbox's emitters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import unquote

DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """Why a delivery is refused: say it plainly, the sender's developer reads it."""


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison that also takes what an attacker sends (non-ASCII included)."""
    return hmac.compare_digest(expected.encode(), given.encode(errors="replace"))


def _hmac_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _fresh(timestamp: float, now: float, tolerance: float) -> None:
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            f"timestamp is {abs(now - timestamp):.0f} s away from now; tolerance is {tolerance:g} s"
        )


def parse_timestamped_header(header: str) -> tuple[int, list[str]]:
    """`t=1700000000,v1=abc...,v1=def...` (Stripe; Calendly signs the same way)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError as exc:
                raise SignatureError("the t= timestamp is not a number") from exc
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("expected a header of the form t=<unix seconds>,v1=<hex signature>")
    return timestamp, signatures


def verify_timestamped_hmac(
    header: str | None, body: bytes, secret: str, *, now: float, tolerance: float = DEFAULT_TOLERANCE_SECONDS
) -> int:
    """Stripe-style: HMAC-SHA256 over `{t}.{body}`, hex, in any `v1=`; `t` within the tolerance."""
    if not header:
        raise SignatureError("the signature header is missing")
    timestamp, signatures = parse_timestamped_header(header)
    expected = _hmac_hex(secret.encode(), f"{timestamp}.".encode() + body)
    if not any(_same(expected, candidate) for candidate in signatures):
        raise SignatureError("no v1 signature matches the body")
    _fresh(timestamp, now, tolerance)
    return timestamp


def sign_timestamped_hmac(body: bytes, secret: str, timestamp: int) -> str:
    return f"t={timestamp},v1={_hmac_hex(secret.encode(), f'{timestamp}.'.encode() + body)}"


def hubspot_uri(uri: str) -> str:
    """HubSpot signs the URI with a few percent-encodings decoded."""
    for encoded in ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A", "%2C", "%3B"):
        uri = uri.replace(encoded, unquote(encoded)).replace(encoded.lower(), unquote(encoded))
    return uri


def verify_hubspot_v3(
    signature: str | None,
    timestamp_ms: str | None,
    *,
    method: str,
    uri: str,
    body: bytes,
    client_secret: str,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """HubSpot v3: base64 HMAC-SHA256 of method + URI + body + timestamp (ms), keyed by the app secret."""
    if not signature or not timestamp_ms:
        raise SignatureError("X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required")
    try:
        timestamp = int(timestamp_ms) / 1000
    except ValueError as exc:
        raise SignatureError("X-HubSpot-Request-Timestamp is not a number") from exc
    _fresh(timestamp, now, tolerance)
    expected = sign_hubspot_v3(
        method=method, uri=uri, body=body, client_secret=client_secret, timestamp_ms=timestamp_ms
    )
    if not _same(expected, signature):
        raise SignatureError("X-HubSpot-Signature-v3 does not match the request")


def sign_hubspot_v3(*, method: str, uri: str, body: bytes, client_secret: str, timestamp_ms: str) -> str:
    message = method.upper().encode() + hubspot_uri(uri).encode() + body + timestamp_ms.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def _standard_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise SignatureError("the Standard Webhooks secret is not base64 (whsec_...)") from exc


def verify_standard_webhook(
    message_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Standard Webhooks (also Svix): base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, `v1,<sig>` list."""
    if not message_id or not timestamp or not signatures:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is not a number") from exc
    _fresh(sent, now, tolerance)
    expected = sign_standard_webhook(message_id, sent, body, secret).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and _same(expected, value):
            return
    raise SignatureError("no v1 signature in webhook-signature matches the body")


def sign_standard_webhook(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    digest = hmac.new(
        _standard_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_hub_signature(header: str | None, body: bytes, app_secret: str) -> None:
    """Meta (Facebook) webhooks: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.

    Meta sends no timestamp; replays are answered without recording, by the lead's id.
    """
    if not header or not header.startswith("sha256="):
        raise SignatureError("X-Hub-Signature-256 (sha256=<hex>) is required")
    if not _same(_hmac_hex(app_secret.encode(), body), header.removeprefix("sha256=")):
        raise SignatureError("X-Hub-Signature-256 does not match the body")


def sign_hub_signature(body: bytes, app_secret: str) -> str:
    return "sha256=" + _hmac_hex(app_secret.encode(), body)


def verify_linkedin_signature(header: str | None, body: bytes, client_secret: str) -> None:
    """LinkedIn: `X-LI-Signature`, hex HMAC-SHA256 keyed by the app's client secret.

    LinkedIn's documentation is read two ways (the `hmacsha256=` prefix on the header value, or
    prefixed to the signed body); both are accepted, nothing else is. No timestamp: replays are
    answered without recording, by the form response's id.
    """
    if not header:
        raise SignatureError("X-LI-Signature is required")
    given = header.removeprefix("hmacsha256=")
    candidates = (
        _hmac_hex(client_secret.encode(), body),
        _hmac_hex(client_secret.encode(), b"hmacsha256=" + body),
    )
    if not any(_same(given, candidate) for candidate in candidates):
        raise SignatureError("X-LI-Signature does not match the body")


def sign_linkedin(body: bytes, client_secret: str) -> str:
    return "hmacsha256=" + _hmac_hex(client_secret.encode(), body)


def linkedin_challenge_response(challenge_code: str, client_secret: str) -> str:
    return _hmac_hex(client_secret.encode(), challenge_code.encode())
