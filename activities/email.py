"""Email platform activities: whichever platform the deployment chose, through `EmailPort`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contacts import lead_with_email, person_of, submission_contact, synced_person
from activities.errors import connector_step
from domain.connectors import (
    ListMembershipInput,
    SendEmailInput,
    SendReservationInput,
    SuppressInput,
    SyncPersonInput,
    WriteResult,
)
from domain.consent import CONFIRMATION_TEMPLATE, ConsentRequestInput, confirmation_token
from domain.errors import NO_CONSENT, SEND_REFUSED
from domain.lead import EnrollWelcomeInput, EnrollWelcomeResult
from platforms.ports import EmailMessage, EmailPort
from store.flows import FlowRecorder
from store.health import ConnectorStatsRecorder
from store.repository import LeadStore
from store.sends import SendLedger, SentEmails


class EmailActivities:
    def __init__(
        self,
        email: EmailPort,
        store: LeadStore,
        *,
        default_welcome_list: str,
        stats: ConnectorStatsRecorder | None = None,
        consent_secret: str = "",
        public_url: str = "",
    ) -> None:
        self._email = email
        self._store = store
        self._default_welcome_list = default_welcome_list
        self._stats = stats
        self._flows = FlowRecorder(store.sessions)
        self._sent = SentEmails(store.sessions)
        self._gate = SendLedger(store.sessions)
        self._consent_secret = consent_secret
        self._public_url = public_url.rstrip("/")

    @activity.defn(name="email.enroll_welcome")
    async def enroll_welcome(self, data: EnrollWelcomeInput) -> EnrollWelcomeResult:
        """Upserts the profile, then subscribes it to the welcome list, which starts the welcome flow.

        Without marketing consent the profile is kept up to date but never subscribed.
        """
        lead, submission, email = await submission_contact(self._store, data.submission_id, data.lead_id)
        extra = {
            "lead_source": submission.fields.get("lead_source"),
            "utm_campaign": submission.fields.get("utm_campaign"),
        }
        person = person_of(lead, email, properties={k: str(v) for k, v in extra.items() if v is not None})
        if not lead.consent and getattr(self._email, "upsert_subscribes", False):
            # On platforms where a profile is a subscription, no consent means no profile at all.
            return EnrollWelcomeResult(profile_id="", enrolled=False, skipped_reason="no marketing consent")
        async with connector_step(self._stats, self._email.provider, "email.enroll_welcome"):
            profile = await self._email.upsert_profile(
                person, idempotency_key=f"{data.idempotency_key}:profile"
            )
            if not lead.consent:
                return EnrollWelcomeResult(
                    profile_id=profile.id, enrolled=False, skipped_reason="no marketing consent"
                )
            await self._email.add_to_list(
                email,
                data.list_id or self._default_welcome_list,
                idempotency_key=f"{data.idempotency_key}:subscribe",
            )
        await self._flows.done("form_to_email", data.submission_id, lead.lead_id, submission.received_at)
        return EnrollWelcomeResult(profile_id=profile.id, enrolled=True)

    @activity.defn(name="email.sync_profile")
    async def sync_profile(self, data: SyncPersonInput) -> WriteResult:
        """Score, band and stage as profile properties: the platform's segments are built on them."""
        lead, email = await lead_with_email(self._store, data.lead_id)
        if not lead.consent and getattr(self._email, "upsert_subscribes", False):
            raise ApplicationError(
                f"lead {lead.lead_id} has no marketing consent, and {self._email.provider} profiles "
                "are subscriptions",
                type=NO_CONSENT,
                non_retryable=True,
            )
        person = synced_person(lead, email, data, with_owner=False)
        async with connector_step(self._stats, self._email.provider, "email.sync_profile"):
            return await self._email.upsert_profile(person, idempotency_key=data.idempotency_key)

    @activity.defn(name="email.set_list_membership")
    async def set_list_membership(self, data: ListMembershipInput) -> WriteResult:
        lead, email = await lead_with_email(self._store, data.lead_id)
        async with connector_step(self._stats, self._email.provider, "email.set_list_membership"):
            if data.member:
                if not lead.consent:
                    # Subscribing is a consent decision: without it the journey must not add the lead.
                    raise ApplicationError(
                        f"lead {lead.lead_id} has no marketing consent", type=NO_CONSENT, non_retryable=True
                    )
                return await self._email.add_to_list(
                    email, data.list_id, idempotency_key=data.idempotency_key
                )
            return await self._email.remove_from_list(
                email, data.list_id, idempotency_key=data.idempotency_key
            )

    @activity.defn(name="email.send")
    async def send(self, data: SendEmailInput) -> WriteResult:
        return await self._deliver(data)

    @activity.defn(name="email.ask_for_consent")
    async def ask_for_consent(self, data: ConsentRequestInput) -> WriteResult:
        """Double opt-in's confirmation email: its link confirms this submission's consent."""
        token = confirmation_token(self._consent_secret, data.submission_id, int(time.time()))
        return await self._deliver(
            SendEmailInput(
                lead_id=data.lead_id,
                idempotency_key=data.idempotency_key,
                template_id=CONFIRMATION_TEMPLATE,
                variables={"confirm_url": f"{self._public_url}/v1/consent/confirm?token={token}"},
                purpose="service",
                journey="double_opt_in",
            )
        )

    async def _deliver(self, data: SendEmailInput) -> WriteResult:
        """One sequence email, at most once per idempotency key (see each platform's mechanism);
        recorded as sent, so the engagement the platform reports is attributed to its step.

        Every send passes the send gate here, whichever journey asks (a nurture has reserved its
        send already: the same key is granted again; any other caller is gated now): a refusal
        (no consent for the purpose, unsubscribed, bounced, over the cap) is recorded on the lead
        and raised, not retried, and the platform is never called."""
        lead, email = await lead_with_email(self._store, data.lead_id)
        gate = await self._gate.reserve(
            SendReservationInput(
                lead_id=lead.lead_id,
                idempotency_key=data.idempotency_key,
                journey=data.journey or data.sequence_id or "email",
                marketing=(data.purpose or "marketing") == "marketing",
                purpose=data.purpose or "marketing",
            )
        )
        if gate.status != "granted":
            # A direct send has no later turn to wait for: over the cap, it is refused as well.
            raise ApplicationError(
                f"send refused ({data.purpose or 'marketing'}): {gate.reason}",
                type=SEND_REFUSED,
                non_retryable=True,
            )
        message = EmailMessage(
            to=email,
            template_id=data.template_id,
            variables=data.variables,
            sequence_id=data.sequence_id,
            step_id=data.step_id,
        )
        async with connector_step(self._stats, self._email.provider, "email.send"):
            result = await self._email.send_email(message, idempotency_key=data.idempotency_key)
        await self._sent.record_sent(
            key=data.idempotency_key,
            lead_id=lead.lead_id,
            journey=data.sequence_id or "email",
            provider=self._email.provider,
            sequence_id=data.sequence_id,
            step_id=data.step_id,
            template_id=data.template_id,
            sent_at=datetime.now(UTC),
        )
        return result

    @activity.defn(name="email.suppress")
    async def suppress(self, data: SuppressInput) -> WriteResult:
        _, email = await lead_with_email(self._store, data.lead_id)
        async with connector_step(self._stats, self._email.provider, "email.suppress"):
            return await self._email.suppress(email, data.reason, idempotency_key=data.idempotency_key)

    def all(self) -> list[object]:
        return [
            self.enroll_welcome,
            self.sync_profile,
            self.set_list_membership,
            self.send,
            self.ask_for_consent,
            self.suppress,
        ]
