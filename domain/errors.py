"""The names of activity failures, shared by the activities that raise them and the retry
policies that decide which of them are worth another attempt.

An activity raises `ApplicationError(..., type=NOT_FOUND, non_retryable=True)`; a workflow's
retry policy lists `PERMANENT_ERRORS` as non-retryable. One spelling for both sides, so a typo
cannot turn a permanent failure into a week of retries.
"""

from __future__ import annotations

# The platform refused the write for good (a 4xx other than 429): retrying repeats the refusal.
PLATFORM_REJECTED = "PlatformRejected"
# The platform asked us to slow down (429): retried after its Retry-After.
RATE_LIMITED = "RateLimited"
# The platform is down or timed out (5xx, network): retried with backoff.
PLATFORM_UNAVAILABLE = "PlatformUnavailable"
# What the activity needs is gone (an erased lead, a submission never recorded).
NOT_FOUND = "NotFound"
# The person has not consented to this message: never retried, never sent.
NO_CONSENT = "NoConsent"
# The send gate refused an email (no consent for its purpose, suppressed, over the cap).
SEND_REFUSED = "SendRefused"
# The configuration the activity reads is invalid: retrying reads the same bad file.
INVALID_CONFIG = "InvalidConfig"

PERMANENT_ERRORS: tuple[str, ...] = (PLATFORM_REJECTED, NOT_FOUND, NO_CONSENT, INVALID_CONFIG)
RETRYABLE_ERRORS: tuple[str, ...] = (RATE_LIMITED, PLATFORM_UNAVAILABLE)
