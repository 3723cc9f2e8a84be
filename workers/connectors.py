"""The connectors a worker's activities use: one client per port, chosen by the settings.

Every client shares the worker's HTTP client, the throttle (PostgreSQL-backed, so every worker
draws from the same buckets) and the stats recorder behind integration health.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from domain.email_templates import load_email_templates
from domain.ledger import WriteLedger
from domain.ratelimits import Throttle
from platforms.base import CallObserver
from platforms.enrichment import CompanyEnrichmentClient
from platforms.ga4 import GA4Client
from platforms.google_calendar import GoogleCalendarClient
from platforms.hubspot import HubSpotClient
from platforms.kit import KitClient
from platforms.klaviyo import KlaviyoClient
from platforms.off import AnalyticsOff, CalendarOff, EnrichmentOff
from platforms.outbound_webhook import OutboundWebhookClient
from platforms.ports import (
    AnalyticsPort,
    CalendarPort,
    ChatPort,
    CrmPort,
    EmailPort,
    EnrichmentPort,
    WebhookPort,
)
from platforms.salesforce import SalesforceClient
from platforms.slack import SlackClient, SlackWebhookClient
from runtime.settings import Settings


@dataclass(frozen=True)
class Connectors:
    crm: CrmPort
    email: EmailPort
    chat: ChatPort
    calendar: CalendarPort
    analytics: AnalyticsPort
    webhooks: WebhookPort
    enrichment: EnrichmentPort


def build_connectors(
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    throttle: Throttle | None = None,
    observer: CallObserver | None = None,
    ledger: WriteLedger | None = None,
) -> Connectors:
    templates = load_email_templates(settings.email_templates_file)
    hubspot = HubSpotClient(
        http,
        base_url=settings.hubspot_url,
        token=settings.hubspot_token.get_secret_value(),
        throttle=throttle,
        observer=observer,
        templates=templates.hubspot,
    )
    crm: CrmPort
    if settings.crm_provider == "salesforce":
        crm = SalesforceClient(
            http,
            base_url=settings.salesforce_url,
            client_id=settings.salesforce_client_id.get_secret_value(),
            client_secret=settings.salesforce_client_secret.get_secret_value(),
            api_version=settings.salesforce_api_version,
            person_object=settings.salesforce_person_object,
            throttle=throttle,
            observer=observer,
        )
    else:
        crm = hubspot
    email: EmailPort
    if settings.email_provider == "hubspot":
        email = hubspot
    elif settings.email_provider == "kit":
        kit_key, kit_token = settings.kit_credentials()
        email = KitClient(
            http,
            base_url=settings.kit_url,
            api_key=kit_key,
            access_token=kit_token,
            templates=templates.kit,
            throttle=throttle,
            observer=observer,
        )
    else:
        email = KlaviyoClient(
            http,
            base_url=settings.klaviyo_url,
            api_key=settings.klaviyo_api_key.get_secret_value(),
            revision=settings.klaviyo_revision,
            throttle=throttle,
            observer=observer,
        )
    chat: ChatPort
    if settings.chat_provider == "slack_webhook":
        chat = SlackWebhookClient(
            http, webhook_url=settings.slack_incoming_webhook_url, throttle=throttle, observer=observer
        )
    else:
        chat = SlackClient(
            http,
            base_url=settings.slack_url,
            token=settings.slack_bot_token.get_secret_value(),
            throttle=throttle,
            observer=observer,
            ledger=ledger,
        )
    calendar: CalendarPort = (
        CalendarOff()
        if "google_calendar" in settings.platforms_off
        else GoogleCalendarClient(
            http,
            base_url=settings.google_calendar_url,
            token_url=settings.google_oauth_token_url,
            client_id=settings.google_client_id.get_secret_value(),
            client_secret=settings.google_client_secret.get_secret_value(),
            refresh_token=settings.google_refresh_token.get_secret_value(),
            throttle=throttle,
            observer=observer,
        )
    )
    analytics: AnalyticsPort = (
        AnalyticsOff()
        if "ga4" in settings.platforms_off
        else GA4Client(
            http,
            base_url=settings.ga4_url,
            measurement_id=settings.ga4_measurement_id,
            api_secret=settings.ga4_api_secret.get_secret_value(),
            throttle=throttle,
            observer=observer,
        )
    )
    webhooks = OutboundWebhookClient(
        http,
        secret=settings.outbound_webhook_secret.get_secret_value(),
        throttle=throttle,
        observer=observer,
        # The dev stack's receivers are on this machine; nowhere else may a webhook go there.
        allow_private=settings.environment == "dev",
    )
    enrichment: EnrichmentPort = (
        EnrichmentOff()
        if "enrichment" in settings.platforms_off
        else CompanyEnrichmentClient(
            http,
            base_url=settings.enrichment_url,
            api_key=settings.enrichment_api_key.get_secret_value(),
            throttle=throttle,
            observer=observer,
        )
    )
    return Connectors(
        crm=crm,
        email=email,
        chat=chat,
        calendar=calendar,
        analytics=analytics,
        webhooks=webhooks,
        enrichment=enrichment,
    )
