"""the router is woken after the ingest commit, not by a trigger inside it

Revision ID: 0017
Revises: 0016

A NOTIFY inside a transaction holds PostgreSQL's notification lock until the commit's WAL flush,
so the trigger made every ingest commit wait for the previous one's flush. The API now sends the
NOTIFY itself once its transaction has committed (store/ingest.py, RouterDoorbell).
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS journeys_outbox_notify()")


def downgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION journeys_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('journeys_outbox', '');
            RETURN NULL;
        END;
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION journeys_outbox_notify()
        """
    )
