"""The one list of what a journeys worker runs; the worker process and the tests share it.

`journeys new NAME` adds its lines at the `journeys new:` markers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

import httpx

from activities.account_match import AccountResolver
from activities.accounts import AccountActivities
from activities.analytics import AnalyticsActivities, WebhookActivities
from activities.calendar import CalendarActivities
from activities.crm import CrmActivities
from activities.crm_changes import CrmChangeActivities
from activities.customers import CustomerActivities
from activities.email import EmailActivities
from activities.engagement import EngagementActivities
from activities.experiments import ExperimentActivities
from activities.handoff import HandoffActivities
from activities.notify import NotifyActivities
from activities.qualify import QualifyActivities
from activities.reports import ReportActivities
from domain.accounts import AbmPolicy
from domain.ledger import WriteLedger
from domain.ratelimits import Throttle
from domain.scoring import load_scoring
from domain.sequences import FrequencyCap
from platforms.hubspot import HubSpotClient
from platforms.klaviyo import KlaviyoClient
from platforms.salesforce import SalesforceClient
from runtime.settings import Settings
from store.health import ConnectorStatsRecorder
from store.ingest import IngestStore
from store.repository import LeadStore
from store.rosters import RosterSource
from store.sends import SentEmails
from workers.connectors import Connectors, build_connectors
from workflows.account import AccountJourneyWorkflow
from workflows.connector_steps import ConnectorStepsWorkflow
from workflows.customer import CustomerJourneyWorkflow
from workflows.engagement import EngagementPollWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.lead import LeadWorkflow
from workflows.nurture import NurtureWorkflow
from workflows.onboarding import OnboardingWorkflow
from workflows.reports import NightlyReportsWorkflow

# journeys new: imports


@dataclass(frozen=True)
class Dependencies:
    """What activities may be built with: settings, the shared HTTP client, the store, and the
    throttle and stats recorder every platform client shares."""

    settings: Settings
    http: httpx.AsyncClient
    store: LeadStore
    throttle: Throttle | None = None
    stats: ConnectorStatsRecorder | None = None
    ledger: WriteLedger | None = None

    @cached_property
    def ports(self) -> Connectors:
        """The platform clients, built once for every activity that calls out: one token, one
        owner cache and one rate-limit share per platform, however many activity groups use it."""
        return build_connectors(
            self.settings, self.http, throttle=self.throttle, observer=self.stats, ledger=self.ledger
        )


def connector_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    """Every port's activities, each over the provider the settings chose."""
    ports = deps.ports
    groups: list[Any] = [
        CrmActivities(ports.crm, deps.store, deps.stats),
        EmailActivities(
            ports.email,
            deps.store,
            default_welcome_list=deps.settings.welcome_list_id,
            stats=deps.stats,
            consent_secret=deps.settings.consent_link_secret.get_secret_value(),
            public_url=deps.settings.public_base_url or deps.settings.api_url,
        ),
        NotifyActivities(ports.chat, deps.store, deps.stats),
        CalendarActivities(
            ports.calendar,
            deps.store,
            deps.stats,
            rosters=RosterSource(deps.store.sessions, deps.settings.roster_file),
        ),
        AnalyticsActivities(ports.analytics, deps.stats),
        WebhookActivities(ports.webhooks, deps.stats),
    ]
    return [function for group in groups for function in group.all()]


def qualify_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    """Scoring rules, sequences, lead facts and the send ledger (frequency cap, suppression)."""
    settings = deps.settings
    window = timedelta(days=settings.email_cap_window_days)
    ports = deps.ports
    free_mail = tuple(load_scoring(settings.scoring_file).domains.free_mail)
    qualify = QualifyActivities(
        deps.store.sessions,
        scoring_file=settings.scoring_file,
        sequences_dir=settings.sequences_dir,
        frequency_cap=FrequencyCap(max_sends=settings.email_cap_max_sends, per=window),
        frequency_caps={
            band: FrequencyCap(max_sends=sends, per=window)
            for band, sends in settings.email_cap_by_band.items()
        },
        accounts=AccountResolver(ports.crm, ports.enrichment, free_mail=free_mail),
    )
    return list(qualify.all())  # type: ignore[arg-type]


