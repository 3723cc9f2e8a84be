"""Form definitions as data and the seed's data-quality rules, applied field by field."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, Field

from domain.ids import normalize_email

MAX_FIELD_LENGTH = 255
STANDARD_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "phone",
    "lead_source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "consent",
    "anonymous_id",
)
# The submission fields that are also the lead's profile columns.
PROFILE_FIELDS = ("first_name", "last_name", "company", "job_title", "phone", "lead_source")
_CUSTOM_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_CUSTOM_FIELDS = 20


class FormDefinition(BaseModel):
    """One form, as marketing ops configure it in `config/forms.toml`."""

    form_id: str
    name: str
    b2b: bool = True
    required: list[str] = Field(default_factory=lambda: ["email", "lead_source"])
    default_phone_region: str = "US"
    welcome_list: str | None = None
    # Consent counts only once the person confirms it from the email the engine sends them.
    double_opt_in: bool = False


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class NormalizedSubmission(BaseModel):
    """A submission that passed every rule, in canonical form (lower-case email, E.164 phone)."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    phone: str | None = None
    lead_source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    consent: bool = False
    anonymous_id: str | None = None
    custom_fields: dict[str, str] = Field(default_factory=dict)

    @property
    def email_domain(self) -> str:
        return self.email.rsplit("@", 1)[-1]


def required_fields(form: FormDefinition) -> set[str]:
    required = set(form.required) | {"email", "lead_source"}
    if form.b2b:
        required |= {"company", "job_title"}
    return required


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError
    text = str(value).strip()
    return text or None


def _checked_text(name: str, value: Any, errors: list[FieldError]) -> tuple[bool, str | None]:
    """The field as trimmed text, or False with the reason added to `errors`."""
    try:
        text = _as_text(value)
    except TypeError:
        errors.append(FieldError(field=name, message="must be a string", type="type_error"))
        return False, None
    if text is not None and len(text) > MAX_FIELD_LENGTH:
        errors.append(
            FieldError(field=name, message=f"must be at most {MAX_FIELD_LENGTH} characters", type="too_long")
        )
        return False, None
    return True, text


def validate_submission(
    form: FormDefinition, raw: dict[str, Any], *, required: set[str] | None = None
) -> tuple[NormalizedSubmission | None, list[FieldError]]:
    """Every violation is reported, not just the first, so a form can highlight all its bad fields."""
    errors: list[FieldError] = []
    values: dict[str, Any] = {}

    for name in STANDARD_FIELDS:
        if name == "consent":
            continue
        valid, text = _checked_text(name, raw.get(name), errors)
        if valid:
            values[name] = text

    for name in sorted(required_fields(form) if required is None else required):
        if values.get(name) is None and not any(e.field == name for e in errors):
            reason = " on a B2B form" if name in ("company", "job_title") else ""
            errors.append(FieldError(field=name, message=f"is required{reason}", type="missing"))

    if values.get("email"):
        try:
            checked = validate_email(values["email"], check_deliverability=False)
            values["email"] = normalize_email(checked.normalized)
        except EmailNotValidError as exc:
            errors.append(FieldError(field="email", message=str(exc), type="invalid_email"))

    if values.get("phone"):
        try:
            number = phonenumbers.parse(values["phone"], form.default_phone_region)
            if not phonenumbers.is_valid_number(number):
                raise phonenumbers.NumberParseException(0, "not a valid number")
            values["phone"] = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            errors.append(
                FieldError(field="phone", message="is not a valid phone number", type="invalid_phone")
            )

    consent = raw.get("consent", False)
    if consent is None:
        consent = False
    if not isinstance(consent, bool):
        errors.append(FieldError(field="consent", message="must be true or false", type="type_error"))
    values["consent"] = consent is True

    custom: dict[str, str] = {}
    for name, value in raw.items():
        if name in STANDARD_FIELDS:
            continue
        if not _CUSTOM_FIELD_NAME.match(name):
            errors.append(
                FieldError(field=name, message="is not a valid field name (a-z, 0-9, _)", type="invalid_name")
            )
            continue
        valid, text = _checked_text(name, value, errors)
        if valid and text is not None:
            custom[name] = text
    if len(custom) > MAX_CUSTOM_FIELDS:
        errors.append(
            FieldError(
                field="custom_fields",
                message=f"at most {MAX_CUSTOM_FIELDS} extra fields",
                type="too_many",
            )
        )

    if errors:
        return None, errors
    return NormalizedSubmission(**values, custom_fields=custom), []


def validate_partial(
    form: FormDefinition, raw: dict[str, Any]
) -> tuple[NormalizedSubmission | None, list[FieldError]]:
    """A form left half-filled: only a valid email is required; what else is there must be valid."""
    return validate_submission(form, raw, required={"email"})
