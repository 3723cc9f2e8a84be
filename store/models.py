from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Lead(Base):
    """The profile: PII lives here, in one place, and never in Temporal histories."""

    __tablename__ = "leads"

    lead_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    company: Mapped[str | None] = mapped_column(String(255))
    job_title: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    lead_source: Mapped[str | None] = mapped_column(String(255))
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where and when marketing consent was last given (a form's consent box).
    consent_source: Mapped[str | None] = mapped_column(String(255), nullable=True)
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    account_id: Mapped[str | None] = mapped_column(String(255))
    merged_into: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FormSubmission(Base):
    __tablename__ = "form_submissions"

    submission_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    form_id: Mapped[str] = mapped_column(String(64), index=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.lead_id", ondelete="CASCADE"), index=True)
    # A client that retries after a timeout sends the same key and gets the first answer back.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutboxMessage(Base):
    """A signal owed to Temporal, committed with the fact it carries; the sweeper delivers leftovers."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Identity(Base):
    """An id a lead is known by: an email, a Segment userId or anonymousId."""

    __tablename__ = "identities"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(320), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.lead_id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Account(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Event(Base):
    """Every event as received (payload, with PII) and as its journey sees it (lead_event, without)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("source", "message_id", name="uq_events_source_message"),)

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.lead_id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    lead_event: Mapped[dict[str, Any]] = mapped_column(JSONB)


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rate_per_second: Mapped[float] = mapped_column(Float, default=100.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Erasure(Base):
    """That a lead was erased, when, and on whose request: the only trace an erasure leaves."""

    __tablename__ = "erasures"

    lead_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    requested_by: Mapped[str] = mapped_column(String(64))
    events: Mapped[int] = mapped_column(Integer)
    identities: Mapped[int] = mapped_column(Integer)


class ConnectorRateLimit(Base):
    """GCRA state of one throttle key: the time the next request would be on schedule."""

    __tablename__ = "connector_rate_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConnectorStat(Base):
    """One minute of one operation: `kind` is `call` (one HTTP request) or `sync` (one activity)."""

    __tablename__ = "connector_stats"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    operation: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    ok: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)
    unavailable: Mapped[int] = mapped_column(Integer, default=0)
    total_ms: Mapped[float] = mapped_column(Float, default=0.0)
    max_ms: Mapped[float] = mapped_column(Float, default=0.0)


class SendRefusal(Base):
    """A send the gate refused (domain.send_gate), once per send's key, with the reason."""

    __tablename__ = "send_refusals"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.lead_id", ondelete="CASCADE"))
    journey: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300))
    refused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EmailSend(Base):
    """A send a journey reserved (what the cross-journey frequency cap counts) and, once the
    platform took it, what was sent: what engagement the platforms report is attributed to."""

    __tablename__ = "email_sends"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.lead_id", ondelete="CASCADE"))
    journey: Mapped[str] = mapped_column(String(128))
    marketing: Mapped[bool] = mapped_column(Boolean)
    reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sequence_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    step_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    template_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
