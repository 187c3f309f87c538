"""CRM: accounts and contacts.

Revision ID: 0500_crm_accounts_contacts
Revises: 0404_idempotency
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0500_crm_accounts_contacts"
down_revision: str | Sequence[str] | None = "0404_idempotency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        *tenant_key_columns(),
        sa.Column("name", sa.String(200), nullable=False),
        # lower-cased, punctuation and legal-form suffixes removed: "ACME, Inc." = "acme"
        sa.Column("normalized_name", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(253), nullable=True),
        sa.Column("industry", sa.String(100), server_default="", nullable=False),
        sa.Column("website", sa.String(500), server_default="", nullable=False),
        sa.Column("billing_address", sa.Text(), server_default="", nullable=False),
        sa.Column("shipping_address", sa.Text(), server_default="", nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), server_default="30", nullable=False),
        sa.Column("credit_limit", sa.Numeric(19, 4), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_accounts"),
        sa.ForeignKeyConstraint(["owner_id"], ["core.users.id"],
                                name="fk_accounts_owner_id_users"),
        tenant_fk("accounts"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_accounts_currency_iso"),
        sa.CheckConstraint("payment_terms_days BETWEEN 0 AND 365",
                           name="ck_accounts_payment_terms_range"),
        sa.CheckConstraint("credit_limit IS NULL OR credit_limit >= 0",
                           name="ck_accounts_credit_limit_non_negative"),
        schema="crm",
    )
    # Duplicate detection: same normalised name and domain among live accounts.
    op.execute("CREATE UNIQUE INDEX uq_accounts_tenant_id_normalized_name_domain ON crm.accounts"
               " (tenant_id, normalized_name, coalesce(domain, '')) WHERE deleted_at IS NULL")
    op.create_index("ix_accounts_tenant_id_updated_at", "accounts", ["tenant_id", "updated_at"],
                    schema="crm")
    enable_tenant_rls(op, "crm.accounts")
    enable_audit(op, "crm.accounts")

    op.create_table(
        "contacts",
        *tenant_key_columns(),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("first_name", sa.String(100), server_default="", nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(50), server_default="", nullable=False),
        sa.Column("title", sa.String(100), server_default="", nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_contacts"),
        sa.ForeignKeyConstraint(["tenant_id", "account_id"],
                                ["crm.accounts.tenant_id", "crm.accounts.id"],
                                name="fk_contacts_tenant_id_accounts"),
        sa.ForeignKeyConstraint(["owner_id"], ["core.users.id"],
                                name="fk_contacts_owner_id_users"),
        tenant_fk("contacts"),
        schema="crm",
    )
    op.execute("CREATE UNIQUE INDEX uq_contacts_tenant_id_email ON crm.contacts"
               " (tenant_id, lower(email)) WHERE deleted_at IS NULL AND email IS NOT NULL")
    op.create_index("ix_contacts_tenant_id_account_id", "contacts", ["tenant_id", "account_id"],
                    schema="crm")
    op.create_index("ix_contacts_tenant_id_updated_at", "contacts", ["tenant_id", "updated_at"],
                    schema="crm")
    enable_tenant_rls(op, "crm.contacts")
    enable_audit(op, "crm.contacts")


def downgrade() -> None:
    disable_audit(op, "crm.contacts")
    op.drop_table("contacts", schema="crm")
    disable_audit(op, "crm.accounts")
    op.drop_table("accounts", schema="crm")
