"""The write ledger's contract: our own record of writes to a platform that cannot be asked cheaply
whether a write happened. Platform clients consult it (`platforms/slack.py`); the store keeps it
(`store/writes.py`); `platforms.base.MemoryLedger` keeps it in memory for tests."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel


class LedgerEntry(BaseModel):
    status: Literal["pending", "done"]
    external_id: str | None = None


class WriteLedger(Protocol):
    """`pending` before the write, `done` after: a retry that finds `done` answers without a call;
    one that finds `pending` (the outcome was lost) asks the platform the expensive way."""

    async def recall(self, key: str) -> LedgerEntry | None: ...

    async def pending(self, key: str, provider: str) -> None: ...

    async def done(self, key: str, external_id: str) -> None: ...
