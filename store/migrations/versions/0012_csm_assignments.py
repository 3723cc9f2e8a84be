"""each customer account's customer-success manager, as assigned (one row per account)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "csm_assignments",
        sa.Column("account_id", sa.String(255), primary_key=True),
        sa.Column("csm_id", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_csm_assignments_csm", "csm_assignments", ["csm_id"])


def downgrade() -> None:
    op.drop_table("csm_assignments")
