"""One way for a workflow to call an activity: the timeouts and retries of its policy, a summary
for the Temporal UI, and one choice for a failure that outlived the retries (audit it and go on,
or raise it).

    result = await call("crm.sync_person", data, WriteResult, "CRM: stage mql", audit=state.record_failure)

`audit` takes `(activity name, message)`; without it the failure is raised. Only an
`ActivityError` (the platform or the activity gave up) is audited: anything else is a bug in the
workflow and fails the task, so it is retried once the code is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, overload

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.policies import (
        CALL_HEARTBEAT,
        PLATFORM_CALL_TIMEOUT,
        PLATFORM_GIVE_UP_AFTER,
        PLATFORM_RETRY,
    )

T = TypeVar("T")

Audit = Callable[[str, str], None]


@dataclass(frozen=True)
class CallPolicy:
    """How long one attempt may take, how long to keep trying, and how to retry."""

    start_to_close: timedelta
    retry: RetryPolicy
    schedule_to_close: timedelta | None = None
    # A local activity: a fast read the workflow needs before it can decide (no task queue hop).
    local: bool = False
    # How soon a worker lost mid-attempt is noticed and the attempt retried elsewhere (the worker
    # beats for the activity, runtime/heartbeat.py); a local activity runs in the workflow's own
    # worker and takes none.
    heartbeat: timedelta | None = CALL_HEARTBEAT


# A write to a platform: retried through outages for up to a week, permanent refusals not retried.
PLATFORM_WRITE = CallPolicy(
    start_to_close=PLATFORM_CALL_TIMEOUT, retry=PLATFORM_RETRY, schedule_to_close=PLATFORM_GIVE_UP_AFTER
)
# A write that may take longer per attempt (a CRM upsert with its look-ups).
PLATFORM_PUSH = CallPolicy(
    start_to_close=timedelta(seconds=60), retry=PLATFORM_RETRY, schedule_to_close=PLATFORM_GIVE_UP_AFTER
)
# A read of our own store or config: retried until it answers (no give-up: the workflow needs it).
LOOKUP = CallPolicy(start_to_close=timedelta(seconds=30), retry=PLATFORM_RETRY)
# A read of the scoring rules and the like, inside the workflow's task.
LOCAL_LOOKUP = CallPolicy(start_to_close=timedelta(seconds=30), retry=PLATFORM_RETRY, local=True)


class KeptFailure:
    """An `audit` that keeps the failure's message for the caller, which records it its own way
    (a nurture's step log, a connector step's outcome)."""

    def __init__(self) -> None:
        self.message = ""

    def __call__(self, step: str, message: str) -> None:
        self.message = message


def give_up_quietly(step: str, message: str) -> None:
    """An `audit` for a call whose caller has a fallback and nothing to record (the warning is logged)."""


def failure_message(error: ActivityError) -> str:
    """What went wrong, as the audit and the UI show it: the cause's type and message."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    return str(cause or error)


@overload
async def call(
    activity: str,
    argument: object,
    result_type: None,
    summary: str,
    *,
    policy: CallPolicy = ...,
    audit: Audit | None = None,
) -> Any: ...


@overload
async def call(
    activity: str,
    argument: object,
    result_type: type[T],
    summary: str,
    *,
    policy: CallPolicy = ...,
    audit: None = None,
) -> T: ...


@overload
async def call(
    activity: str,
    argument: object,
    result_type: type[T],
    summary: str,
    *,
    policy: CallPolicy = ...,
    audit: Audit,
) -> T | None: ...


async def call(
    activity: str,
    argument: object,
    result_type: type[T] | None,
    summary: str,
    *,
    policy: CallPolicy = PLATFORM_WRITE,
    audit: Audit | None = None,
) -> T | None:
    """Runs `activity` with `argument` (None: no argument) under `policy`; `result_type` None
    decodes the result without a type (for an activity whose answer the workflow ignores).

    Returns its result; or, when it failed for good and `audit` is given, audits the failure and
    returns None."""
    args: list[Any] = [] if argument is None else [argument]
    try:
        if policy.local:
            return await workflow.execute_local_activity(
                activity,
                args=args,
                result_type=result_type,
                start_to_close_timeout=policy.start_to_close,
                schedule_to_close_timeout=policy.schedule_to_close,
                retry_policy=policy.retry,
                summary=summary,
            )
        return await workflow.execute_activity(
            activity,
            args=args,
            result_type=result_type,
            start_to_close_timeout=policy.start_to_close,
            schedule_to_close_timeout=policy.schedule_to_close,
            heartbeat_timeout=policy.heartbeat,
            retry_policy=policy.retry,
            summary=summary,
        )
    except ActivityError as error:
        if audit is None:
            raise
        message = failure_message(error)
        workflow.logger.warning("%s gave up: %s", activity, message)
        audit(activity, message)
        return None
