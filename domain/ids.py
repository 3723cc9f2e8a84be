"""Identifiers derived from business keys, so every retry and every replica computes the same one."""

import hashlib
import uuid

# A fixed namespace: lead ids must stay stable across deployments, or a lead would split in two.
LEAD_NAMESPACE = uuid.UUID("6f1c3c2e-5d4b-4c1a-9a57-0b7d2f6e8a11")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def lead_id_for_email(email: str) -> str:
    return str(uuid.uuid5(LEAD_NAMESPACE, normalize_email(email)))


def lead_id_for_user(user_id: str) -> str:
    """A lead known only by the userId a client's own system gave it, until an email joins it."""
    return str(uuid.uuid5(LEAD_NAMESPACE, f"user:{user_id}"))


def email_hash(email: str) -> str:
    """What ops search by instead of the address: clear-text PII never goes into search attributes."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()


def lead_workflow_id(lead_id: str) -> str:
    return f"lead-{lead_id}"


def idempotency_key(workflow_id: str, *step: str) -> str:
    """Stable across activity retries and worker crashes: built from the run's business key and step."""
    return ":".join((workflow_id, *step))
