"""experiments: who saw which variant (once per experiment and lead), and promoted winners

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment_exposures",
        sa.Column("experiment_id", sa.String(200), primary_key=True),
        sa.Column(
            "lead_id", sa.String(36), sa.ForeignKey("leads.lead_id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("exposed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_experiment_exposures_variant", "experiment_exposures", ["experiment_id", "variant"])
    op.create_table(
        "experiment_promotions",
        sa.Column("experiment_id", sa.String(200), primary_key=True),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("promoted_by", sa.String(200), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("experiment_promotions")
    op.drop_table("experiment_exposures")
