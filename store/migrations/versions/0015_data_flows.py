"""data flows: when each of the seed's flows started (the event) and reached the platform

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_flows",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("flow", sa.String(32), nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_data_flows_flow_done", "data_flows", ["flow", "done_at"])


def downgrade() -> None:
    op.drop_table("data_flows")
