"""the send ledger: every marketing email a journey was allowed to send, for the frequency cap

Revision ID: 0007
Revises: 0006

One row per send, keyed by its idempotency key, so a retried reservation is the same
reservation. Rows go with the lead when it is erased.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_sends",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column(
            "lead_id", sa.String(36), sa.ForeignKey("leads.lead_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("journey", sa.String(128), nullable=False),
        sa.Column("marketing", sa.Boolean, nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("email_sends_lead_time", "email_sends", ["lead_id", "reserved_at"])


def downgrade() -> None:
    op.drop_index("email_sends_lead_time", "email_sends")
    op.drop_table("email_sends")
