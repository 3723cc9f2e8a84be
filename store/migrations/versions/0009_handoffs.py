"""the hand-off log: MQL, assigned, notified and accepted times per hand-off, for the SLA report

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("handoff_id", sa.String(128), primary_key=True),
        sa.Column(
            "lead_id", sa.String(36), sa.ForeignKey("leads.lead_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("mql_at", sa.DateTime(timezone=True)),
        sa.Column("assigned_at", sa.DateTime(timezone=True)),
        sa.Column("notified_at", sa.DateTime(timezone=True)),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("rep_id", sa.String(100)),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("escalations", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("handoffs_mql_at", "handoffs", ["mql_at"])


def downgrade() -> None:
    op.drop_index("handoffs_mql_at", "handoffs")
    op.drop_table("handoffs")
