"""Timeouts and retries every journey uses for platform calls."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from domain.errors import PERMANENT_ERRORS

# Platforms go down for hours; a journey waits them out rather than dropping the write.
PLATFORM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=list(PERMANENT_ERRORS),
)
PLATFORM_CALL_TIMEOUT = timedelta(seconds=30)
# A worker that dies mid-call is noticed within this (the worker beats for the call while it
# runs, runtime/heartbeat.py), not after the call's whole attempt timeout.
CALL_HEARTBEAT = timedelta(seconds=10)
PLATFORM_GIVE_UP_AFTER = timedelta(days=7)
