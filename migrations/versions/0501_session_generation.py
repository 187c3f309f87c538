"""Session generation on users: raising it ends every session of that user.

Revision ID: 0501_session_generation
Revises: 0500_crm_accounts_contacts
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0501_session_generation"
down_revision: str | Sequence[str] | None = "0500_crm_accounts_contacts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("session_generation", sa.Integer(), server_default="0",
                                     nullable=False), schema="core")


def downgrade() -> None:
    op.drop_column("users", "session_generation", schema="core")
