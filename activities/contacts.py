"""What the connector activities share: the lead's details from PostgreSQL, turned into what a
platform needs, at the last moment so no PII enters a workflow history."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from temporalio.exceptions import ApplicationError

from domain.connectors import SyncPersonInput
from domain.errors import NOT_FOUND
from domain.text_safety import header_safe
from platforms.ports import Person
from store.models import FormSubmission, Lead
from store.repository import LeadStore


async def submission_contact(
    store: LeadStore, submission_id: str, lead_id: str
) -> tuple[Lead, FormSubmission, str]:
    """The lead, the submission and the email to write; NotFound (not retried) once erased."""
    found = await store.get_submission(submission_id)
    if found is None:
        raise ApplicationError(
            f"submission {submission_id} not found (erased?)", type=NOT_FOUND, non_retryable=True
        )
    lead, submission = found
    if lead.email is None:
        raise ApplicationError(f"lead {lead_id} has no email", type=NOT_FOUND, non_retryable=True)
    return lead, submission, lead.email


async def lead_with_email(store: LeadStore, lead_id: str) -> tuple[Lead, str]:
    """The lead and its email; NotFound (not retried) when erased, merged away or anonymous."""
    lead = await store.get_lead(lead_id)
    if lead is not None and lead.merged_into:
        lead = await store.get_lead(lead.merged_into)
    if lead is None:
        raise ApplicationError(f"lead {lead_id} not found (erased?)", type=NOT_FOUND, non_retryable=True)
    if lead.email is None:
        raise ApplicationError(f"lead {lead_id} has no email", type=NOT_FOUND, non_retryable=True)
    return lead, lead.email


def person_of(lead: Lead, email: str, **overrides: Any) -> Person:
    fields = lead.custom_fields or {}
    return Person(
        email=email,
        lead_id=lead.lead_id,
        first_name=lead.first_name,
        last_name=lead.last_name,
        company=lead.company,
        job_title=lead.job_title,
        phone=lead.phone,
        country=fields.get("country"),
        lead_source=lead.lead_source,
        **{k: v for k, v in overrides.items() if v is not None},
    )


def synced_person(lead: Lead, email: str, data: SyncPersonInput, *, with_owner: bool) -> Person:
    """The person a sync pushes: profile, and stage, score, band (and owner, for a CRM) if given."""
    properties = dict(data.properties)
    if data.score_band:
        properties["journeys_score_band"] = data.score_band
    return person_of(
        lead,
        email,
        lifecycle_stage=data.lifecycle_stage,
        lead_score=data.lead_score,
        owner_id=data.owner_id if with_owner else None,
        properties=properties,
    )


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def personalize(text: str, lead: Lead | None, escape: Callable[[str], str] = header_safe) -> str:
    """Fills `{first_name}`, `{company}` and friends from the profile; unknown names become blank.
    Each value passes `escape` first: what the person typed is made safe for where it goes (one
    line, by default; `slack_escape` for a chat message)."""
    if lead is None or "{" not in text:
        return text
    name = " ".join(p for p in (lead.first_name, lead.last_name) if p)
    values = _Blank(
        {
            key: escape(value)
            for key, value in {
                "first_name": lead.first_name or "",
                "last_name": lead.last_name or "",
                "name": name or (lead.email or ""),
                "company": lead.company or "",
                "job_title": lead.job_title or "",
                "email": lead.email or "",
                "lead_id": lead.lead_id,
            }.items()
        }
    )
    return string.Formatter().vformat(text, (), values)
