"""shared rate limits for platform connectors, and their call statistics

Revision ID: 0005
Revises: 0004

`connector_rate_limits` holds one theoretical arrival time per throttle key (GCRA): every worker
reserves its slot with one atomic upsert. `connector_stats` holds per-minute call counts by
provider and operation, the data behind integration health.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_rate_limits",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "connector_stats",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("operation", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("bucket", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("ok", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rate_limited", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unavailable", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_ms", sa.Float, nullable=False, server_default="0"),
        sa.Column("max_ms", sa.Float, nullable=False, server_default="0"),
    )
    op.create_index("connector_stats_bucket", "connector_stats", ["bucket"])


def downgrade() -> None:
    op.drop_index("connector_stats_bucket", "connector_stats")
    op.drop_table("connector_stats")
    op.drop_table("connector_rate_limits")
