"""sales-rep assignment: each rep's load counters, each hand-off's assignment

Revision ID: 0008
Revises: 0007

`rep_loads` holds one row per rep; assigning a hand-off locks the rows of the reps it could go to, so
concurrent hand-offs are served one after the other and never both take a rep's last open slot.
`assignments` holds one row per hand-off (its latest attempt): the rep, or the team's queue (rep_id NULL).
No foreign key to leads: the record of who was handed what outlives an erasure (it holds no PII).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rep_loads",
        sa.Column("rep_id", sa.String(64), primary_key=True),
        sa.Column("assigned_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("open", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("assigned_total >= 0", name="ck_rep_loads_assigned_total"),
        sa.CheckConstraint('"open" >= 0', name="ck_rep_loads_open"),
    )
    op.create_table(
        "assignments",
        sa.Column("handoff_id", sa.String(255), primary_key=True),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("rep_id", sa.String(64)),
        sa.Column("queue", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "(queue AND rep_id IS NULL) OR (NOT queue AND rep_id IS NOT NULL)", name="ck_assignments_queue"
        ),
        sa.CheckConstraint("attempt >= 1", name="ck_assignments_attempt"),
    )
    op.create_index("assignments_lead", "assignments", ["lead_id"])
    op.create_index("assignments_rep_time", "assignments", ["rep_id", "assigned_at"])


def downgrade() -> None:
    op.drop_index("assignments_rep_time", "assignments")
    op.drop_index("assignments_lead", "assignments")
    op.drop_table("assignments")
    op.drop_table("rep_loads")
