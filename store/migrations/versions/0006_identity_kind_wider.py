"""identity kinds up to 64 characters (`salesforce_contact` did not fit in 16)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("identities", "kind", type_=sa.String(64), existing_type=sa.String(16))


def downgrade() -> None:
    op.alter_column("identities", "kind", type_=sa.String(16), existing_type=sa.String(64))
