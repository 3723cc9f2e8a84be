from __future__ import annotations

from temporalio import activity

from activities.contacts import submission_contact
from activities.errors import platform_errors
from domain.lead import UpsertContactInput, UpsertContactResult
from platforms.hubspot import HubSpotClient
from store.repository import LeadStore


class CrmActivities:
    def __init__(self, hubspot: HubSpotClient, store: LeadStore) -> None:
        self._hubspot = hubspot
        self._store = store

    @activity.defn(name="crm.upsert_contact")
    async def upsert_contact(self, data: UpsertContactInput) -> UpsertContactResult:
        lead, submission, email = await submission_contact(self._store, data.submission_id, data.lead_id)
        properties = {
            "firstname": lead.first_name,
            "lastname": lead.last_name,
            "company": lead.company,
            "jobtitle": lead.job_title,
            "phone": lead.phone,
            "lifecyclestage": data.lifecycle_stage.value,
            "journeys_lead_id": data.lead_id,
            "journeys_lead_source": submission.fields.get("lead_source"),
            "journeys_utm_source": submission.fields.get("utm_source"),
            "journeys_utm_medium": submission.fields.get("utm_medium"),
            "journeys_utm_campaign": submission.fields.get("utm_campaign"),
        }
        async with platform_errors():
            contact = await self._hubspot.upsert_contact(
                email,
                {k: v for k, v in properties.items() if v is not None},
                idempotency_key=data.idempotency_key,
            )
        await self._store.link_identity("hubspot_contact", contact.id, data.lead_id)
        return UpsertContactResult(contact_id=contact.id, created=contact.created)
