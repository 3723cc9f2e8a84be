"""Who is calling: the dev admin key from env, or a stored key (ingest or admin), with a rate limit."""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from store.keys import KeyStore

CACHE_SECONDS = 5.0
UNKNOWN_KEY = (
    "missing or unknown API key: send `Authorization: Bearer <key>` (Segment clients: the key as write key)"
)


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: str
    rate_per_second: float

    def allows(self, scope: str) -> bool:
        return self.scope == "admin" or self.scope == scope


class TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * 2)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self) -> float:
        """0 when allowed; otherwise the seconds until a token is back."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def credentials_from(request: Request) -> str | None:
    """`Authorization: Bearer <key>`, or Segment's `Basic base64(<write key>:)`, or `?key=` for webhooks."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, _password = decoded.partition(":")
        return user or None
    return request.query_params.get("key") or None


class Authenticator:
    def __init__(self, keys: KeyStore, admin_key: str, admin_rate: float = 10_000.0) -> None:
        self._keys = keys
        self._admin_key = admin_key
        self._admin = Principal("dev-admin", "admin", admin_rate)
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._buckets: dict[str, TokenBucket] = {}

    async def principal(self, clear: str | None) -> Principal | None:
        if not clear:
            return None
        if secrets.compare_digest(clear.encode(), self._admin_key.encode()):
            return self._admin
        cached = self._cache.get(clear)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        record = await self._keys.find(clear)
        principal = Principal(record.key_id, record.scope, record.rate_per_second) if record else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[clear] = (time.monotonic(), principal)
        return principal

    def forget(self) -> None:
        self._cache.clear()

    async def require(self, request: Request, scope: str, clear: str | None = None) -> Principal:
        principal = await self.principal(clear if clear is not None else credentials_from(request))
        if principal is None:
            raise HTTPException(
                status_code=401,
                detail=UNKNOWN_KEY,
                headers={"WWW-Authenticate": 'Bearer, Basic realm="journeys"'},
            )
        if not principal.allows(scope):
            raise HTTPException(
                status_code=403,
                detail=f"this key's scope is `{principal.scope}`; this endpoint needs `{scope}`",
            )
        bucket = self._buckets.get(principal.key_id)
        if bucket is None or bucket.rate != principal.rate_per_second:
            bucket = self._buckets[principal.key_id] = TokenBucket(principal.rate_per_second)
        wait = bucket.take()
        if wait > 0:
            raise HTTPException(
                status_code=429,
                detail=f"rate limit of {principal.rate_per_second:g} requests/s for this key exceeded",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return principal


# Paths that check their own access (the codec's token paths), or need none.
OPEN_PATHS = ("/healthz", "/docs", "/openapi.json", "/redoc", "/dashboard", "/codec/")
# Segment's API also takes the write key in the body, read only once the route has parsed it.
BODY_KEY_PATHS = frozenset(
    f"/v1/{kind}" for kind in ("identify", "track", "page", "screen", "group", "alias", "batch")
)


# What an ingest key may call; every other path needs an admin key.
INGEST_PATH_PREFIXES = ("/v1/forms/", "/v1/webhooks/")


def scope_for(path: str) -> str:
    return "ingest" if path in BODY_KEY_PATHS or path.startswith(INGEST_PATH_PREFIXES) else "admin"


class KeyGate:
    """Refuses a request without a known key, or with a key of too narrow a scope, before anything
    reads or validates it, so such a caller learns nothing about the API's inputs. Each route's
    `require` still checks its scope and the key's rate limit (finding the key in the cache this
    lookup filled)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(OPEN_PATHS) or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        clear = credentials_from(Request(scope))
        if clear is None and path in BODY_KEY_PATHS:
            await self.app(scope, receive, send)
            return
        context = getattr(scope["app"].state, "ctx", None)
        if context is not None:
            try:
                principal = await context.auth.principal(clear)
            except Exception:
                # A key store that cannot answer (PostgreSQL down): the route answers 503.
                principal = Principal("unknown", "admin", 0.0)
            needed = scope_for(path)
            if principal is not None and not principal.allows(needed):
                response = JSONResponse(
                    {"detail": f"this key's scope is `{principal.scope}`; this endpoint needs `{needed}`"},
                    status_code=403,
                )
                await response(scope, receive, send)
                return
            if principal is None:
                response = JSONResponse(
                    {"detail": UNKNOWN_KEY},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer, Basic realm="journeys"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