def handoff_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    """The hand-off: the roster, assignment, the SLA log, and the notes to reps."""
    settings = deps.settings
    ports = deps.ports
    handoff = HandoffActivities(
        deps.store.sessions,
        deps.store,
        chat=ports.chat,
        email=ports.email,
        crm=ports.crm,
        roster_file=settings.roster_file,
        public_url=settings.public_base_url or settings.api_url,
        stats=deps.stats,
    )
    return list(handoff.all())  # type: ignore[arg-type]


def account_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    """Account-based outbound: the targeting policy, and leads' news to their account's journey."""
    settings = deps.settings
    policy = AbmPolicy(
        intent_threshold=settings.abm_intent_threshold,
        min_contacts=settings.abm_min_contacts,
        window=timedelta(days=settings.abm_window_days),
    )
    accounts = AccountActivities(deps.store, policy, task_queue=settings.temporal_task_queue)
    return list(accounts.all())  # type: ignore[arg-type]


def customer_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    """Customer journeys: the policy, the account's CSM, and leads' customer news to their account."""
    settings = deps.settings
    ports = deps.ports
    customers = CustomerActivities(
        deps.store.sessions,
        deps.store,
        crm=ports.crm,
        policy_file=settings.customer_policy_file,
        roster_file=settings.roster_file,
        task_queue=settings.temporal_task_queue,
    )
    return list(customers.all())  # type: ignore[arg-type]


def report_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    """Measurement: the nightly batch (attribution, the integration-health rollup), exposures."""
    settings = deps.settings
    reports = ReportActivities(
        deps.store.sessions,
        spend_file=settings.spend_file,
        half_life=timedelta(days=settings.attribution_half_life_days),
    )
    experiments = ExperimentActivities(deps.store.sessions)
    return [*reports.all(), *experiments.all()]  # type: ignore[list-item]


def engagement_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    """The engagement polls: the email platform's events read and recorded as ingestion does."""
    ports = deps.ports
    ingest = IngestStore(deps.store.sessions, deps.settings.effective_database_url, fast_path_connections=2)
    engagement = EngagementActivities(
        ingest,
        SentEmails(deps.store.sessions),
        klaviyo=ports.email if isinstance(ports.email, KlaviyoClient) else None,
        hubspot=ports.email if isinstance(ports.email, HubSpotClient) else None,
        stats=deps.stats,
    )
    changes = CrmChangeActivities(
        ingest,
        salesforce=ports.crm if isinstance(ports.crm, SalesforceClient) else None,
        hubspot=ports.crm if isinstance(ports.crm, HubSpotClient) else None,
        person_object=deps.settings.salesforce_person_object,
        stats=deps.stats,
    )
    return [*engagement.all(), *changes.all()]  # type: ignore[list-item]


# journeys new: factories

WORKFLOWS: list[type] = [
    LeadWorkflow,
    NurtureWorkflow,
    HandoffWorkflow,
    AccountJourneyWorkflow,
    ConnectorStepsWorkflow,
    CustomerJourneyWorkflow,
    OnboardingWorkflow,
    NightlyReportsWorkflow,
    EngagementPollWorkflow,
    # journeys new: workflows
]

ACTIVITY_FACTORIES: list[Callable[[Dependencies], list[Callable[..., Any]]]] = [
    connector_activities,
    qualify_activities,
    handoff_activities,
    account_activities,
    customer_activities,
    report_activities,
    engagement_activities,
    # journeys new: activities
]


def all_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    return [function for factory in ACTIVITY_FACTORIES for function in factory(deps)]
