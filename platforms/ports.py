"""The ports: what activities ask of a CRM, an email platform, chat, a calendar, analytics and a
webhook receiver, whichever provider a deployment chose.

The idempotency contract every write method keeps: called again with the same
`idempotency_key` after an outcome it never heard (a timeout, a worker crash), it leaves the
platform as one call would have, and answers `created=False` with the same object id. Each
provider keeps it by the strongest means its API offers, named in its module docstring:
an idempotency key the platform honours, a natural key (upsert by email or by an external id
field), a client-chosen object id, or a read before the write. Keys are stable: derived from the
workflow id and the step, never random.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

# Re-exported: the clients import it from here with the ports.
from domain.connectors import SuppressionReason as SuppressionReason
from domain.connectors import WriteResult as WriteResult


class Person(BaseModel):
    """A contact (or a Salesforce lead). Fields left None are not written, so a score change
    can be pushed without touching the name."""

    email: str
    lead_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    phone: str | None = None
    country: str | None = None
    lead_source: str | None = None
    # Our lifecycle stage values (domain.lead.LifecycleStage); each CRM maps them to its own.
    lifecycle_stage: str | None = None
    lead_score: int | None = None
    owner_id: str | None = None
    # Written as given, on top of the mapped fields: the place for a deployment's own properties.
    properties: dict[str, str] = Field(default_factory=dict)


class Company(BaseModel):
    domain: str
    name: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    # The CRM owner (a customer's success manager, an account executive).
    owner_id: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)


class CrmCompany(BaseModel):
    """A company (HubSpot) or account (Salesforce) as the CRM holds it: its id there, the domains it
    is known by, and the firmographics the engine reads (`country` as the CRM spells it)."""

    id: str
    name: str | None = None
    domains: tuple[str, ...] = ()
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    annual_revenue: float | None = None
    owner_id: str | None = None


class Firmographics(BaseModel):
    """What an enrichment provider knows of a company by its domain."""

    domain: str
    name: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    annual_revenue: float | None = None


class EnrichmentPort(Protocol):
    """Company data for companies the CRM does not know (platforms/enrichment.py)."""

    async def company(self, domain: str) -> Firmographics | None: ...


class Deal(BaseModel):
    """`key` is ours and stable (e.g. `handoff-{lead_id}-1`): the deal's natural key."""

    key: str
    name: str
    stage: str
    amount: float | None = None
    currency: str | None = None
    close_date: date | None = None
    owner_id: str | None = None
    person_id: str | None = None
    company_id: str | None = None


class Task(BaseModel):
    subject: str
    body: str = ""
    due_at: datetime
    owner_id: str | None = None
    person_id: str | None = None
    priority: Literal["LOW", "MEDIUM", "HIGH"] = "MEDIUM"


class Note(BaseModel):
    body: str
    occurred_at: datetime
    person_id: str | None = None


class Meeting(BaseModel):
    """A booked meeting logged on the CRM record (the calendar invite itself is the calendar port's)."""

    subject: str
    start: datetime
    end: datetime
    description: str = ""
    owner_id: str | None = None
    person_id: str | None = None


class Owner(BaseModel):
    id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None


class CrmPort(Protocol):
    @property
    def provider(self) -> str: ...

    async def upsert_person(self, person: Person, *, idempotency_key: str) -> WriteResult: ...

    async def upsert_company(self, company: Company, *, idempotency_key: str) -> WriteResult: ...

    async def upsert_deal(self, deal: Deal, *, idempotency_key: str) -> WriteResult: ...

    async def create_task(self, task: Task, *, idempotency_key: str) -> WriteResult: ...

    async def add_note(self, note: Note, *, idempotency_key: str) -> WriteResult: ...

    async def log_meeting(self, meeting: Meeting, *, idempotency_key: str) -> WriteResult: ...

    async def list_owners(self) -> list[Owner]:
        """Every active owner (sales user), all pages read."""
        ...

    async def find_companies(self, *, domain: str | None, name_token: str | None) -> list[CrmCompany]:
        """The companies known by `domain` (their website or company key) or whose name holds the
        word `name_token`: the candidates account matching chooses from."""
        ...


class EmailMessage(BaseModel):
    """One email of a sequence: the platform's template, filled with `variables`."""

    to: str
    template_id: str
    variables: dict[str, Any] = Field(default_factory=dict)
    subject: str | None = None
    sequence_id: str | None = None
    step_id: str | None = None


class EmailPort(Protocol):
    @property
    def provider(self) -> str: ...

    async def upsert_profile(self, person: Person, *, idempotency_key: str) -> WriteResult: ...

    async def add_to_list(self, email: str, list_id: str, *, idempotency_key: str) -> WriteResult:
        """Subscribes with marketing consent (a list, or a tag where the platform has no lists)."""
        ...

    async def remove_from_list(self, email: str, list_id: str, *, idempotency_key: str) -> WriteResult: ...

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> WriteResult: ...

    async def suppress(
        self,
        email: str,
        reason: SuppressionReason,
        *,
        idempotency_key: str,
    ) -> WriteResult: ...


class ChatMessage(BaseModel):
    channel: str
    text: str
    # Slack Block Kit blocks, passed as is; `text` stays the notification fallback.
    blocks: list[dict[str, Any]] | None = None


class ChatPort(Protocol):
    @property
    def provider(self) -> str: ...

    async def post_message(self, message: ChatMessage, *, idempotency_key: str) -> WriteResult: ...


class CalendarEvent(BaseModel):
    calendar_id: str = "primary"
    summary: str
    description: str = ""
    start: datetime
    end: datetime
    time_zone: str = "UTC"
    attendees: list[str] = Field(default_factory=list)


class CalendarPort(Protocol):
    @property
    def provider(self) -> str: ...

    async def create_event(self, event: CalendarEvent, *, idempotency_key: str) -> WriteResult: ...


class AnalyticsEvent(BaseModel):
    """One GA4-style event: `client_id` is the browser's, `user_id` ours (a lead id, never an email)."""

    client_id: str
    user_id: str | None = None
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = None


class AnalyticsPort(Protocol):
    @property
    def provider(self) -> str: ...

    async def send_event(self, event: AnalyticsEvent, *, idempotency_key: str) -> WriteResult: ...


class WebhookDelivery(BaseModel):
    url: str
    event_type: str
    payload: dict[str, Any]


class WebhookPort(Protocol):
    @property
    def provider(self) -> str: ...

    async def deliver(self, delivery: WebhookDelivery, *, idempotency_key: str) -> WriteResult: ...
