"""The one list of what a journeys worker runs; tests and the worker process share it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.crm import CrmActivities
from activities.email import EmailActivities
from workflows.lead import LeadWorkflow

WORKFLOWS: list[type] = [LeadWorkflow]


def activity_functions(crm: CrmActivities, email: EmailActivities) -> list[Callable[..., Any]]:
    return [crm.upsert_contact, email.enroll_welcome]
