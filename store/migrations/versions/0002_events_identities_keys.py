"""events, identities, accounts, API keys; leads without an email; outbox claims

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("leads", "email", nullable=True)
    op.alter_column("leads", "email_hash", nullable=True)
    op.add_column("leads", sa.Column("traits", JSONB, nullable=False, server_default="{}"))
    op.add_column("leads", sa.Column("account_id", sa.String(255)))
    op.add_column("leads", sa.Column("merged_into", sa.String(36)))

    op.create_table(
        "identities",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(320), primary_key=True),
        sa.Column(
            "lead_id", sa.String(36), sa.ForeignKey("leads.lead_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_identities_lead", "identities", ["lead_id"])

    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(255), primary_key=True),
        sa.Column("traits", JSONB, nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("anonymous_id", sa.String(255)),
        sa.Column("user_id", sa.String(255)),
        sa.Column("lead_id", sa.String(36), sa.ForeignKey("leads.lead_id", ondelete="CASCADE")),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("lead_event", JSONB, nullable=False),
        sa.UniqueConstraint("source", "message_id", name="uq_events_source_message"),
    )
    op.create_index("ix_events_lead_time", "events", ["lead_id", "occurred_at"])
    op.create_index(
        "ix_events_anonymous_unlinked",
        "events",
        ["anonymous_id"],
        postgresql_where=sa.text("lead_id IS NULL"),
    )

    op.add_column("outbox", sa.Column("claimed_until", sa.DateTime(timezone=True)))

    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("rate_per_second", sa.Float, nullable=False, server_default="100"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_column("outbox", "claimed_until")
    op.drop_table("events")
    op.drop_table("accounts")
    op.drop_table("identities")
    op.drop_column("leads", "merged_into")
    op.drop_column("leads", "account_id")
    op.drop_column("leads", "traits")
