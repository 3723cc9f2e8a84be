"""Who is calling: the dev admin key from env, or a stored key (browser, ingest or admin), with rate
limits per key and, for browser keys, per client IP.

The API holds the table of keys in force (refreshed every few seconds), so a key it does not know
costs no database lookup: a flood of made-up keys is answered from memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from domain.browser import normalize_origin
from store.keys import SCOPES, KeyRecord, KeyStore, hash_key

# How old the key table may be: a revoke takes effect within this on every API process.
CACHE_SECONDS = 5.0
# A key the table does not hold is looked up once (a key made a moment ago on another API
# process works at once), then remembered as unknown until the next reload; and such look-ups
# are budgeted, so a flood of made-up keys costs at most this many queries a second.
MISSES_LOOKED_UP_PER_SECOND = 20.0
MAX_UNKNOWN_KEPT = 100_000
UNKNOWN_KEY = (
    "missing or unknown API key: send `Authorization: Bearer <key>` (Segment clients: the key as write key)"
)
# Browser keys: how many requests a second one client IP may make with one key, unless the key says.
DEFAULT_RATE_PER_IP = 10.0
# Requests that carry their key only in the body (sendBeacon) are limited per client IP before
# the body is read, whichever key they turn out to carry.
UNKEYED_RATE_PER_IP = 20.0
MAX_BUCKETS = 50_000
# Each scope may do what the ones before it may.
_RANK = {"browser": 0, "ingest": 1, "admin": 2}
# Narrow scopes for one job each (a BI tool's reports, a scraper's metrics, the DPO's export and
# erasure, an HR system's roster): such a key may do that and nothing else; admin may do all.
FINE_SCOPES = frozenset(SCOPES) - set(_RANK)
KEY_TABLE_LOADS = Counter(
    "journeys_api_key_table_loads", "Reads of the key table by this API process (unknown keys cost none)"
)
KEY_LOOKUPS = Counter(
    "journeys_api_key_lookups", "Look-ups of one key the key table did not hold (unknown keys cost one each)"
)
# Set in the request's scope once its key's limits were taken, so they are taken once.
LIMITED = "journeys.limited"


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: str
    rate_per_second: float
    origins: frozenset[str] = field(default_factory=frozenset)
    rate_per_ip: float | None = None

    def allows(self, scope: str) -> bool:
        if scope in FINE_SCOPES:
            return self.scope in ("admin", scope)
        return _RANK.get(self.scope, -1) >= _RANK[scope]

    @property
    def is_browser(self) -> bool:
        return self.scope == "browser"


def _principal(record: KeyRecord) -> Principal:
    return Principal(
        record.key_id,
        record.scope,
        record.rate_per_second,
        frozenset(record.origins),
        record.rate_per_ip,
    )


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

    def idle(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.rate >= self.capacity


# Where a key may come in the query string: platforms calling webhooks (they cannot set our
# header) and a browser's `sendBeacon` of an abandoned form (it cannot set headers at all).
# Anywhere else a key in a URL would land in proxies' and servers' access logs, so it is ignored.
QUERY_KEY_PATHS = re.compile(r"^/v1/webhooks/|^/v1/forms/[^/]+/abandonments$")


def credentials_from(request: Request) -> str | None:
    """`Authorization: Bearer <key>`, or Segment's `Basic base64(<write key>:)`, or `?key=` on the
    paths that cannot send a header (`QUERY_KEY_PATHS`)."""
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
    if QUERY_KEY_PATHS.match(request.url.path):
        return request.query_params.get("key") or None
    return None


def client_ip(request: Request) -> str:
    # uvicorn puts the proxy's X-Forwarded-For here when the proxy is trusted (FORWARDED_ALLOW_IPS).
    return request.client.host if request.client else "unknown"


def _too_many(detail: str, wait: float) -> HTTPException:
    retry_after = str(max(1, math.ceil(wait)))
    return HTTPException(status_code=429, detail=detail, headers={"Retry-After": retry_after})


class Authenticator:
    def __init__(self, keys: KeyStore, admin_key: str, admin_rate: float = 10_000.0) -> None:
        self._keys = keys
        self._admin_key = admin_key
        self._admin = Principal("dev-admin", "admin", admin_rate)
        # Signs the fill tokens of embedded forms; every API process with the same admin key agrees.
        self.form_secret = hashlib.sha256(b"journeys form fill token\0" + admin_key.encode()).digest()
        self._table: dict[str, Principal] = {}
        self._origins: frozenset[str] = frozenset()
        self._loaded_at = -math.inf
        self._loading = asyncio.Lock()
        self._unknown: set[str] = set()
        self._miss_budget = TokenBucket(MISSES_LOOKED_UP_PER_SECOND)
        self._buckets: dict[Any, TokenBucket] = {}

    async def _reload(self, older_than: float) -> None:
        async with self._loading:
            if time.monotonic() - self._loaded_at < older_than:
                return  # another request reloaded it meanwhile
            records = await self._keys.active()
            self._table = {digest: _principal(record) for digest, record in records.items()}
            self._origins = frozenset(o for p in self._table.values() if p.is_browser for o in p.origins)
            self._unknown.clear()
            self._loaded_at = time.monotonic()
            KEY_TABLE_LOADS.inc()

    async def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at >= CACHE_SECONDS:
            await self._reload(CACHE_SECONDS)

    async def principal(self, clear: str | None) -> Principal | None:
        if not clear:
            return None
        if secrets.compare_digest(clear.encode(), self._admin_key.encode()):
            return self._admin
        await self._fresh()
        digest = hash_key(clear)
        found = self._table.get(digest)
        if found is not None or digest in self._unknown or self._miss_budget.take() > 0:
            return found
        KEY_LOOKUPS.inc()
        record = await self._keys.find(clear)
        if record is None:
            if len(self._unknown) >= MAX_UNKNOWN_KEPT:
                self._unknown.clear()
            self._unknown.add(digest)
            return None
        found = self._table[digest] = _principal(record)
        return found

    async def browser_origins(self) -> frozenset[str]:
        """Every origin some browser key in force is for: what a CORS preflight, which carries no
        key, can be answered for."""
        await self._fresh()
        return self._origins

    def forget(self) -> None:
        """The next request rereads the key table (after a key is made or revoked here)."""
        self._loaded_at = -math.inf

    def _bucket(self, key: Any, rate: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate:
            if len(self._buckets) >= MAX_BUCKETS:
                now = time.monotonic()
                self._buckets = {k: b for k, b in self._buckets.items() if not b.idle(now)}
                if len(self._buckets) >= MAX_BUCKETS:
                    self._buckets.clear()
            bucket = self._buckets[key] = TokenBucket(rate)
        return bucket

    def limit_unkeyed(self, request: Request) -> None:
        """A request whose key is in its body: its client IP's share, before the body is read."""
        wait = self._bucket(("unkeyed", client_ip(request)), UNKEYED_RATE_PER_IP).take()
        if wait > 0:
            rate = UNKEYED_RATE_PER_IP
            raise _too_many(f"rate limit of {rate:g} requests/s for this client exceeded", wait)

    def admit(self, request: Request, principal: Principal) -> None:
        """A browser key's origin, then the key's rate limit and (browser keys) its client IP's."""
        if principal.is_browser:
            check_origin(request, principal)
        if request.scope.get(LIMITED) == principal.key_id:
            return
        request.scope[LIMITED] = principal.key_id
        if principal.is_browser:
            rate = principal.rate_per_ip or DEFAULT_RATE_PER_IP
            wait = self._bucket((principal.key_id, client_ip(request)), rate).take()
            if wait > 0:
                raise _too_many(f"rate limit of {rate:g} requests/s per client for this key exceeded", wait)
        wait = self._bucket(principal.key_id, principal.rate_per_second).take()
        if wait > 0:
            rate = principal.rate_per_second
            raise _too_many(f"rate limit of {rate:g} requests/s for this key exceeded", wait)

    async def require(self, request: Request, scope: str, clear: str | None = None) -> Principal:
        principal = await self.principal(clear if clear is not None else credentials_from(request))
        if principal is None:
            raise HTTPException(
                status_code=401,
                detail=UNKNOWN_KEY,
                headers={"WWW-Authenticate": 'Bearer, Basic realm="journeys"'},
            )
        if not principal.allows(scope):
            raise HTTPException(status_code=403, detail=_scope_refusal(principal.scope, scope))
        self.admit(request, principal)
        return principal


