"""Every activity a workflow calls is registered on the worker (`workers.registry`), and every
workflow calls activities the one way (`workflows.calls.call`).

A name a workflow calls that no worker registers schedules a task nobody takes: the journey hangs
until its give-up timeout, in production only. Read from the code (ast), so a new call is checked
without anyone adding it here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest
from temporalio import activity

from domain import errors
from domain.connectors import STEP_INPUTS
from runtime.settings import PROJECT_ROOT, Settings
from store.db import create_engine, session_factory
from store.repository import LeadStore
from workers.registry import Dependencies, all_activities
from workflows.handoff import FAST_RETRY
from workflows.policies import PLATFORM_RETRY

WORKFLOWS_DIR = PROJECT_ROOT / "workflows"
# The activity helper itself, which runs the name it is given.
CALL_HELPER = WORKFLOWS_DIR / "calls.py"


def called_activities(path: Path) -> dict[str, int]:
    """Activity names called with a literal name in a workflow module, with the line of the first."""
    names: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        )
        if called not in ("call", "execute_activity", "execute_local_activity", "start_activity"):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.setdefault(first.value, node.lineno)
    return names


def raw_activity_calls(path: Path) -> list[int]:
    """Lines that call the SDK's activity functions directly instead of `call`."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr
        in ("execute_activity", "execute_local_activity", "start_activity", "start_local_activity")
    ]


@pytest.fixture(scope="module")
async def registered() -> set[str]:
    """The names the worker process registers, built as `workers.main` builds them (nothing is
    connected: an engine and an HTTP client connect on first use)."""
    settings = Settings()
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        async with httpx.AsyncClient() as http:
            functions = all_activities(
                Dependencies(settings=settings, http=http, store=LeadStore(session_factory(engine)))
            )
            names = {activity._Definition.must_from_callable(f).name for f in functions}
    finally:
        await engine.dispose()
    return {name for name in names if name}


def test_the_scan_finds_what_the_lead_workflow_calls():
    called: dict[str, int] = {}
    for path in WORKFLOWS_DIR.glob("lead*.py"):
        called |= called_activities(path)
    assert {"scoring.config", "leads.facts", "crm.upsert_contact", "sequences.for_trigger"} <= set(called)


async def test_every_activity_a_workflow_calls_is_registered(registered):
    missing = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} calls {name!r}"
        for path in sorted(WORKFLOWS_DIR.glob("*.py"))
        for name, line in called_activities(path).items()
        if name not in registered
    ]
    assert not missing, "no worker registers:\n  " + "\n  ".join(missing)


async def test_every_connector_step_is_registered(registered):
    # The connector-steps workflow calls the step a request names, from this table.
    assert not set(STEP_INPUTS) - registered


def test_workflows_call_activities_only_through_the_helper():
    direct = [
        f"{path.relative_to(PROJECT_ROOT)}:{line}"
        for path in sorted(WORKFLOWS_DIR.glob("*.py"))
        if path != CALL_HELPER
        for line in raw_activity_calls(path)
    ]
    assert not direct, "call activities with workflows.calls.call:\n  " + "\n  ".join(direct)


def test_activities_name_their_failures_with_the_shared_constants():
    """`ApplicationError(type=...)` in an activity names a constant of domain/errors.py, which the
    retry policies read too: a misspelt string would make a permanent failure retry for a week."""
    known = {name for name in vars(errors) if name.isupper() and isinstance(getattr(errors, name), str)}
    literal = []
    for path in sorted((PROJECT_ROOT / "activities").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ApplicationError":
                for keyword in node.keywords:
                    if keyword.arg == "type" and not (
                        isinstance(keyword.value, ast.Name) and keyword.value.id in known
                    ):
                        literal.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert not literal, "name the failure with a domain.errors constant:\n  " + "\n  ".join(literal)


@pytest.mark.parametrize("policy", [PLATFORM_RETRY, FAST_RETRY])
def test_retry_policies_stop_at_every_permanent_failure(policy):
    assert set(policy.non_retryable_error_types or []) == set(errors.PERMANENT_ERRORS)
    assert not set(errors.RETRYABLE_ERRORS) & set(errors.PERMANENT_ERRORS)
