"""What the platform activities share: the contact details a form submission left in PostgreSQL."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from store.models import FormSubmission, Lead
from store.repository import LeadStore


async def submission_contact(
    store: LeadStore, submission_id: str, lead_id: str
) -> tuple[Lead, FormSubmission, str]:
    """The lead, the submission and the email to write; NotFound (not retried) once erased."""
    found = await store.get_submission(submission_id)
    if found is None:
        raise ApplicationError(
            f"submission {submission_id} not found (erased?)", type="NotFound", non_retryable=True
        )
    lead, submission = found
    if lead.email is None:
        raise ApplicationError(f"lead {lead_id} has no email", type="NotFound", non_retryable=True)
    return lead, submission, lead.email
