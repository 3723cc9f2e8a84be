"""Reads for the browser rules (domain/browser.py): who holds the ids a browser's event names."""

from __future__ import annotations

from sqlalchemy import select, tuple_

from store.db import SessionFactory
from store.models import Identity, Lead


async def owners_of(
    sessions: SessionFactory, pairs: set[tuple[str, str]]
) -> tuple[dict[tuple[str, str], str], set[str]]:
    """The lead holding each (kind, value) among `pairs`, and which of those leads have an email.
    One round trip; none when nothing is asked."""
    if not pairs:
        return {}, set()
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Identity.kind, Identity.value, Identity.lead_id, Lead.email.is_not(None))
                .join(Lead, Lead.lead_id == Identity.lead_id)
                .where(tuple_(Identity.kind, Identity.value).in_(list(pairs)))
            )
        ).all()
    owners = {(kind, value): lead_id for kind, value, lead_id, _ in rows}
    return owners, {lead_id for _, _, lead_id, has_email in rows if has_email}
