"""The browser rules (domain/browser.py) applied to a request made with a browser key: 403 naming
the first event a browser cannot send, before anything is recorded; and what it says about a
known person or account kept to filling blanks."""

from __future__ import annotations

from fastapi import HTTPException

from api.context import AppContext
from domain.browser import (
    IdsNamed,
    fill_only,
    merge_refusals,
    refusal_of_claim,
    server_only_claim,
    wanted_owners,
)
from domain.events import IncomingEvent
from store.visitors import known_facts, owners_of


def _where(index: int, count: int) -> str:
    return f"batch[{index}]: " if count > 1 else ""


async def refuse_what_a_browser_cannot_send(ctx: AppContext, events: list[IncomingEvent]) -> None:
    for index, event in enumerate(events):
        claim = server_only_claim(event.lead_event.type, event.lead_event.name)
        if claim is not None:
            detail = _where(index, len(events)) + refusal_of_claim(
                event.lead_event.name, event.lead_event.type, claim
            )
            raise HTTPException(status_code=403, detail=detail)
    # Only an event with an email, or an alias, can join a lead that has an email to another
    # (store/ingest.py never merges away an anonymousId's lead that has one): the others need no look-up.
    named = [
        IdsNamed(event.email, event.user_id, event.anonymous_id, event.previous_id)
        if event.email or event.previous_id
        else IdsNamed()
        for event in events
    ]
    pairs = set().union(*(wanted_owners(ids) for ids in named)) if named else set()
    if pairs:
        owners, emailed = await owners_of(ctx.sessions, pairs)
        refusals = merge_refusals(named, owners, emailed)
        if refusals:
            index, reason = refusals[0]
            raise HTTPException(status_code=403, detail=_where(index, len(events)) + reason)
    await _fill_blanks_only(ctx, events)


async def _fill_blanks_only(ctx: AppContext, events: list[IncomingEvent]) -> None:
    emails = {e.email for e in events if e.email and (e.profile or e.traits)}
    accounts = {e.group_id for e in events if e.group_id and e.group_traits}
    if not emails and not accounts:
        return
    leads, known_accounts = await known_facts(ctx.sessions, emails, accounts)
    for event in events:
        on_record = leads.get(event.email) if event.email else None
        if on_record:
            event.profile = fill_only(event.profile, on_record)
            event.traits = fill_only(event.traits, on_record)
        account = known_accounts.get(event.group_id) if event.group_id else None
        if account and event.group_traits:
            event.group_traits = fill_only(event.group_traits, account)
