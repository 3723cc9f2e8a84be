"""The one list of what a journeys worker runs; the worker process and the tests share it.

`journeys new NAME` adds its lines at the `journeys new:` markers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from activities.crm import CrmActivities
from activities.email import EmailActivities
from platforms.hubspot import HubSpotClient
from platforms.klaviyo import KlaviyoClient
from runtime.settings import Settings
from store.repository import LeadStore
from workflows.lead import LeadWorkflow

# journeys new: imports


@dataclass(frozen=True)
class Dependencies:
    """What activities may be built with: settings, the shared HTTP client, the store."""

    settings: Settings
    http: httpx.AsyncClient
    store: LeadStore


def lead_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    settings = deps.settings
    hubspot = HubSpotClient(
        deps.http, base_url=settings.hubspot_url, token=settings.hubspot_token.get_secret_value()
    )
    klaviyo = KlaviyoClient(
        deps.http,
        base_url=settings.klaviyo_url,
        api_key=settings.klaviyo_api_key.get_secret_value(),
        revision=settings.klaviyo_revision,
    )
    crm = CrmActivities(hubspot, deps.store)
    email = EmailActivities(klaviyo, deps.store, default_welcome_list=settings.klaviyo_welcome_list_id)
    return [crm.upsert_contact, email.enroll_welcome]


WORKFLOWS: list[type] = [
    LeadWorkflow,
    # journeys new: workflows
]

ACTIVITY_FACTORIES: list[Callable[[Dependencies], list[Callable[..., Any]]]] = [
    lead_activities,
    # journeys new: activities
]


def all_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    return [function for factory in ACTIVITY_FACTORIES for function in factory(deps)]
