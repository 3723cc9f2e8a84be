import pytest

from domain.forms import FormDefinition, validate_submission

B2B = FormDefinition(form_id="demo", name="Demo", b2b=True)
B2C = FormDefinition(form_id="newsletter", name="Newsletter", b2b=False)
GOOD = {
    "email": "  Ada@Example-Corp.COM ",
    "first_name": "Ada",
    "company": "Example Corp",
    "job_title": "CTO",
    "lead_source": "webinar",
    "phone": "+44 20 7946 0958",
    "consent": True,
}


def fields_of(errors):
    return sorted(e.field for e in errors)


def test_a_good_submission_is_normalized():
    submission, errors = validate_submission(B2B, GOOD)
    assert errors == []
    assert submission is not None
    assert submission.email == "ada@example-corp.com"
    assert submission.phone == "+442079460958"
    assert submission.consent is True
    assert submission.email_domain == "example-corp.com"


@pytest.mark.parametrize(
    ("change", "bad_fields"),
    [
        ({"email": None}, ["email"]),
        ({"email": "not-an-email"}, ["email"]),
        ({"email": "a@b"}, ["email"]),
        ({"company": ""}, ["company"]),
        ({"job_title": "   "}, ["job_title"]),
        ({"lead_source": None}, ["lead_source"]),
        ({"phone": "12"}, ["phone"]),
        ({"phone": "call me maybe"}, ["phone"]),
        ({"consent": "yes"}, ["consent"]),
        ({"email": ["a@b.com"]}, ["email"]),
        ({"first_name": "x" * 256}, ["first_name"]),
        ({"Bad Field!": "x"}, ["Bad Field!"]),
        ({"email": "nope", "company": None, "job_title": None}, ["company", "email", "job_title"]),
    ],
)
def test_every_violation_is_reported_per_field(change, bad_fields):
    submission, errors = validate_submission(B2B, {**GOOD, **change})
    assert submission is None
    assert fields_of(errors) == bad_fields
    assert all(e.message for e in errors)


def test_b2c_forms_do_not_require_company_or_title():
    submission, errors = validate_submission(B2C, {"email": "bob@gmail.com", "lead_source": "footer"})
    assert errors == []
    assert submission is not None and submission.company is None


def test_a_national_number_uses_the_form_region():
    submission, _ = validate_submission(B2B, {**GOOD, "phone": "(415) 555-2671"})
    assert submission is not None and submission.phone == "+14155552671"


def test_extra_fields_are_kept_as_custom_fields():
    submission, _ = validate_submission(B2B, {**GOOD, "team_size": 40, "interest": "pricing"})
    assert submission is not None
    assert submission.custom_fields == {"team_size": "40", "interest": "pricing"}
