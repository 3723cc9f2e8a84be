"""Double opt-in: a form can ask a person to confirm their marketing consent by email before it
counts. The confirmation link carries a token: the submission it confirms, when it was issued,
and an HMAC of both under the deployment's secret, so only the link the engine sent confirms,
and only for a month. Pure: the caller passes the secret and the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from pydantic import BaseModel

# How long a confirmation link works.
VALID_SECONDS = 30 * 86400
CONFIRMATION_TEMPLATE = "confirm_subscription"
CONFIRMED_SOURCE = "double-opt-in"
_TOKEN = re.compile(r"^(?P<submission>[0-9a-f-]{36})\.(?P<issued>\d{1,12})\.(?P<mac>[0-9a-f]{64})$")


class TokenError(Exception):
    """Why a confirmation link is refused, said so the person's browser can show it."""


def _mac(secret: str, submission_id: str, issued: int) -> str:
    message = f"confirm-consent:{submission_id}:{issued}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def confirmation_token(secret: str, submission_id: str, issued: int) -> str:
    return f"{submission_id}.{issued}.{_mac(secret, submission_id, issued)}"


def confirmed_submission(secret: str, token: str, now: int) -> str:
    """The submission a confirmation link confirms; TokenError if the link is not one the engine
    sent (altered, another deployment's) or is older than `VALID_SECONDS`."""
    found = _TOKEN.match(token or "")
    if found is None:
        raise TokenError("this is not a confirmation link")
    submission, issued = found["submission"], int(found["issued"])
    if not hmac.compare_digest(_mac(secret, submission, issued), found["mac"]):
        raise TokenError("this confirmation link is not valid")
    if now - issued > VALID_SECONDS or issued - now > 300:
        raise TokenError("this confirmation link has expired: sign up again to get a new one")
    return submission


class ConsentRequestInput(BaseModel):
    """Ask the person who submitted `submission_id` to confirm their consent (one email, once)."""

    lead_id: str
    submission_id: str
    idempotency_key: str
