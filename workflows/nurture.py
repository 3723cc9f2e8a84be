"""A nurture enrollment: one lead walking through one sequence's steps, as data.

The sequence is a snapshot taken at enrollment. Sends wait for the lead's send window (in the
lead's time zone) and for a place under the cross-journey frequency cap; the lead's workflow
tells this one when the lead's stage, score band or interests change (pause at MQL/SQL,
resume after a recycle, exit for customers) and forwards the events `wait_until` steps and the
goal listen for. Waits keep an absolute deadline in the state, so a pause, a worker crash or a
continue-as-new never stretches them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.connectors import (
        CrmTaskInput,
        SendEmailInput,
        SendReservation,
        SendReservationInput,
        WriteResult,
    )
    from domain.experiments import ExposureInput, sequence_experiment_id
    from domain.ids import idempotency_key, lead_workflow_id
    from domain.nurture import (
        NURTURE_CONTEXT_SIGNAL,
        NURTURE_ENDED_SIGNAL,
        NURTURE_EVENT_SIGNAL,
        NURTURE_STATE_QUERY,
        NURTURE_WORKFLOW_TYPE,
        EventNotice,
        NurtureEnded,
        NurtureInput,
        NurtureState,
    )
    from domain.search_attributes import JOURNEY, LEAD_ID
    from domain.sequences import (
        HOLDOUT,
        BranchStep,
        ExitStep,
        LeadContext,
        SendStep,
        SplitStep,
        TaskStep,
        WaitStep,
        WaitUntilStep,
        assign_variant,
        choose_branch,
        next_send_time,
    )
    from workflows.calls import LOOKUP, CallPolicy, KeptFailure, call, give_up_quietly
    from workflows.policies import PLATFORM_GIVE_UP_AFTER, PLATFORM_RETRY

EVENTS_KEPT = 50
# A split records its exposure (and may hand a promoted winner to a lead new to the test).
EXPOSURE_PATCH = "experiment-exposure-v1"
SEND_TIMEOUT = timedelta(seconds=60)
# A send or a task: a minute an attempt, retried through a platform's outage for a week.
NURTURE_WRITE = CallPolicy(
    start_to_close=SEND_TIMEOUT, retry=PLATFORM_RETRY, schedule_to_close=PLATFORM_GIVE_UP_AFTER
)


@workflow.defn(name=NURTURE_WORKFLOW_TYPE)
class NurtureWorkflow:
    @workflow.init
    def __init__(self, input: NurtureInput) -> None:
        self._input = input
        self._sequence = input.sequence
        self._context = input.context
        self._events: list[EventNotice] = list(input.pending_events)
        self._seen_events: set[str] = {e.event_id for e in self._events}
        self._state = input.state or NurtureState(
            current=input.sequence.first_step_id, enrolled_at=workflow.now()
        )
        self._steps_this_run = 0

    @workflow.signal(name=NURTURE_CONTEXT_SIGNAL)
    def lead_context(self, context: LeadContext) -> None:
        self._context = context
        self._apply_stage()

    @workflow.signal(name=NURTURE_EVENT_SIGNAL)
    def lead_event(self, event: EventNotice) -> None:
        if event.event_id in self._seen_events:
            return
        self._seen_events.add(event.event_id)
        self._events.append(event)
        del self._events[:-EVENTS_KEPT]
        goal = self._sequence.goal
        if goal is not None and goal.matches(event.type, event.name, event.properties):
            self._end("completed", f"goal reached: {event.type}" + (f" {event.name}" if event.name else ""))

    @workflow.query(name=NURTURE_STATE_QUERY)
    def state(self) -> NurtureState:
        return self._state

    @workflow.run
    async def run(self, input: NurtureInput) -> NurtureState:
        workflow.upsert_search_attributes([LEAD_ID.value_set(input.lead_id), JOURNEY.value_set("nurture")])
        self._apply_stage()
        while self._state.status in ("active", "paused"):
            if self._state.status == "paused":
                workflow.set_current_details(
                    f"Paused at step `{self._state.current}` of **{self._sequence.name}**: "
                    f"{self._state.pause_reason}. Resumes after a recycle."
                )
                await workflow.wait_condition(lambda: self._state.status != "paused")
                continue
            if (
                self._steps_this_run >= input.max_steps_per_run
                or workflow.info().is_continue_as_new_suggested()
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "state": self._state,
                            "context": self._context,
                            "pending_events": self._events,
                        }
                    )
                )
            await self._run_step()
        await self._tell_lead()
        workflow.set_current_details(
            f"**{self._sequence.name}** {self._state.status}: {self._state.exit_reason} "
            f"({self._state.sends} emails sent)"
        )
        return self._state

    def _apply_stage(self) -> None:
        state, stage = self._state, self._context.stage
        if state.status not in ("active", "paused"):
            return
        if stage in self._sequence.exit_on_stages:
            self._end("exited", f"lead became {stage}")
        elif stage in self._sequence.pause_on_stages and state.status == "active":
            state.status, state.pause_reason = "paused", f"lead became {stage}"
            state.record(state.current, "pause", workflow.now(), state.pause_reason)
        elif state.status == "paused" and stage in self._sequence.resume_on_stages:
            state.status, state.pause_reason = "active", None
            state.record(state.current, "resume", workflow.now(), f"lead became {stage}")

    def _end(self, status: str, reason: str) -> None:
        if self._state.status in ("completed", "exited"):
            return
        self._state.status = "completed" if status == "completed" else "exited"
        self._state.exit_reason = reason
        self._state.record(self._state.current, status, workflow.now(), reason)

    def _advance(self, step_id: str, target: str | None) -> None:
        state = self._state
        state.visits[step_id] = state.visits.get(step_id, 0) + 1
        state.deadline = None
        destination = target or self._sequence.following(step_id)
        if destination == "exit":
            self._end("completed", "reached the end of the sequence")
        else:
            state.current = destination

    async def _wait(self, until: datetime, summary: str, also: object = None) -> bool:
        """Waits until `until`; False if the enrollment was paused or ended first (or `also` held)."""
        remaining = until - workflow.now()
        condition = also if callable(also) else (lambda: False)
        if remaining <= timedelta(0):
            return True
        try:
            await workflow.wait_condition(
                lambda: self._state.status != "active" or bool(condition()),
                timeout=remaining,
                timeout_summary=summary,
            )
        except TimeoutError:
            return True
        return False

    async def _run_step(self) -> None:
        state = self._state
        step = self._sequence.step(state.current)
        self._steps_this_run += 1
        state.steps_taken += 1
        now = workflow.now()
        workflow.set_current_details(
            f"**{self._sequence.name}** v{self._sequence.version}: step `{step.id}` ({step.type}); "
            f"{state.sends} emails sent"
        )
        if isinstance(step, SendStep):
            await self._send(step)
        elif isinstance(step, TaskStep):
            due = now + (step.due_in or timedelta(0))
            failure = KeptFailure()
            task = await call(
                "crm.create_task",
                CrmTaskInput(
                    lead_id=self._input.lead_id,
                    idempotency_key=idempotency_key(
                        workflow.info().workflow_id, step.id, str(state.visits.get(step.id, 0) + 1)
                    ),
                    subject=step.subject,
                    body=step.body,
                    due_at=due,
                    owner_id=self._context.owner_crm_id,
                    priority=step.priority,
                ),
                WriteResult,
                f"{step.id}: task `{step.subject}`",
                policy=NURTURE_WRITE,
                audit=failure,
            )
            if task is None:
                state.record(step.id, "task_failed", workflow.now(), failure.message[:300])
            else:
                state.record(step.id, "task", workflow.now(), f"{step.subject} (due {due.isoformat()})")
            self._advance(step.id, step.next)
        elif isinstance(step, WaitStep):
            if state.deadline is None:
                state.deadline = now + step.duration
                state.record(step.id, "wait", now, f"until {state.deadline.isoformat()}")
            if await self._wait(state.deadline, f"{step.id}: wait {step.duration}"):
                self._advance(step.id, step.next)
        elif isinstance(step, WaitUntilStep):
            if state.deadline is None:
                state.deadline = now + step.timeout
                self._events.clear()
                state.record(
                    step.id, "wait_until", now, f"{step.event.type} until {state.deadline.isoformat()}"
                )
            matched = self._matching(step)
            if matched is None:
                timed_out = await self._wait(
                    state.deadline,
                    f"{step.id}: wait for {step.event.type} up to {step.timeout}",
                    also=lambda: self._matching(step) is not None,
                )
                matched = self._matching(step)
                if matched is None and not timed_out:
                    return
            if matched is not None:
                state.record(step.id, "event", workflow.now(), matched.type)
                self._advance(step.id, step.on_event)
            else:
                state.record(step.id, "timeout", workflow.now())
                self._advance(step.id, step.on_timeout)
        elif isinstance(step, BranchStep):
            target = choose_branch(step, self._context)
            state.record(step.id, "branch", now, f"to {target}")
            self._advance(step.id, target)
        elif isinstance(step, SplitStep):
            variant = assign_variant(
                self._input.lead_id, self._sequence.id, step.id, step.variants, step.holdout_percent
            )
            if workflow.patched(EXPOSURE_PATCH):
                variant = await self._expose(step, variant)
            state.variants[step.id] = variant
            state.record(step.id, "split", now, variant)
            if variant == "holdout":
                # Held out of this test only: the lead goes where the sequence says (or leaves).
                self._advance(step.id, step.holdout_goto)
            else:
                target = next(v.goto for v in step.variants if v.name == variant)
                self._advance(step.id, target)
        elif isinstance(step, ExitStep):
            state.visits[step.id] = state.visits.get(step.id, 0) + 1
            self._end("completed", step.reason)

    async def _expose(self, step: SplitStep, assigned: str) -> str:
        """Records the exposure; the answer is the variant to use: the one the lead already had, or
        a promoted winner for a lead new to the test (else the deterministic assignment)."""
        answer = await call(
            "experiments.expose",
            ExposureInput(
                experiment_id=sequence_experiment_id(self._sequence.id, step.id),
                lead_id=self._input.lead_id,
                variant=assigned,
                exposed_at=workflow.now(),
            ),
            str,
            f"Experiment {step.id}: exposure",
            policy=LOOKUP,
            # Not recorded: the lead gets its assigned variant, and the send goes on.
            audit=give_up_quietly,
        )
        if answer is None:
            return assigned
        known = {v.name for v in step.variants} | {HOLDOUT}
        return answer if answer in known else assigned

    def _matching(self, step: WaitUntilStep) -> EventNotice | None:
        for event in self._events:
            if step.event.matches(event.type, event.name, event.properties):
                return event
        return None

    async def _send(self, step: SendStep) -> None:
        state = self._state
        window_opens = next_send_time(workflow.now(), self._context.timezone, self._sequence.send_window)
        if window_opens > workflow.now():
            if not await self._wait(
                window_opens, f"{step.id}: send window ({self._context.timezone or 'UTC'})"
            ):
                return
        key = idempotency_key(workflow.info().workflow_id, step.id, str(state.visits.get(step.id, 0) + 1))
        cap = self._input.frequency_caps.get(self._context.score_band, self._input.frequency_cap)
        reservation = await call(
            "sends.reserve",
            SendReservationInput(
                lead_id=self._input.lead_id,
                idempotency_key=key,
                journey=self._sequence.id,
                marketing=self._sequence.marketing,
                max_sends=cap.max_sends,
                per_seconds=int(cap.per.total_seconds()),
                purpose=self._sequence.send_purpose,
            ),
            SendReservation,
            f"{step.id}: frequency cap and suppression",
            policy=LOOKUP,
        )
        if reservation.status == "suppressed":
            self._end("exited", f"suppressed: {reservation.reason}")
            return
        if reservation.status == "deferred":
            assert reservation.retry_at is not None
            state.record(step.id, "deferred", workflow.now(), reservation.reason or "")
            await self._wait(reservation.retry_at, f"{step.id}: frequency cap until {reservation.retry_at}")
            return
        variables = {
            **step.variables,
            "sequence": self._sequence.id,
            "sequence_version": self._sequence.version,
            **{f"variant_{k}": v for k, v in state.variants.items()},
        }
        failure = KeptFailure()
        sent = await call(
            "email.send",
            SendEmailInput(
                lead_id=self._input.lead_id,
                idempotency_key=key,
                template_id=step.template,
                variables=variables,
                sequence_id=self._sequence.id,
                step_id=step.id,
                purpose=self._sequence.send_purpose,
                journey=self._sequence.id,
            ),
            WriteResult,
            f"{step.id}: send `{step.template}`",
            policy=NURTURE_WRITE,
            audit=failure,
        )
        if sent is None:
            # A rejected template or address: this email is skipped, the sequence goes on.
            state.record(step.id, "send_failed", workflow.now(), failure.message[:300])
        else:
            state.sends += 1
            state.record(step.id, "sent", workflow.now(), f"{step.template} ({sent.provider} {sent.id})")
        self._advance(step.id, step.next)

    async def _tell_lead(self) -> None:
        handle = workflow.get_external_workflow_handle(lead_workflow_id(self._input.lead_id))
        try:
            await handle.signal(
                NURTURE_ENDED_SIGNAL,
                NurtureEnded(
                    sequence_id=self._sequence.id,
                    enrollment=self._input.enrollment,
                    status=self._state.status,
                    reason=self._state.exit_reason,
                ),
            )
        except Exception:
            # The lead's run may be gone (erased, merged): the enrollment's end is in this history.
            workflow.logger.info("lead workflow not told of the nurture's end")
