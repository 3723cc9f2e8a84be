"""Forms a site embeds without a backend: the definition a page renders, and the bot check.

The definition says what to draw (fields, labels, which are required, the consent text) and
carries a fill token: the time it was handed out, signed by the API. A person takes seconds to fill
a form; a bot posts at once, or never asked for the form at all, or fills the honeypot field a
person never sees. Such a post is answered as if accepted (a bot told it failed tries again,
differently) and nothing is recorded. Pure: callers pass the time and the signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from domain.forms import FormDefinition, required_fields

HONEYPOT_FIELD = "homepage_url"
TOKEN_FIELD = "_fill_token"
DEFAULT_MIN_FILL = timedelta(seconds=3)
TOKEN_LIFETIME = timedelta(hours=24)
DEFAULT_CONSENT_TEXT = "Yes, send me product news and offers by email. I can unsubscribe at any time."
# What a person fills in, in the order a page shows it; the rest a page fills itself.
VISIBLE_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("email", "Work email", "email", "email"),
    ("first_name", "First name", "text", "given-name"),
    ("last_name", "Last name", "text", "family-name"),
    ("company", "Company", "text", "organization"),
    ("job_title", "Job title", "text", "organization-title"),
    ("phone", "Phone", "tel", "tel"),
)
HIDDEN_FIELDS = ("lead_source", "utm_source", "utm_medium", "utm_campaign", "anonymous_id")


class FieldView(BaseModel):
    name: str
    label: str
    type: str
    required: bool
    autocomplete: str


class ConsentView(BaseModel):
    name: str = "consent"
    text: str
    required: bool = False


class BotProtection(BaseModel):
    honeypot: str = HONEYPOT_FIELD
    token_field: str = TOKEN_FIELD
    token: str
    min_fill_seconds: float


class FormPage(BaseModel):
    """GET /v1/forms/{form_id}: what a page needs to render the form and post it."""

    form_id: str
    name: str
    fields: list[FieldView]
    hidden: list[str] = Field(default_factory=lambda: list(HIDDEN_FIELDS))
    required: list[str]
    consent: ConsentView
    bot_protection: BotProtection
    submit: str
    abandon: str


def form_page(
    form: FormDefinition,
    *,
    now: datetime,
    secret: bytes,
    consent_text: str | None = None,
    min_fill: timedelta = DEFAULT_MIN_FILL,
    labels: dict[str, str] | None = None,
) -> FormPage:
    required = required_fields(form)
    labels = labels or {}
    return FormPage(
        form_id=form.form_id,
        name=form.name,
        fields=[
            FieldView(
                name=name,
                label=labels.get(name, label),
                type=kind,
                required=name in required,
                autocomplete=auto,
            )
            for name, label, kind, auto in VISIBLE_FIELDS
        ],
        required=sorted(required),
        consent=ConsentView(text=consent_text or DEFAULT_CONSENT_TEXT),
        bot_protection=BotProtection(
            token=fill_token(form.form_id, now, secret), min_fill_seconds=min_fill.total_seconds()
        ),
        submit=f"/v1/forms/{form.form_id}/submissions",
        abandon=f"/v1/forms/{form.form_id}/abandonments",
    )


def _signature(form_id: str, issued_ms: int, secret: bytes) -> str:
    return hmac.new(secret, f"{form_id}:{issued_ms}".encode(), hashlib.sha256).hexdigest()[:32]


def fill_token(form_id: str, now: datetime, secret: bytes) -> str:
    issued_ms = int(now.timestamp() * 1000)
    return f"{issued_ms}.{_signature(form_id, issued_ms, secret)}"


def bot_reason(
    form_id: str,
    fields: dict[str, Any],
    *,
    now: datetime,
    secret: bytes,
    min_fill: timedelta = DEFAULT_MIN_FILL,
) -> str | None:
    """Why this post from a page looks like a bot's, or None when a person could have made it."""
    if fields.get(HONEYPOT_FIELD) not in (None, ""):
        return "honeypot filled"
    token = fields.get(TOKEN_FIELD)
    if not isinstance(token, str) or "." not in token:
        return "no fill token (the form was never fetched)"
    issued, _, signature = token.partition(".")
    if not issued.isdigit() or not hmac.compare_digest(signature, _signature(form_id, int(issued), secret)):
        return "forged fill token"
    elapsed = now - datetime.fromtimestamp(int(issued) / 1000, tz=now.tzinfo)
    if elapsed < min_fill:
        return f"filled in {elapsed.total_seconds():.1f} s"
    if elapsed > TOKEN_LIFETIME:
        return "fill token expired"
    return None


def without_bot_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in (HONEYPOT_FIELD, TOKEN_FIELD)}