def _scope_refusal(has: str, needs: str) -> str:
    if has == "browser":
        return (
            "this key's scope is `browser`: it sends page views, identifies, the site's own events "
            f"and forms only; this endpoint needs `{needs}`"
        )
    return f"this key's scope is `{has}`; this endpoint needs `{needs}`"


def check_origin(request: Request, principal: Principal) -> None:
    """A browser key works only from the pages of its own sites: browsers send `Origin` on every
    POST and cross-origin GET, and a page cannot forge it."""
    raw = request.headers.get("origin")
    if not raw:
        raise HTTPException(
            status_code=403,
            detail="a browser key is used from a web page of its sites: this request has no Origin",
        )
    try:
        origin = normalize_origin(raw)
    except ValueError:
        origin = None
    if origin is None or origin not in principal.origins:
        raise HTTPException(
            status_code=403,
            detail=f"origin {raw[:200]!r} may not use this browser key (add it to the key's origins); "
            "nothing was recorded",
        )


# Paths that check their own access (the codec's token paths, a browser key's settings, which
# carry it in the path as Segment's CDN does), or need none (the form script).
OPEN_PATHS = (
    "/healthz",
    "/docs",
    "/openapi.json",
    "/redoc",
    "/dashboard",
    "/codec/",
    # A person's own click from their mailbox: the link carries its signed token, not a key.
    "/v1/consent/confirm",
    "/js/",
    "/v1/projects/",
)
# Segment's paths: its HTTP API's, and the analytics.js per-call ones (the call type's first
# letter; `b` for a batch).
SEGMENT_KINDS = {
    "identify": "identify",
    "track": "track",
    "page": "page",
    "screen": "screen",
    "group": "group",
    "alias": "alias",
    "i": "identify",
    "t": "track",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}
