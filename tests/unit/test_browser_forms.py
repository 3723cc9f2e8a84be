"""Forms a site embeds: the definition a page renders and the bot check (domain/webforms.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.forms import FormDefinition
from domain.webforms import (
    HONEYPOT_FIELD,
    TOKEN_FIELD,
    bot_reason,
    fill_token,
    form_page,
    without_bot_fields,
)

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SECRET = b"test-secret"
DEMO = FormDefinition(form_id="demo", name="Request a demo", b2b=True)


def test_the_definition_says_what_to_draw_and_what_is_required():
    page = form_page(DEMO, now=NOW, secret=SECRET, consent_text="Email me.", labels={"email": "Email"})
    fields = {f.name: f for f in page.fields}
    assert list(fields) == ["email", "first_name", "last_name", "company", "job_title", "phone"]
    assert fields["email"].label == "Email" and fields["email"].type == "email"
    assert [n for n, f in fields.items() if f.required] == ["email", "company", "job_title"]
    assert "lead_source" in page.required and "lead_source" in page.hidden
    assert page.consent.text == "Email me."
    newsletter = form_page(FormDefinition(form_id="n", name="News", b2b=False), now=NOW, secret=SECRET)
    assert [f.name for f in newsletter.fields if f.required] == ["email"]


def fields_with(token: str, **extra: object) -> dict[str, object]:
    return {"email": "ada@example.com", TOKEN_FIELD: token, **extra}


def test_a_person_filling_the_form_at_a_persons_pace_passes():
    token = fill_token("demo", NOW, SECRET)
    assert bot_reason("demo", fields_with(token), now=NOW + timedelta(seconds=8), secret=SECRET) is None


@pytest.mark.parametrize(
    ("fields", "at", "reason"),
    [
        (fields_with(fill_token("demo", NOW, SECRET), **{HONEYPOT_FIELD: "x"}), 60, "honeypot"),
        (fields_with(fill_token("demo", NOW, SECRET)), 1, "filled in 1.0 s"),
        ({"email": "ada@example.com"}, 60, "never fetched"),
        (fields_with(fill_token("demo", NOW, b"another secret")), 60, "forged"),
        (fields_with(fill_token("other-form", NOW, SECRET)), 60, "forged"),
        (fields_with("1234.abcd"), 60, "forged"),
        (fields_with(fill_token("demo", NOW, SECRET)), 2 * 24 * 3600, "expired"),
    ],
)
def test_what_a_bot_does_is_found(fields: dict[str, object], at: float, reason: str):
    found = bot_reason("demo", fields, now=NOW + timedelta(seconds=at), secret=SECRET)
    assert found is not None and reason in found


def test_the_min_fill_time_is_the_forms_own():
    token = fill_token("demo", NOW, SECRET)
    later = NOW + timedelta(seconds=5)
    assert bot_reason("demo", fields_with(token), now=later, secret=SECRET, min_fill=timedelta(seconds=10))
    assert bot_reason("demo", fields_with(token), now=later, secret=SECRET, min_fill=timedelta(0)) is None


def test_the_bot_check_fields_are_not_the_leads():
    assert without_bot_fields(fields_with("t", **{HONEYPOT_FIELD: ""})) == {"email": "ada@example.com"}
