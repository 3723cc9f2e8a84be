"""attribution results per (range, model), replaced whole on a rerun; integration health per day

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attribution_runs",
        sa.Column("range_start", sa.Date, primary_key=True),
        sa.Column("range_end", sa.Date, primary_key=True),
        sa.Column("model", sa.String(32), primary_key=True),
        sa.Column("credits", JSONB, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_table(
        "integration_daily",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("operation", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("ok", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("rate_limited", sa.Integer, nullable=False),
        sa.Column("unavailable", sa.Integer, nullable=False),
        sa.Column("total_ms", sa.Float, nullable=False),
        sa.Column("max_ms", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("integration_daily")
    op.drop_table("attribution_runs")
