"""Account-based outbound: the targeting policy, and a lead's news delivered to its account's journey."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy

from domain.accounts import (
    ACCOUNT_ACTIVITY_SIGNAL,
    ACCOUNT_WORKFLOW_TYPE,
    AbmPolicy,
    AccountJourneyInput,
    ContactActivity,
    account_workflow_id,
)
from store.repository import LeadStore


class AccountActivities:
    def __init__(self, store: LeadStore, policy: AbmPolicy, *, task_queue: str) -> None:
        self._store = store
        self._policy = policy
        self._task_queue = task_queue

    @activity.defn(name="accounts.policy")
    async def policy(self) -> AbmPolicy:
        return self._policy

    @activity.defn(name="accounts.report")
    async def report(self, data: ContactActivity) -> None:
        """Signal-with-start: the account's journey starts with its first contact's news."""
        lead = await self._store.get_lead(data.lead_id)
        if lead is None or not lead.account_id:
            return
        await activity.client().start_workflow(
            ACCOUNT_WORKFLOW_TYPE,
            AccountJourneyInput(account_id=lead.account_id),
            id=account_workflow_id(lead.account_id),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=ACCOUNT_ACTIVITY_SIGNAL,
            start_signal_args=[data],
        )

    def all(self) -> list[object]:
        return [self.policy, self.report]
