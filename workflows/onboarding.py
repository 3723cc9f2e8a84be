"""An account's onboarding, `onboarding-{account_id}`: milestones tracked from product events, each
with a deadline; a missed one nudges the user, and later alerts the customer-success manager. Ends
when every milestone is done or its CSM was told, and tells the account's journey how it went."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.connectors import ChatNotifyInput, SendEmailInput, WriteResult
    from domain.customers import (
        ONBOARDING_RESULT_SIGNAL,
        ONBOARDING_STATE_QUERY,
        ONBOARDING_USAGE_SIGNAL,
        ONBOARDING_WORKFLOW_TYPE,
        MilestoneRule,
        OnboardingInput,
        OnboardingResult,
        OnboardingState,
        UsageNotice,
        customer_workflow_id,
        onboarding_actions,
    )
    from domain.ids import idempotency_key
    from domain.search_attributes import ACCOUNT_ID, JOURNEY
    from workflows.calls import PLATFORM_WRITE, call


@workflow.defn(name=ONBOARDING_WORKFLOW_TYPE)
class OnboardingWorkflow:
    @workflow.init
    def __init__(self, input: OnboardingInput) -> None:
        self._state = OnboardingState.start(input)
        self._pending: list[UsageNotice] = []

    @workflow.signal(name=ONBOARDING_USAGE_SIGNAL)
    def usage(self, notice: UsageNotice) -> None:
        self._pending.append(notice)

    @workflow.query(name=ONBOARDING_STATE_QUERY)
    def state(self) -> OnboardingState:
        return self._state

    @workflow.run
    async def run(self, input: OnboardingInput) -> OnboardingResult:
        workflow.upsert_search_attributes(
            [ACCOUNT_ID.value_set(input.account_id), JOURNEY.value_set("onboarding")]
        )
        state = self._state
        while not state.finished():
            self._take_usage(input.milestones)
            due, next_at = onboarding_actions(input.milestones, state, workflow.now())
            for action, rule in due:
                await (self._nudge(input, rule) if action == "nudge" else self._alert(input, rule))
            if due or state.finished():
                continue
            workflow.set_current_details(self._details(input.milestones))
            timeout = None if next_at is None else max(next_at - workflow.now(), timedelta(seconds=1))
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending), timeout=timeout, timeout_summary="next milestone deadline"
                )
            except TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        done = [p.id for p in state.milestones if p.done_at is not None]
        result = OnboardingResult(
            account_id=input.account_id,
            completed=all(p.done_at is not None and not p.late for p in state.milestones),
            done=done,
            missed=[p.id for p in state.milestones if p.done_at is None or p.late],
            finished_at=workflow.now(),
        )
        workflow.set_current_details(self._details(input.milestones))
        try:
            await workflow.get_external_workflow_handle(customer_workflow_id(input.account_id)).signal(
                ONBOARDING_RESULT_SIGNAL, result
            )
        except Exception:
            workflow.logger.info("the account's journey %s was not found to tell it", input.account_id)
        return result

    def _take_usage(self, rules: list[MilestoneRule]) -> None:
        notices, self._pending = self._pending, []
        for notice in notices:
            for rule in rules:
                progress = self._state.progress(rule.id)
                if progress.done_at is None and rule.done_by(notice.name):
                    progress.done_at, progress.done_by = notice.at, notice.lead_id
                    late = " (late)" if progress.late else ""
                    self._state.log.append(f"{notice.at.isoformat(timespec='seconds')} {rule.id} done{late}")

    def _details(self, rules: list[MilestoneRule]) -> str:
        lines = []
        for rule in rules:
            p = self._state.progress(rule.id)
            mark = (
                "done"
                if p.done_at
                else ("CSM alerted" if p.alerted_at else ("nudged" if p.nudged_at else "open"))
            )
            lines.append(f"- {rule.name}: **{mark}** (due {p.due_at:%Y-%m-%d})")
        return "Onboarding\n" + "\n".join(lines)

    async def _nudge(self, input: OnboardingInput, rule: MilestoneRule) -> None:
        progress = self._state.progress(rule.id)
        progress.nudged_at = workflow.now()
        self._state.log.append(f"{workflow.now().isoformat(timespec='seconds')} {rule.id} missed: nudge")
        await call(
            "email.send",
            SendEmailInput(
                lead_id=input.lead_id,
                idempotency_key=idempotency_key(workflow.info().workflow_id, "nudge", rule.id),
                template_id=rule.nudge_template,
                variables={"milestone": rule.name, "due_at": progress.due_at.isoformat()},
                # About the customer's own onboarding: no marketing consent needed.
                purpose="service",
                journey="onboarding",
            ),
            WriteResult,
            f"Nudge: {rule.name}",
            policy=PLATFORM_WRITE,
            audit=self._audit,
        )

    async def _alert(self, input: OnboardingInput, rule: MilestoneRule) -> None:
        progress = self._state.progress(rule.id)
        progress.alerted_at = workflow.now()
        self._state.log.append(f"{workflow.now().isoformat(timespec='seconds')} {rule.id} still missed: CSM")
        channel = input.csm.slack_user_id or input.csm.channel
        if not channel:
            return
        late = (workflow.now() - progress.due_at).days
        await call(
            "notify.post_message",
            ChatNotifyInput(
                idempotency_key=idempotency_key(workflow.info().workflow_id, "alert", rule.id),
                channel=channel,
                text=(
                    f"Onboarding: {{company}} has not reached '{rule.name}' ({late} days past the deadline; "
                    f"the user was nudged). Account {input.account_id}."
                ),
                lead_id=input.lead_id,
            ),
            WriteResult,
            f"CSM alert: {rule.name}",
            policy=PLATFORM_WRITE,
            audit=self._audit,
        )

    def _audit(self, step: str, message: str) -> None:
        """A platform step that gave up is audited in the journey's log, not fatal."""
        self._state.log.append(f"{workflow.now().isoformat(timespec='seconds')} {step} failed: {message}")
