"""Multi-touch attribution, as pure functions: touchpoints grouped into channels (the way GA4's
default channel grouping does), the classic models (first touch, last touch, linear, time decay,
U-shaped, W-shaped) and the seed's stage view, and revenue, pipeline and ROI by channel and campaign.

A journey is one lead's touchpoints and milestones (lead created, opportunity created, closed won
with its revenue). A model gives each touchpoint a weight; weights sum to 1 per journey, so the
revenue (or the conversion) a journey brings is shared out exactly.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

Model = Literal["first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped", "stage"]
CLOCK_SKEW = timedelta(minutes=1)
MODELS: tuple[Model, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "u_shaped",
    "w_shaped",
    "stage",
)

# --- channels ---------------------------------------------------------------------------------------

SEARCH_SITES = ("google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "naver", "search")
SOCIAL_SITES = (
    "facebook",
    "fb",
    "instagram",
    "linkedin",
    "lnkd.in",
    "twitter",
    "t.co",
    "x.com",
    "reddit",
    "pinterest",
    "tiktok",
    "threads",
    "mastodon",
    "quora",
)
VIDEO_SITES = ("youtube", "vimeo", "twitch", "wistia")
_PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
_SOCIAL_MEDIUM = {"social", "social-network", "social-media", "sm", "social network", "social media"}
_EMAIL_MEDIUM = {"email", "e-mail", "e_mail", "e mail", "newsletter"}
_DISPLAY_MEDIUM = {"display", "banner", "expandable", "interstitial", "cpm"}


def _is(site_list: tuple[str, ...], value: str) -> bool:
    return any(site in value for site in site_list)


def channel_of(source: str | None, medium: str | None, referrer: str | None = None) -> str:
    """The default channel group of a touch (GA4's rules, in its order of precedence)."""
    src = (source or "").strip().lower()
    med = (medium or "").strip().lower()
    ref = (referrer or "").strip().lower()
    if src in ("(direct)", "direct") or (not src and not med and not ref):
        return "Direct"
    if _PAID_MEDIUM.match(med):
        if _is(SEARCH_SITES, src):
            return "Paid Search"
        if _is(SOCIAL_SITES, src):
            return "Paid Social"
        if _is(VIDEO_SITES, src):
            return "Paid Video"
        return "Paid Other"
    if med in _DISPLAY_MEDIUM:
        return "Display"
    if med in _EMAIL_MEDIUM or src in _EMAIL_MEDIUM:
        return "Email"
    if med == "affiliate":
        return "Affiliates"
    if med == "organic" or (_is(SEARCH_SITES, src) and not med):
        return "Organic Search"
    if med in _SOCIAL_MEDIUM or _is(SOCIAL_SITES, src) or (not src and _is(SOCIAL_SITES, ref)):
        return "Organic Social"
    if "video" in med or _is(VIDEO_SITES, src):
        return "Organic Video"
    if not src and ref and _is(SEARCH_SITES, ref):
        return "Organic Search"
    if med in ("referral", "app", "link") or ref or src:
        return "Referral"
    return "Unassigned"


# --- journeys ---------------------------------------------------------------------------------------


class Touchpoint(BaseModel):
    at: datetime
    channel: str
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    term: str | None = None
    landing_page: str | None = None
    kind: str = "visit"


class Journey(BaseModel):
    lead_id: str
    touchpoints: list[Touchpoint] = Field(default_factory=list)
    lead_created_at: datetime | None = None
    mql_at: datetime | None = None
    opportunity_at: datetime | None = None
    opportunity_amount: float = 0.0
    closed_at: datetime | None = None
    revenue: float = 0.0

    def sorted_touches(self, until: datetime | None = None) -> list[Touchpoint]:
        touches = sorted(self.touchpoints, key=lambda t: t.at)
        return [t for t in touches if until is None or t.at <= until]


def _index_at_or_before(touches: list[Touchpoint], moment: datetime | None) -> int | None:
    """The last touch at or before a milestone: the one that brought the lead to it."""
    if moment is None:
        return None
    found = None
    for index, touch in enumerate(touches):
        if touch.at <= moment:
            found = index
    return found


def _positional(n: int, keys: list[tuple[int | None, float]], rest: float) -> list[float]:
    """Weights with fixed shares on key positions (merged when they coincide) and `rest` spread over
    the others; with nothing else to spread over, the key shares are scaled up to sum to 1."""
    weights = [0.0] * n
    present = [(i, share) for i, share in keys if i is not None]
    for index, share in present:
        weights[index] += share
    keyed = {i for i, _ in present}
    middle = [i for i in range(n) if i not in keyed]
    if middle:
        missing = sum(share for i, share in keys if i is None)
        for index in middle:
            weights[index] += (rest + missing) / len(middle)
    total = sum(weights)
    return [w / total for w in weights] if total else [1.0 / n] * n


def stage_of(journey: Journey, touch: Touchpoint, first: Touchpoint) -> str:
    """The seed's stage view: first touch -> lead creation -> nurture -> sales touch -> closing ->
    expansion."""
    if touch is first:
        return "first_touch"
    if journey.closed_at and touch.at > journey.closed_at:
        return "expansion"
    if journey.lead_created_at is None or touch.at <= journey.lead_created_at:
        return "lead_creation"
    sales_from = journey.opportunity_at or journey.mql_at
    if sales_from is None or touch.at <= sales_from:
        return "nurture"
    if journey.closed_at is not None and touch.at >= journey.closed_at - timedelta(days=7):
        return "closing"
    return "sales_touch"


STAGES = ("first_touch", "lead_creation", "nurture", "sales_touch", "closing", "expansion")


def weights(
    journey: Journey,
    model: Model,
    *,
    until: datetime | None = None,
    half_life: timedelta = timedelta(days=7),
) -> list[tuple[Touchpoint, float]]:
    """Each touchpoint up to `until` (default: the close, else every touch) with its share of credit.
    Weights sum to 1, or the list is empty when the journey had no touchpoint."""
    end = until if until is not None else journey.closed_at
    # Platforms stamp their events to the second (Stripe's `created`): a touch in the same minute as
    # the close came before it.
    touches = journey.sorted_touches(end + CLOCK_SKEW if end is not None and model != "stage" else None)
    n = len(touches)
    if n == 0:
        return []
    if model == "first_touch":
        shares = [1.0] + [0.0] * (n - 1)
    elif model == "last_touch":
        shares = [0.0] * (n - 1) + [1.0]
    elif model == "linear":
        shares = [1.0 / n] * n
    elif model == "time_decay":
        moment = end or touches[-1].at
        raw = [0.5 ** ((moment - t.at) / half_life) for t in touches]
        shares = [r / sum(raw) for r in raw]
    elif model == "u_shaped":
        lead = _index_at_or_before(touches, journey.lead_created_at)
        if lead is None:
            lead = n - 1
        shares = _positional(n, [(0, 0.4), (lead, 0.4)], 0.2)
    elif model == "w_shaped":
        lead = _index_at_or_before(touches, journey.lead_created_at)
        opportunity = _index_at_or_before(touches, journey.opportunity_at)
        shares = _positional(n, [(0, 0.3), (lead, 0.3), (opportunity, 0.3)], 0.1)
    else:
        first = touches[0]
        by_stage: dict[str, list[int]] = defaultdict(list)
        for index, touch in enumerate(touches):
            by_stage[stage_of(journey, touch, first)].append(index)
        shares = [0.0] * n
        for indexes in by_stage.values():
            for index in indexes:
                shares[index] = 1.0 / len(by_stage) / len(indexes)
    return list(zip(touches, shares, strict=True))


# --- reports ----------------------------------------------------------------------------------------


class Credit(BaseModel):
    channel: str
    campaign: str | None = None
    revenue: float = 0.0
    conversions: float = 0.0
    pipeline_influenced: float = 0.0
    leads_touched: int = 0
    spend: float | None = None
    roi: float | None = None


def attribute(
    journeys: Iterable[Journey],
    model: Model,
    *,
    by_campaign: bool = False,
    half_life: timedelta = timedelta(days=7),
    spend: dict[str, float] | None = None,
) -> list[Credit]:
    """Revenue and closed conversions shared by the model; pipeline influenced (every opportunity's
    amount, counted once for each channel that touched it before it opened); ROI from spend."""
    rows: dict[tuple[str, str | None], Credit] = {}

    def row(touch: Touchpoint) -> Credit:
        key = (touch.channel, touch.campaign if by_campaign else None)
        if key not in rows:
            rows[key] = Credit(channel=key[0], campaign=key[1])
        return rows[key]

    for journey in journeys:
        if journey.closed_at is not None:
            for touch, share in weights(journey, model, half_life=half_life):
                credit = row(touch)
                credit.revenue += share * journey.revenue
                credit.conversions += share
        if journey.opportunity_at is not None and journey.opportunity_amount:
            for key in {
                (t.channel, t.campaign if by_campaign else None)
                for t in journey.sorted_touches(journey.opportunity_at)
            }:
                rows.setdefault(
                    key, Credit(channel=key[0], campaign=key[1])
                ).pipeline_influenced += journey.opportunity_amount
        for key in {(t.channel, t.campaign if by_campaign else None) for t in journey.touchpoints}:
            rows.setdefault(key, Credit(channel=key[0], campaign=key[1])).leads_touched += 1
    result = sorted(rows.values(), key=lambda c: (-c.revenue, c.channel, c.campaign or ""))
    for credit in result:
        credit.revenue = round(credit.revenue, 2)
        credit.conversions = round(credit.conversions, 4)
        if spend and not by_campaign and credit.channel in spend:
            credit.spend = spend[credit.channel]
            credit.roi = round((credit.revenue - credit.spend) / credit.spend, 4) if credit.spend else None
    return result
