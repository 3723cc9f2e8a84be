"""CRM activities: whichever CRM the deployment chose (`JOURNEYS_CRM_PROVIDER`), through `CrmPort`."""

from __future__ import annotations

from temporalio import activity

from activities.contacts import lead_with_email, person_of, personalize, submission_contact, synced_person
from activities.errors import connector_step
from activities.sales_context import sales_context
from domain.connectors import (
    CrmDealInput,
    CrmMeetingInput,
    CrmNoteInput,
    CrmTaskInput,
    SyncPersonInput,
    WriteResult,
)
from domain.customers import CompanyInput
from domain.lead import UpsertContactInput, UpsertContactResult
from platforms.ports import Company, CrmPort, Deal, Meeting, Note, Task
from store.flows import FlowRecorder
from store.health import ConnectorStatsRecorder
from store.repository import LeadStore


class CrmActivities:
    def __init__(self, crm: CrmPort, store: LeadStore, stats: ConnectorStatsRecorder | None = None) -> None:
        self._crm = crm
        self._store = store
        self._stats = stats
        self._flows = FlowRecorder(store.sessions)

    async def _contact_id(self, lead_id: str) -> str | None:
        ids = (await self._store.identities(lead_id)).get(f"{self._crm.provider}_contact")
        return ids[-1] if ids else None

    @activity.defn(name="crm.upsert_contact")
    async def upsert_contact(self, data: UpsertContactInput) -> UpsertContactResult:
        """The contact from a form submission, with the submission's source and campaign."""
        lead, submission, email = await submission_contact(self._store, data.submission_id, data.lead_id)
        extra = {
            "journeys_lead_source": submission.fields.get("lead_source"),
            "journeys_utm_source": submission.fields.get("utm_source"),
            "journeys_utm_medium": submission.fields.get("utm_medium"),
            "journeys_utm_campaign": submission.fields.get("utm_campaign"),
        }
        person = person_of(
            lead,
            email,
            lifecycle_stage=data.lifecycle_stage.value,
            properties={k: str(v) for k, v in extra.items() if v is not None},
        )
        async with connector_step(self._stats, self._crm.provider, "crm.upsert_contact"):
            written = await self._crm.upsert_person(person, idempotency_key=data.idempotency_key)
        await self._store.link_identity(f"{self._crm.provider}_contact", written.id, data.lead_id)
        await self._flows.done("form_to_crm", data.submission_id, data.lead_id, submission.received_at)
        return UpsertContactResult(contact_id=written.id, created=written.created)

    @activity.defn(name="crm.sync_person")
    async def sync_person(self, data: SyncPersonInput) -> WriteResult:
        """Profile, lifecycle stage, score and owner: pushed the moment they change."""
        lead, email = await lead_with_email(self._store, data.lead_id)
        person = synced_person(lead, email, data, with_owner=True)
        async with connector_step(self._stats, self._crm.provider, "crm.sync_person"):
            written = await self._crm.upsert_person(person, idempotency_key=data.idempotency_key)
        await self._store.link_identity(f"{self._crm.provider}_contact", written.id, lead.lead_id)
        await self._flows.marked_done(data.flow, lead.lead_id)
        return written

    @activity.defn(name="crm.create_task")
    async def create_task(self, data: CrmTaskInput) -> WriteResult:
        lead, _ = await lead_with_email(self._store, data.lead_id)
        task = Task(
            subject=personalize(data.subject, lead),
            body=personalize(data.body, lead),
            due_at=data.due_at,
            owner_id=data.owner_id,
            person_id=await self._contact_id(lead.lead_id),
            priority=data.priority,
        )
        async with connector_step(self._stats, self._crm.provider, "crm.create_task"):
            return await self._crm.create_task(task, idempotency_key=data.idempotency_key)

    @activity.defn(name="crm.add_note")
    async def add_note(self, data: CrmNoteInput) -> WriteResult:
        lead, _ = await lead_with_email(self._store, data.lead_id)
        note = Note(
            body=personalize(data.body, lead),
            occurred_at=data.occurred_at,
            person_id=await self._contact_id(lead.lead_id),
        )
        async with connector_step(self._stats, self._crm.provider, "crm.add_note"):
            return await self._crm.add_note(note, idempotency_key=data.idempotency_key)

    @activity.defn(name="crm.upsert_deal")
    async def upsert_deal(self, data: CrmDealInput) -> WriteResult:
        lead, _ = await lead_with_email(self._store, data.lead_id)
        deal = Deal(
            key=data.deal_key,
            name=personalize(data.name, lead),
            stage=data.stage,
            amount=data.amount,
            currency=data.currency,
            owner_id=data.owner_id,
            person_id=await self._contact_id(lead.lead_id),
        )
        async with connector_step(self._stats, self._crm.provider, "crm.upsert_deal"):
            written = await self._crm.upsert_deal(deal, idempotency_key=data.idempotency_key)
        # The CRM's deal webhooks (a deal won) name only the deal: this finds the lead.
        await self._store.link_identity(f"{self._crm.provider}_deal", written.id, lead.lead_id, replace=True)
        return written

    @activity.defn(name="crm.log_meeting")
    async def log_meeting(self, data: CrmMeetingInput) -> WriteResult:
        lead, _ = await lead_with_email(self._store, data.lead_id)
        meeting = Meeting(
            subject=personalize(data.subject, lead),
            start=data.start,
            end=data.end,
            description=personalize(data.description, lead),
            owner_id=data.owner_id,
            person_id=await self._contact_id(lead.lead_id),
        )
        async with connector_step(self._stats, self._crm.provider, "crm.log_meeting"):
            written = await self._crm.log_meeting(meeting, idempotency_key=data.idempotency_key)
        await self._flows.marked_done(data.flow, lead.lead_id)
        return written

    @activity.defn(name="crm.upsert_company")
    async def upsert_company(self, data: CompanyInput) -> WriteResult:
        """The account as a CRM company (keyed by its domain), with its owner and properties."""
        lead, email = await lead_with_email(self._store, data.lead_id)
        account = await self._store.account(data.account_id) if lead.account_id == data.account_id else None
        traits = (account or {}).get("traits") or {}
        domain = str(traits.get("domain") or traits.get("website") or email.rsplit("@", 1)[-1])
        employees = traits.get("employees")
        company = Company(
            domain=domain,
            name=str(traits.get("name") or lead.company or domain),
            industry=traits.get("industry"),
            employees=int(employees)
            if isinstance(employees, int | float) and not isinstance(employees, bool)
            else None,
            owner_id=data.owner_id,
            properties={"journeys_account_id": data.account_id, **data.properties},
        )
        async with connector_step(self._stats, self._crm.provider, "crm.upsert_company"):
            return await self._crm.upsert_company(company, idempotency_key=data.idempotency_key)

    @activity.defn(name="crm.add_sales_context")
    async def add_sales_context(self, data: CrmNoteInput) -> WriteResult:
        """One note with everything sales needs to call this lead (`body` is its headline)."""
        lead, _ = await lead_with_email(self._store, data.lead_id)
        account = await self._store.account(lead.account_id) if lead.account_id else None
        events = await self._store.events(lead.lead_id, limit=300)
        note = Note(
            body=sales_context(lead, account, events, data.body),
            occurred_at=data.occurred_at,
            person_id=await self._contact_id(lead.lead_id),
        )
        async with connector_step(self._stats, self._crm.provider, "crm.add_sales_context"):
            return await self._crm.add_note(note, idempotency_key=data.idempotency_key)

    def all(self) -> list[object]:
        return [
            self.upsert_company,
            self.add_sales_context,
            self.upsert_contact,
            self.sync_person,
            self.create_task,
            self.add_note,
            self.upsert_deal,
            self.log_meeting,
        ]
