"""Customer journeys' activities: the policy, the account's customer-success manager, and a lead's
customer news (usage, payments, survey answers, referrals) delivered to its account's journey."""

from __future__ import annotations

from pathlib import Path

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy

from activities.owners import CrmOwnerDirectory
from domain.customers import (
    CUSTOMER_EVENT_SIGNAL,
    CUSTOMER_WORKFLOW_TYPE,
    CsmAssignment,
    CustomerEvent,
    CustomerInput,
    CustomerPolicy,
    CustomerReport,
    ReferralReport,
    customer_account_id,
    customer_workflow_id,
    load_customer_policy,
)
from platforms.ports import CrmPort
from store.csm import CsmAssignments
from store.db import SessionFactory
from store.repository import LeadStore
from store.rosters import RosterSource


class CustomerActivities:
    def __init__(
        self,
        sessions: SessionFactory,
        store: LeadStore,
        *,
        crm: CrmPort,
        policy_file: Path,
        roster_file: Path,
        task_queue: str,
    ) -> None:
        self._store = store
        self._policy_file = policy_file
        self._rosters = RosterSource(sessions, roster_file)
        self._csms = CsmAssignments(sessions)
        self._owners = CrmOwnerDirectory(crm)
        self._task_queue = task_queue

    @activity.defn(name="customers.policy")
    async def policy(self) -> CustomerPolicy:
        return load_customer_policy(self._policy_file)

    @activity.defn(name="customers.assign_csm")
    async def assign_csm(self, account_id: str) -> CsmAssignment:
        """The account's CSM from the roster's customer-success team, kept once chosen."""
        policy = load_customer_policy(self._policy_file)
        roster = await self._rosters.current()
        team = next((t for t in roster.teams if t.id == policy.csm_team), None)
        if team is None:
            return CsmAssignment(csm_id=None, reason=f"no team {policy.csm_team!r} in the roster")
        capacities = {rep_id: rep.capacity for rep_id in team.reps if (rep := roster.rep(rep_id)) is not None}
        csm_id, reason = await self._csms.assign(account_id, capacities)
        csm = roster.rep(csm_id)
        assert csm is not None
        return CsmAssignment(
            csm_id=csm.id,
            name=csm.name,
            email=str(csm.email),
            slack_user_id=csm.slack_user_id,
            crm_owner_id=await self._owners.owner_id(str(csm.email)),
            channel=team.queue_slack_channel,
            reason=reason,
        )

    async def _deliver(self, account_id: str, events: list[CustomerEvent]) -> None:
        client = activity.client()
        workflow_id = customer_workflow_id(account_id)
        first, *rest = events
        await client.start_workflow(
            CUSTOMER_WORKFLOW_TYPE,
            CustomerInput(account_id=account_id),
            id=workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=CUSTOMER_EVENT_SIGNAL,
            start_signal_args=[first],
            static_summary=f"Customer journey of account {account_id}",
        )
        handle = client.get_workflow_handle(workflow_id)
        for event in rest:
            await handle.signal(CUSTOMER_EVENT_SIGNAL, event)

    @activity.defn(name="customers.report")
    async def report(self, data: CustomerReport) -> None:
        """Signal-with-start: the account's journey starts with its first purchase (a retry may
        deliver an event twice; the journey counts each event id once)."""
        await self._deliver(data.account_id, data.events)

    @activity.defn(name="customers.report_referral")
    async def report_referral(self, data: ReferralReport) -> bool:
        """A new lead named an advocate's referral code (the advocate's lead id): the advocate's
        account hears of it. False when the code names nobody we know."""
        referrer = await self._store.get_lead(data.referral_code)
        if referrer is None or referrer.lead_id == data.new_lead_id:
            return False
        account_id = customer_account_id(referrer.account_id, referrer.lead_id)
        event = CustomerEvent(
            event_id=f"referral:{data.new_lead_id}",
            lead_id=referrer.lead_id,
            kind="referral",
            name="Referral",
            properties={"new_lead_id": data.new_lead_id},
            occurred_at=data.occurred_at,
        )
        await self._deliver(account_id, [event])
        return True

    def all(self) -> list[object]:
        return [self.policy, self.assign_csm, self.report, self.report_referral]
