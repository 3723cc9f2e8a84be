"""Connector steps: a list of platform writes for one lead, each run exactly once.

Each step's idempotency key is `{workflow id}:step:{n}:{activity}`, so a retry after a worker
crash repeats the same key and the platform (or the read before the write) recognises it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.connectors import (
        CONNECTOR_STEPS_WORKFLOW_TYPE,
        STEP_INPUTS,
        ConnectorStep,
        ConnectorStepsInput,
        ConnectorStepsResult,
        StepOutcome,
        WriteResult,
    )
    from domain.ids import idempotency_key
    from workflows.calls import CallPolicy, KeptFailure, call
    from workflows.policies import PLATFORM_GIVE_UP_AFTER, PLATFORM_RETRY


@workflow.defn(name=CONNECTOR_STEPS_WORKFLOW_TYPE)
class ConnectorStepsWorkflow:
    def __init__(self) -> None:
        self._outcomes: list[StepOutcome] = []

    @workflow.query(name="outcomes")
    def outcomes(self) -> list[StepOutcome]:
        return self._outcomes

    async def _run_step(self, data: ConnectorStepsInput, n: int, step: ConnectorStep) -> StepOutcome:
        model = STEP_INPUTS[step.activity]
        argument = {
            **step.input,
            "idempotency_key": idempotency_key(workflow.info().workflow_id, "step", str(n), step.activity),
        }
        if "lead_id" in model.model_fields:
            argument["lead_id"] = data.lead_id
        failure = KeptFailure()
        result = await call(
            step.activity,
            model.model_validate(argument),
            WriteResult,
            f"step {n}: {step.activity}",
            policy=CallPolicy(
                start_to_close=timedelta(seconds=data.step_timeout_seconds),
                retry=PLATFORM_RETRY,
                schedule_to_close=PLATFORM_GIVE_UP_AFTER,
            ),
            audit=failure,
        )
        if result is None:
            return StepOutcome(activity=step.activity, status="failed", error=failure.message)
        return StepOutcome(activity=step.activity, status="done", result=result)

    @workflow.run
    async def run(self, data: ConnectorStepsInput) -> ConnectorStepsResult:
        self._outcomes = [StepOutcome(activity=s.activity, status="skipped") for s in data.steps]
        if data.parallel:
            workflow.set_current_details(f"Running {len(data.steps)} connector steps at once")
            done = await asyncio.gather(*(self._run_step(data, n, s) for n, s in enumerate(data.steps)))
            self._outcomes = list(done)
        else:
            for n, step in enumerate(data.steps):
                workflow.set_current_details(f"Step {n + 1} of {len(data.steps)}: `{step.activity}`")
                self._outcomes[n] = await self._run_step(data, n, step)
                if self._outcomes[n].status == "failed":
                    # Later steps may depend on this one (a task on a contact): stop, and say so.
                    break
        return ConnectorStepsResult(outcomes=self._outcomes)
