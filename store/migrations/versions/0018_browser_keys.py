"""browser keys: the site origins a public key may be used from, and its rate per client IP

Revision ID: 0018
Revises: 0017

A browser key sits in a web page, so anyone can read it. It is bound to the origins it was made
for (CORS, and the Origin every browser sends on a POST), and limited per client IP as well as in
total, so one abuser cannot spend the site's whole budget.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("origins", postgresql.ARRAY(sa.String(255)), nullable=False, server_default="{}"),
    )
    op.add_column("api_keys", sa.Column("rate_per_ip", sa.Float, nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "rate_per_ip")
    op.drop_column("api_keys", "origins")
