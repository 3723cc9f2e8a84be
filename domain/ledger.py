"""The write ledger's contract: our own record of writes to a platform that cannot be asked cheaply
whether a write happened. Platform clients consult it (`platforms/slack.py`); the store keeps it
(`store/writes.py`); `platforms.base.MemoryLedger` keeps it in memory for tests."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel

# How long after a write was sent its platform may still carry it out: a request that timed out
# on our side (20 s) may have been queued there and act later. A retry of a write without the
# platform's own idempotency (a Slack message) looks for the earlier one only after this, or it
# could look before the earlier one lands and post a second (the old 30 s attempt timeout gave
# this wait by accident; a 10 s heartbeat retry does not).
IN_FLIGHT_SECONDS = 30.0


class LedgerEntry(BaseModel):
    status: Literal["pending", "done"]
    external_id: str | None = None
    # For a pending write: seconds since it was first sent.
    pending_for: float = 0.0

    def in_flight_for(self) -> float:
        """Seconds a pending write may still be carried out by its platform (0: settled)."""
        return max(0.0, IN_FLIGHT_SECONDS - self.pending_for) if self.status == "pending" else 0.0


class WriteLedger(Protocol):
    """`pending` before the write, `done` after: a retry that finds `done` answers without a call;
    one that finds `pending` (the outcome was lost) asks the platform the expensive way."""

    async def recall(self, key: str) -> LedgerEntry | None: ...

    async def pending(self, key: str, provider: str) -> None: ...

    async def done(self, key: str, external_id: str) -> None: ...
