"""Scenarios: a workflow driven to an outcome worth pinning, for its test and for its saved history.

A module here exposes `scenarios()`, which builds its `Scenario`s afresh (each with fakes of its
own). Its workflow test plays them (`play`) and asserts the outcome; the history recorder plays the
same ones and saves each history under the scenario's name, so the history the replay test checks
is a run the test proved. `journeys new NAME` writes `NAME.py` here.

    for scenario in discover():
        handle = await play(env.client, scenario)
        # ... save `await handle.fetch_history()` as `scenario.name`

A `Scenario` also has the recorder's own scenarios' shape (`names`, `run(env, kept)`), so the
recorder takes them as they are: `SCENARIOS = [..., *discover()]`.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker


@dataclass(frozen=True)
class Scenario:
    # The saved history's name (the recorder may date it), and the test's id for the case.
    name: str
    workflows: Sequence[type]
    # The fake activities, which record what the workflow asked of them.
    activities: Sequence[Callable[..., Any]]
    # Starts the workflow on the task queue and drives it to the outcome; returns its handle once
    # the run has closed (so its whole history is there to save).
    drive: Callable[[Client, str], Awaitable[WorkflowHandle[Any, Any]]]

    # The shape `tests/histories/record.py` runs its own scenarios by: the histories it keeps, and
    # a run that keeps them.
    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    async def run(self, env: WorkflowEnvironment, kept: dict[str, WorkflowHistory]) -> None:
        kept[self.name] = await (await play(env.client, self)).fetch_history()


async def play(client: Client, scenario: Scenario) -> WorkflowHandle[Any, Any]:
    """Runs `scenario` on a worker of its own, on a fresh task queue."""
    queue = f"scenario-{scenario.name}-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=scenario.workflows, activities=scenario.activities):
        return await scenario.drive(client, queue)


def discover() -> list[Scenario]:
    """Every module's scenarios, built afresh, in module order."""
    found: list[Scenario] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        found += importlib.import_module(f"{__name__}.{module.name}").scenarios()
    return found