SEGMENT_BATCH_PATHS = frozenset({"/v1/batch", "/v1/b"})
# Segment's API also takes the write key in the body, read only once the route has parsed it.
BODY_KEY_PATHS = frozenset({f"/v1/{kind}" for kind in SEGMENT_KINDS} | SEGMENT_BATCH_PATHS)
FORMS_PREFIX = "/v1/forms/"
WEBHOOKS_PREFIX = "/v1/webhooks/"


PROJECTS_PREFIX = "/v1/projects/"


def is_browser_path(path: str) -> bool:
    """What a page may call: Segment's paths (and its settings, as the CDN serves them) and the forms'."""
    return path in BODY_KEY_PATHS or path.startswith((FORMS_PREFIX, PROJECTS_PREFIX))


# The paths a narrow scope opens, by method.
_FINE_PATHS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"^/v1/reports/"), "reports:read"),
    ("GET", re.compile(r"^/metrics$"), "metrics:read"),
    ("GET", re.compile(r"^/v1/leads/[^/]+/export$"), "pii:export"),
    ("DELETE", re.compile(r"^/v1/leads/[^/]+$"), "pii:erase"),
    ("PUT", re.compile(r"^/v1/roster$"), "roster:write"),
    ("DELETE", re.compile(r"^/v1/roster$"), "roster:write"),
)


def scope_for(path: str, method: str = "GET") -> str:
    if is_browser_path(path):
        return "browser"
    if path.startswith(WEBHOOKS_PREFIX):
        return "ingest"
    for verb, pattern, scope in _FINE_PATHS:
        if method == verb and pattern.match(path):
            return scope
    return "admin"


async def _answer(scope: Any, receive: Any, send: Any, exc: HTTPException) -> None:
    response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    await response(scope, receive, send)


class KeyGate:
    """Refuses a request without a known key, or with a key of too narrow a scope, from the wrong
    origin or over its rate limits, before anything reads or validates it, so such a caller learns
    nothing about the API's inputs and a large body costs nothing to refuse. Each route's `require`
    still checks its scope (finding the key in the table this lookup filled)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(OPEN_PATHS) or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        context = getattr(scope["app"].state, "ctx", None)
        request = Request(scope)
        clear = credentials_from(request)
        if clear is None and path in BODY_KEY_PATHS:
            if context is not None:
                try:
                    context.auth.limit_unkeyed(request)
                except HTTPException as exc:
                    await _answer(scope, receive, send, exc)
                    return
            await self.app(scope, receive, send)
            return
        if context is not None:
            try:
                principal = await context.auth.principal(clear)
            except Exception:
                # A key store that cannot answer (PostgreSQL down): the route answers 503.
                await self.app(scope, receive, send)
                return
            needed = scope_for(path, scope.get("method", "GET"))
            try:
                if principal is None:
                    raise HTTPException(
                        status_code=401,
                        detail=UNKNOWN_KEY,
                        headers={"WWW-Authenticate": 'Bearer, Basic realm="journeys"'},
                    )
                if not principal.allows(needed):
                    raise HTTPException(status_code=403, detail=_scope_refusal(principal.scope, needed))
                context.auth.admit(request, principal)
            except HTTPException as exc:
                await _answer(scope, receive, send, exc)
                return
        await self.app(scope, receive, send)
