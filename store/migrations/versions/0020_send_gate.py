"""the send gate: where and when marketing consent was given, and every send refused with why

Revision ID: 0020
Revises: 0019

Every email to a lead passes one gate (domain.send_gate): marketing consent needs its source and
time, so an unsubscribe after it withdraws it and a consent given again after that restores it;
a refusal is kept with its reason, for the lead's page and for audit.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("consent_source", sa.String(255), nullable=True))
    op.add_column("leads", sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "send_refusals",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column(
            "lead_id", sa.String(36), sa.ForeignKey("leads.lead_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("journey", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_send_refusals_lead", "send_refusals", ["lead_id", "refused_at"])


def downgrade() -> None:
    op.drop_index("ix_send_refusals_lead", table_name="send_refusals")
    op.drop_table("send_refusals")
    op.drop_column("leads", "consent_at")
    op.drop_column("leads", "consent_source")
