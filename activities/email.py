from __future__ import annotations

from temporalio import activity

from activities.contacts import submission_contact
from activities.errors import platform_errors
from domain.lead import EnrollWelcomeInput, EnrollWelcomeResult
from platforms.klaviyo import KlaviyoClient
from store.repository import LeadStore


class EmailActivities:
    def __init__(self, klaviyo: KlaviyoClient, store: LeadStore, *, default_welcome_list: str) -> None:
        self._klaviyo = klaviyo
        self._store = store
        self._default_welcome_list = default_welcome_list

    @activity.defn(name="email.enroll_welcome")
    async def enroll_welcome(self, data: EnrollWelcomeInput) -> EnrollWelcomeResult:
        """Upserts the profile, then subscribes it to the welcome list, which starts the welcome flow.

        Without marketing consent the profile is kept up to date but never subscribed.
        """
        lead, submission, email = await submission_contact(self._store, data.submission_id, data.lead_id)
        attributes = {
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "organization": lead.company,
            "title": lead.job_title,
            "phone_number": lead.phone,
        }
        properties = {
            "journeys_lead_id": data.lead_id,
            "lead_source": submission.fields.get("lead_source"),
            "utm_campaign": submission.fields.get("utm_campaign"),
        }
        async with platform_errors():
            profile = await self._klaviyo.upsert_profile(
                email,
                {k: v for k, v in attributes.items() if v is not None},
                {k: v for k, v in properties.items() if v is not None},
                idempotency_key=f"{data.idempotency_key}:profile",
            )
            if not lead.consent:
                return EnrollWelcomeResult(
                    profile_id=profile.id, enrolled=False, skipped_reason="no marketing consent"
                )
            await self._klaviyo.subscribe_to_list(
                email,
                data.list_id or self._default_welcome_list,
                source=f"form:{submission.form_id}",
                idempotency_key=f"{data.idempotency_key}:subscribe",
            )
        return EnrollWelcomeResult(profile_id=profile.id, enrolled=True)
