"""What a browser key may say: the rules for a key that sits in a public web page.

Anyone can read a key a page carries, and anyone can send with it what the page could. So a
browser key speaks only of what a visitor's browser can witness: pages and screens seen, who the
visitor says they are (identify, group), the site's own events, forms filled in or left. What only
a server or a platform knows (a payment, an email opened, an unsubscribe, a deal moved in the CRM)
comes from a server key or a signed webhook; a browser that claims it is refused, and nothing of
its request is recorded. Pure rules: the API feeds them what it looked up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from domain.events import EventType
from domain.ids import lead_id_for_email, lead_id_for_user

MAX_ORIGINS = 50
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str) -> str:
    """A site origin as browsers send it in `Origin`: `scheme://host[:port]`, lower case, the
    default port left out. Anything else (a path, a wildcard, credentials) raises ValueError."""
    raw = text.strip()
    if raw == "*" or "*" in raw:
        raise ValueError(f"{text!r}: wildcards are not allowed; list each origin the key is for")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r}: not an origin ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{text!r}: an origin starts with https:// (or http://)")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r}: an origin carries no user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r}: an origin has no path, query or fragment (scheme://host[:port])")
    host = (parts.hostname or "").lower()
    if not host or not (_HOST.match(host) or _is_ipv4(host)):
        raise ValueError(f"{text!r}: {host or 'no host'} is not a host name (IDNs in punycode: xn--...)")
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _is_ipv4(host: str) -> bool:
    pieces = host.split(".")
    return len(pieces) == 4 and all(p.isdigit() and int(p) < 256 for p in pieces)


def normalize_origins(values: Iterable[str]) -> list[str]:
    """Each origin normalized, duplicates dropped, order kept; at most MAX_ORIGINS."""
    origins: list[str] = []
    for value in values:
        origin = normalize_origin(value)
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise ValueError(f"at most {MAX_ORIGINS} origins per key")
    return origins


def _name_key(name: str) -> str:
    """`Order_Completed`, ` order  completed ` and `order-completed` are one name."""
    return " ".join(re.split(r"[\s_\-]+", name.strip().casefold())).strip()


# Segment spec events (Email, E-commerce, B2B SaaS) and the engine's own event names that state a
# server's or a platform's fact, by what they claim.
_PURCHASE = "a purchase or subscription"
_EMAIL = "email engagement"
_UNSUBSCRIBE = "an unsubscribe or complaint"
_CRM = "a CRM or deal change"
SERVER_ONLY_NAMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "order completed",
            "order updated",
            "order refunded",
            "order cancelled",
            "order canceled",
            "purchase",
            "purchased",
            "purchase completed",
            "payment succeeded",
            "payment failed",
            "invoice paid",
            "invoice payment failed",
            "subscription started",
            "subscription created",
            "subscription renewed",
            "subscription updated",
            "subscription cancelled",
            "subscription canceled",
            "subscription ended",
            "trial converted",
            "seats changed",
            "refund issued",
        ),
        _PURCHASE,
    ),
    **dict.fromkeys(
        (
            "email sent",
            "email delivered",
            "email opened",
            "email link clicked",
            "email clicked",
            "email bounced",
        ),
        _EMAIL,
    ),
    **dict.fromkeys(
        ("unsubscribed", "email unsubscribed", "email marked as spam", "spam complaint"), _UNSUBSCRIBE
    ),
    **dict.fromkeys(
        (
            "deal created",
            "deal stage changed",
            "deal amount changed",
            "deal won",
            "deal lost",
            "opportunity created",
            "opportunity stage changed",
            "opportunity won",
            "opportunity lost",
            "lead status changed",
            "lifecycle stage changed",
            "sales accepted",
        ),
        _CRM,
    ),
}
# The engine's own types a browser can never be the source of, whatever the event is called.
SERVER_ONLY_TYPES: dict[EventType, str] = {
    EventType.PURCHASE: _PURCHASE,
    EventType.SUBSCRIPTION_STARTED: _PURCHASE,
    EventType.SUBSCRIPTION_RENEWED: _PURCHASE,
    EventType.SUBSCRIPTION_CANCELLED: _PURCHASE,
    EventType.EMAIL_DELIVERED: _EMAIL,
    EventType.EMAIL_OPENED: _EMAIL,
    EventType.EMAIL_CLICKED: _EMAIL,
    EventType.EMAIL_BOUNCED: _EMAIL,
    EventType.EMAIL_UNSUBSCRIBED: _UNSUBSCRIBE,
    EventType.EMAIL_SPAM_COMPLAINT: _UNSUBSCRIBE,
    EventType.DEAL_STAGE_CHANGED: _CRM,
    EventType.SALES_ACCEPTED: _CRM,
    EventType.SALES_DISQUALIFIED: _CRM,
    EventType.MEETING_BOOKED: "a meeting booked (the calendar's webhook reports it)",
    EventType.MEETING_CANCELLED: "a meeting cancelled (the calendar's webhook reports it)",
    EventType.LEAD_AD_SUBMITTED: "a lead ad (the ad platform's webhook reports it)",
}


def server_only_claim(event_type: EventType, name: str | None) -> str | None:
    """What the event would assert that a browser cannot know, or None when a browser may send it."""
    claim = SERVER_ONLY_TYPES.get(event_type)
    if claim is None and name and event_type is EventType.TRACK:
        claim = SERVER_ONLY_NAMES.get(_name_key(name))
    return claim


def refusal_of_claim(name: str | None, event_type: EventType, claim: str) -> str:
    label = f"`{name}`" if name else f"a `{event_type.value}` event"
    return (
        f"{label} is {claim}: a browser key cannot report it (a server key or the platform's "
        "signed webhook does); nothing was recorded"
    )


@dataclass(frozen=True)
class IdsNamed:
    """The ids one event names, as identity resolution reads them."""

    email: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None


Owners = Mapping[tuple[str, str], str]


def merge_refusal(ids: IdsNamed, owners: Owners, leads_with_email: set[str]) -> str | None:
    """Why this event may not come from a browser because it would join two leads, one of which
    already has an email, or None.

    A lead with an email is someone: a public key that could fold them into another lead (by
    naming their userId or their browser's anonymousId beside another email, or by an alias)
    could take over their history. So a browser links a visitor to a lead only when the visitor's
    ids are new, belong to no one with an email, or already belong to that lead.
    `owners` maps (kind, value) to the lead holding it; `leads_with_email` are the leads known by
    an email.
    """
    target = _target(ids, owners)
    if target is None:
        return None  # an anonymous visitor's event names no lead to join
    if ids.previous_id and ids.user_id:
        others = [owners.get(("user", ids.previous_id)), owners.get(("anonymous", ids.previous_id))]
    else:
        others = [
            owners.get(("user", ids.user_id)) if ids.user_id else None,
            owners.get(("anonymous", ids.anonymous_id)) if ids.anonymous_id else None,
        ]
    for other in others:
        if other is not None and other != target and other in leads_with_email:
            return (
                "these ids belong to a lead that already has an email, and this event would join "
                "them to another: a browser key cannot merge identified leads (a server key can); "
                "nothing was recorded"
            )
    return None


def wanted_owners(ids: IdsNamed) -> set[tuple[str, str]]:
    """The (kind, value) pairs `merge_refusal` needs looked up."""
    pairs = {("email", ids.email), ("user", ids.user_id), ("anonymous", ids.anonymous_id)}
    if ids.previous_id:
        pairs |= {("user", ids.previous_id), ("anonymous", ids.previous_id)}
    return {(kind, value) for kind, value in pairs if value}


def merge_refusals(
    named: list[IdsNamed], owners: Owners, leads_with_email: set[str]
) -> list[tuple[int, str]]:
    """`merge_refusal` for each event of a request in order, each seeing the links the ones before
    it would make (a batch cannot link an id to one lead and then hand it to another)."""
    links = dict(owners)
    emailed = set(leads_with_email)
    refusals: list[tuple[int, str]] = []
    for index, ids in enumerate(named):
        reason = merge_refusal(ids, links, emailed)
        if reason is not None:
            refusals.append((index, reason))
            continue
        target = _target(ids, links)
        if target is None:
            continue
        if ids.email:
            emailed.add(target)
        for pair in wanted_owners(ids):
            links.setdefault(pair, target)
    return refusals


def _target(ids: IdsNamed, owners: Owners) -> str | None:
    if ids.previous_id and ids.user_id:
        return owners.get(("user", ids.user_id)) or lead_id_for_user(ids.user_id)
    if ids.email:
        return owners.get(("email", ids.email)) or lead_id_for_email(ids.email)
    if ids.user_id:
        return owners.get(("user", ids.user_id)) or lead_id_for_user(ids.user_id)
    return None


def fill_only(values: Mapping[str, object], on_record: Mapping[str, object]) -> dict[str, object]:
    """What a browser says about a known person or account, less what is already on record: it
    may fill a blank (a title, an industry) but not rewrite one, so a page cannot make someone a
    CEO of a larger company than the one their form or the CRM said."""
    return {key: value for key, value in values.items() if on_record.get(key) in (None, "")}
