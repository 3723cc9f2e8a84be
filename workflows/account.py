"""An account's journey, `account-{account_id}`: sums its contacts' intent; once the account is a
target (enough intent from enough people, an ICP fit), enrolls every contact in the account
outreach sequence, and when any one of them books a meeting, stops it for all of them."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.accounts import (
        ACCOUNT_ACTIVITY_SIGNAL,
        ACCOUNT_STATE_QUERY,
        ACCOUNT_WORKFLOW_TYPE,
        CONTACTS_KEPT,
        AbmPolicy,
        AccountJourneyInput,
        AccountState,
        ContactActivity,
        ContactIntent,
    )
    from domain.ids import lead_workflow_id
    from domain.qualify import ENROLL_SIGNAL, EnrollRequest
    from domain.search_attributes import ACCOUNT_ID, JOURNEY
    from workflows.calls import LOOKUP, call


@workflow.defn(name=ACCOUNT_WORKFLOW_TYPE)
class AccountJourneyWorkflow:
    @workflow.init
    def __init__(self, input: AccountJourneyInput) -> None:
        self._state = input.state or AccountState(account_id=input.account_id)
        self._pending: list[ContactActivity] = []

    @workflow.signal(name=ACCOUNT_ACTIVITY_SIGNAL)
    def contact_activity(self, activity: ContactActivity) -> None:
        self._pending.append(activity)

    @workflow.query(name=ACCOUNT_STATE_QUERY)
    def state(self) -> AccountState:
        return self._state

    @workflow.run
    async def run(self, input: AccountJourneyInput) -> AccountState:
        workflow.upsert_search_attributes(
            [ACCOUNT_ID.value_set(input.account_id), JOURNEY.value_set("account")]
        )
        policy = await call("accounts.policy", None, AbmPolicy, "Account targeting policy", policy=LOOKUP)
        while True:
            await workflow.wait_condition(
                lambda: bool(self._pending) or workflow.info().is_continue_as_new_suggested()
            )
            while self._pending:
                await self._take(self._pending.pop(0), policy)
            workflow.set_current_details(self._details(policy))
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(AccountJourneyInput(account_id=input.account_id, state=self._state))

    def _details(self, policy: AbmPolicy) -> str:
        state = self._state
        since = workflow.now() - policy.window
        return (
            f"Account **{state.status}**: intent {state.intent(since)} from "
            f"{state.active_contacts(since)} of {len(state.contacts)} contacts"
        )

    async def _take(self, activity: ContactActivity, policy: AbmPolicy) -> None:
        state, now = self._state, workflow.now()
        contact = state.contacts.get(activity.lead_id)
        if contact is None:
            if len(state.contacts) >= CONTACTS_KEPT:
                return
            contact = state.contacts[activity.lead_id] = ContactIntent(lead_id=activity.lead_id)
        if activity.fit is not None:
            contact.fit = activity.fit
        if activity.intent_points > 0:
            contact.points.append((activity.at, activity.intent_points))
        since = now - policy.window
        contact.points = [(at, p) for at, p in contact.points if at >= since]
        if activity.meeting_booked and state.status != "engaged":
            state.status, state.engaged_at, state.engaged_by = "engaged", now, activity.lead_id
            state.reason = f"meeting booked by lead {activity.lead_id}"
            for other in state.contacts.values():
                if other.enrolled:
                    await self._tell(other.lead_id, EnrollRequest(sequence_id=policy.sequence_id, stop=True))
                    other.enrolled = False
            return
        if state.status == "watching":
            targeted, reason = state.target_decision(policy, now)
            if targeted:
                state.status, state.targeted_at, state.reason = "targeted", now, reason
        if state.status == "targeted":
            for other in state.contacts.values():
                if not other.enrolled:
                    other.enrolled = await self._tell(
                        other.lead_id, EnrollRequest(sequence_id=policy.sequence_id)
                    )

    async def _tell(self, lead_id: str, request: EnrollRequest) -> bool:
        try:
            await workflow.get_external_workflow_handle(lead_workflow_id(lead_id)).signal(
                ENROLL_SIGNAL, request
            )
        except Exception:
            workflow.logger.info("lead %s has no running journey; not enrolled", lead_id)
            return False
        return True
