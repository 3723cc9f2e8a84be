"""API keys: stored as SHA-256 hashes, never in clear; the clear key is shown once, at creation.

A `browser` key also carries the site origins it may be used from and its rate per client IP
(migration 0018). Those two columns are read and written here through a table of their own
description, so the ORM model stays as the other rooms know it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, DateTime, Float, String, column, func, insert, select, table, update

from store.db import SessionFactory

# Ranked (each may do what those before it may), then the narrow ones for one job each.
SCOPES = (
    "browser",
    "ingest",
    "admin",
    "reports:read",
    "metrics:read",
    "pii:export",
    "pii:erase",
    "roster:write",
)

_keys = table(
    "api_keys",
    column("key_id", String),
    column("name", String),
    column("scope", String),
    column("key_hash", String),
    column("rate_per_second", Float),
    column("created_at", DateTime(timezone=True)),
    column("revoked_at", DateTime(timezone=True)),
    column("origins", ARRAY(String)),
    column("rate_per_ip", Float),
)
_COLUMNS = (
    _keys.c.key_id,
    _keys.c.name,
    _keys.c.scope,
    _keys.c.rate_per_second,
    _keys.c.created_at,
    _keys.c.revoked_at,
    _keys.c.origins,
    _keys.c.rate_per_ip,
)


def default_rate(scope: str) -> float:
    """Requests a second a key gets unless it says: a browser key carries a whole site's visitors
    (each client IP has its own, smaller share of it)."""
    return 1000.0 if scope == "browser" else 100.0


def hash_key(key: str) -> str:
    # Keys carry 192 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    name: str
    scope: str
    rate_per_second: float
    created_at: datetime | None
    revoked_at: datetime | None
    origins: tuple[str, ...] = field(default=())
    rate_per_ip: float | None = None


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        row.key_id,
        row.name,
        row.scope,
        row.rate_per_second,
        row.created_at,
        row.revoked_at,
        tuple(row.origins or ()),
        row.rate_per_ip,
    )


class KeyStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def create(
        self,
        name: str,
        scope: str,
        rate_per_second: float = 100.0,
        *,
        origins: Sequence[str] = (),
        rate_per_ip: float | None = None,
    ) -> tuple[KeyRecord, str]:
        """`origins` must already be normalized (domain.browser.normalize_origin)."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        if scope == "browser" and not origins:
            raise ValueError("a browser key needs at least one origin (https://www.example.com)")
        if scope != "browser" and (origins or rate_per_ip is not None):
            raise ValueError("origins and rate_per_ip are for browser keys only")
        key_id = secrets.token_hex(6)
        clear = f"jrn_{scope}_{key_id}_{secrets.token_urlsafe(24)}"
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    insert(_keys)
                    .values(
                        key_id=key_id,
                        name=name,
                        scope=scope,
                        key_hash=hash_key(clear),
                        rate_per_second=rate_per_second,
                        origins=list(origins),
                        rate_per_ip=rate_per_ip,
                    )
                    .returning(*_COLUMNS)
                )
            ).one()
        return _record(row), clear

    async def find(self, clear: str) -> KeyRecord | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(*_COLUMNS).where(_keys.c.key_hash == hash_key(clear), _keys.c.revoked_at.is_(None))
                )
            ).one_or_none()
            return _record(row) if row else None

    async def active(self) -> dict[str, KeyRecord]:
        """Every key in force, by hash: the API holds this table, so that a key it does not know
        (a typo, a guess, a flood of random ones) costs it no query."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(_keys.c.key_hash, *_COLUMNS).where(_keys.c.revoked_at.is_(None))
            )
            return {row.key_hash: _record(row) for row in rows}

    async def list(self) -> list[KeyRecord]:
        async with self._sessions() as session:
            rows = await session.execute(select(*_COLUMNS).order_by(_keys.c.created_at))
            return [_record(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(_keys)
                .where(_keys.c.key_id == key_id, _keys.c.revoked_at.is_(None))
                .values(revoked_at=func.now())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
