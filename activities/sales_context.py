"""The lead's context for sales, as the seed lists it under "CRM record enrichment": who they are,
where they work, why they qualified, what they read, which pages they visited, their email
history, and where they came from. Written to the CRM as one note when a hand-off starts."""

from __future__ import annotations

from collections import Counter
from typing import Any

from store.models import Event, Lead

EMAIL_TYPES = {
    "email_delivered": "delivered",
    "email_opened": "opened",
    "email_clicked": "clicked",
    "email_unsubscribed": "unsubscribed",
    "email_bounced": "bounced",
}


def _touch(event: Event) -> str | None:
    touch = (event.lead_event or {}).get("touch") or {}
    parts = [str(touch[k]) for k in ("source", "medium", "campaign") if touch.get(k)]
    return " / ".join(parts) if parts else None


def sales_context(lead: Lead, account: dict[str, Any] | None, events: list[Event], headline: str) -> str:
    """Plain text (CRMs render notes differently); newest events are first in `events`."""
    lines = [headline, ""]
    who = " ".join(p for p in (lead.first_name, lead.last_name) if p) or "(no name)"
    lines.append(f"Who: {who}, {lead.job_title or 'title unknown'} at {lead.company or 'company unknown'}")
    firmographics = {**(lead.traits or {}), **(account or {})}
    facts = [f"{k}: {firmographics[k]}" for k in ("industry", "employees", "country") if firmographics.get(k)]
    if facts:
        lines.append("Company: " + ", ".join(str(f) for f in facts))
    lines.append(f"Lead source: {lead.lead_source or 'unknown'}")
    touches = [t for t in (_touch(e) for e in reversed(events)) if t]
    if touches:
        lines.append(f"First touch: {touches[0]}; last touch: {touches[-1]}")
    content = [
        f"{e.name} ({(e.lead_event or {}).get('properties', {}).get('content_id', '?')})"
        for e in events
        if e.type == "track" and e.name and "download" in e.name.lower()
    ]
    if content:
        lines.append(f"Content consumed ({len(content)}): " + "; ".join(content[:10]))
    pages = Counter(
        str((e.lead_event or {}).get("properties", {}).get("path") or e.name or "?")
        for e in events
        if e.type == "page"
    )
    if pages:
        top = ", ".join(f"{path} x{n}" for path, n in pages.most_common(8))
        lines.append(f"Pages visited ({sum(pages.values())}): {top}")
    email = Counter(EMAIL_TYPES[e.type] for e in events if e.type in EMAIL_TYPES)
    if email:
        lines.append("Email history: " + ", ".join(f"{n} {kind}" for kind, n in email.most_common()))
    forms = [
        e.lead_event.get("form_id") or "?" for e in events if e.type == "form_submitted" and e.lead_event
    ]
    if forms:
        lines.append("Forms: " + ", ".join(forms))
    return "\n".join(lines)
