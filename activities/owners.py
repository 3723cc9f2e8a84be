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

    async def owner_id(self, email: str) -> str | None:
        """The CRM owner id for this email (owners reread every five minutes); None when unknown or
        the CRM cannot be read now (the record then keeps its owner)."""
        if time.monotonic() - self._read_at > OWNERS_TTL:
            try:
                owners = await self._crm.list_owners()
            except Exception:
                activity.logger.warning("CRM owners not read; the record keeps its CRM owner", exc_info=True)
                return None
            self._owners = {o.email.lower(): o.id for o in owners}
            self._read_at = time.monotonic()
        return self._owners.get(email.lower())
