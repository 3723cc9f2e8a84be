"""email sends: what was sent, through which platform, for which sequence and step

Revision ID: 0019
Revises: 0018

Engagement the platforms report (an open, a click, a bounce) is attributed to the engine's send
it answers: the latest send to the lead through the same platform before the engagement. A
reservation says a journey may send; these columns say that it did, and what.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("email_sends", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("email_sends", sa.Column("provider", sa.String(32), nullable=True))
    op.add_column("email_sends", sa.Column("sequence_id", sa.String(128), nullable=True))
    op.add_column("email_sends", sa.Column("step_id", sa.String(128), nullable=True))
    op.add_column("email_sends", sa.Column("template_id", sa.String(255), nullable=True))
    op.create_index("ix_email_sends_lead_sent", "email_sends", ["lead_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_email_sends_lead_sent", table_name="email_sends")
    for column in ("template_id", "step_id", "sequence_id", "provider", "sent_at"):
        op.drop_column("email_sends", column)
