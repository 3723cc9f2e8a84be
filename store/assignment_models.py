"""Tables of the sales-rep assignment (store/assignments.py): each rep's load, each hand-off's assignment.

On `store.models.Base`, so Alembic's metadata sees them once this module is imported.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base


class RepLoadRow(Base):
    """A rep's counters; its row lock is what serialises concurrent hand-offs that could go to the rep."""

    __tablename__ = "rep_loads"
    __table_args__ = (
        CheckConstraint("assigned_total >= 0", name="ck_rep_loads_assigned_total"),
        CheckConstraint('"open" >= 0', name="ck_rep_loads_open"),
    )

    rep_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The fairness count: hand-offs assigned (a rep's first row starts level with the team, see assignments).
    assigned_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Hand-offs assigned and not yet released (escalated away or closed).
    open: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AssignmentRow(Base):
    """A hand-off's assignment for its latest attempt: a rep, or the team's queue (rep_id NULL)."""

    __tablename__ = "assignments"
    __table_args__ = (
        CheckConstraint(
            "(queue AND rep_id IS NULL) OR (NOT queue AND rep_id IS NOT NULL)", name="ck_assignments_queue"
        ),
        CheckConstraint("attempt >= 1", name="ck_assignments_attempt"),
        Index("assignments_lead", "lead_id"),
        Index("assignments_rep_time", "rep_id", "assigned_at"),
    )

    handoff_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64))
    rep_id: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempt: Mapped[int] = mapped_column(Integer)
