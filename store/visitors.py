"""Reads for the browser rules (domain/browser.py): who holds the ids a browser's event names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, tuple_

from domain.forms import PROFILE_FIELDS
from store.db import SessionFactory
from store.models import Account, Identity, Lead


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


async def known_facts(
    sessions: SessionFactory, emails: set[str], accounts: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """What is already on record for these emails' leads (profile columns and traits, one dict)
    and these accounts (traits): a browser may fill them in, never overwrite them."""
    leads: dict[str, dict[str, Any]] = {}
    known_accounts: dict[str, dict[str, Any]] = {}
    async with sessions() as session:
        if emails:
            rows = await session.execute(
                select(Lead.email, Lead.traits, *(getattr(Lead, column) for column in PROFILE_FIELDS)).where(
                    Lead.email.in_(list(emails))
                )
            )
            for email, traits, *profile in rows:
                columns = {c: v for c, v in zip(PROFILE_FIELDS, profile, strict=True) if v is not None}
                leads[email] = {**(traits or {}), **columns}
        if accounts:
            rows = await session.execute(
                select(Account.account_id, Account.traits).where(Account.account_id.in_(list(accounts)))
            )
            known_accounts = {account_id: dict(traits or {}) for account_id, traits in rows}
    return leads, known_accounts
