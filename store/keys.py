"""API keys: stored as SHA-256 hashes, never in clear; the clear key is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from store.db import SessionFactory
from store.models import ApiKey

SCOPES = ("ingest", "admin")


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


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord(row.key_id, row.name, row.scope, row.rate_per_second, row.created_at, row.revoked_at)


class KeyStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def create(self, name: str, scope: str, rate_per_second: float = 100.0) -> tuple[KeyRecord, str]:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        key_id = secrets.token_hex(6)
        clear = f"jrn_{scope}_{key_id}_{secrets.token_urlsafe(24)}"
        row = ApiKey(
            key_id=key_id, name=name, scope=scope, key_hash=hash_key(clear), rate_per_second=rate_per_second
        )
        async with self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            await session.refresh(row)
        return _record(row), clear

    async def find(self, clear: str) -> KeyRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(ApiKey).where(ApiKey.key_hash == hash_key(clear), ApiKey.revoked_at.is_(None))
            )
            return _record(row) if row else None

    async def list(self) -> list[KeyRecord]:
        async with self._sessions() as session:
            rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at))
            return [_record(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ApiKey)
                .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=func.now())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
