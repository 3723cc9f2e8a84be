"""CRM owner ids of the roster's people, matched by email and cached: a rep's or a CSM's record
ownership in the CRM."""

from __future__ import annotations

import time

from temporalio import activity

from platforms.ports import CrmPort

OWNERS_TTL = 300.0


class CrmOwnerDirectory:
    def __init__(self, crm: CrmPort) -> None:
        self._crm = crm
        self._owners: dict[str, str] = {}
        self._read_at = 0.0

    async def _read(self) -> bool:
        """Rereads the owners when the copy is older than five minutes; False when the CRM cannot
        be read now (the copy held, possibly empty, is used)."""
        if time.monotonic() - self._read_at > OWNERS_TTL:
            try:
                owners = await self._crm.list_owners()
            except Exception:
                activity.logger.warning("CRM owners not read; the record keeps its CRM owner", exc_info=True)
                return False
            self._owners = {o.email.lower(): o.id for o in owners}
            self._read_at = time.monotonic()
        return True

    async def owner_id(self, email: str) -> str | None:
        """The CRM owner id for this email (owners reread every five minutes); None when unknown or
        the CRM cannot be read now (the record then keeps its owner)."""
        if not await self._read():
            return None
        return self._owners.get(email.lower())

    async def email_of(self, owner_id: str) -> str | None:
        """The email of the CRM owner with this id: who owns a record in the CRM, as a person."""
        if not await self._read():
            return None
        return next((email for email, known in self._owners.items() if known == str(owner_id)), None)
