"""CRM pipeline: deal stages per tenant, leads, deals with their stage history, and the
activity log.

Won and Lost are terminal: a trigger refuses moving a deal out of a stage marked won
or lost, whatever code tries. Stage history is append-only (the app role may only
insert). An activity is linked to at least one of deal, contact or account.

Revision ID: 0502_crm_pipeline
Revises: 0206_product_stock_is_low
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0502_crm_pipeline"
down_revision: str | Sequence[str] | None = "0206_product_stock_is_low"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("crm.deal_stages", "crm.leads", "crm.deals", "crm.deal_stage_history",
          "crm.activities")


def _user(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["core.users.id"],
                                   name=f"fk_{table}_{column}_users")


def upgrade() -> None:
    op.create_table(
        "deal_stages",
        *tenant_key_columns(),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("is_won", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_lost", sa.Boolean(), server_default=sa.false(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_deal_stages"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_deal_stages_tenant_id_name"),
        tenant_fk("deal_stages"),
        sa.CheckConstraint("probability BETWEEN 0 AND 100",
                           name="ck_deal_stages_probability_range"),
        sa.CheckConstraint("NOT (is_won AND is_lost)", name="ck_deal_stages_won_or_lost"),
        schema="crm",
    )
    op.create_table(
        "leads",
        *tenant_key_columns(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("company", sa.String(200), server_default="", nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(50), server_default="", nullable=False),
        sa.Column("source", sa.String(60), server_default="Web Page Form", nullable=False),
        sa.Column("status", sa.String(20), server_default="new", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("converted_account_id", sa.Uuid(), nullable=True),
        sa.Column("converted_contact_id", sa.Uuid(), nullable=True),
        sa.Column("converted_deal_id", sa.Uuid(), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_leads"),
        sa.ForeignKeyConstraint(["tenant_id", "converted_account_id"],
                                ["crm.accounts.tenant_id", "crm.accounts.id"],
                                name="fk_leads_tenant_id_converted_account_id_accounts"),
        sa.ForeignKeyConstraint(["tenant_id", "converted_contact_id"],
                                ["crm.contacts.tenant_id", "crm.contacts.id"],
                                name="fk_leads_tenant_id_converted_contact_id_contacts"),
        _user("leads", "owner_id"),
        tenant_fk("leads"),
        sa.CheckConstraint("status IN ('new', 'contacted', 'qualified', 'unqualified',"
                           " 'converted')", name="ck_leads_status_known"),
        sa.CheckConstraint("(status = 'converted') = (converted_at IS NOT NULL)",
                           name="ck_leads_converted_consistent"),
        schema="crm",
    )
    op.create_index("ix_leads_tenant_id_status_updated_at", "leads",
                    ["tenant_id", "status", "updated_at"], schema="crm")
    op.create_table(
        "deals",
        *tenant_key_columns(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.Numeric(19, 4), server_default="0", nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("expected_close", sa.Date(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("lost_reason", sa.String(500), server_default="", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_lead_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_deals"),
        sa.ForeignKeyConstraint(["tenant_id", "account_id"],
                                ["crm.accounts.tenant_id", "crm.accounts.id"],
                                name="fk_deals_tenant_id_account_id_accounts"),
        sa.ForeignKeyConstraint(["tenant_id", "contact_id"],
                                ["crm.contacts.tenant_id", "crm.contacts.id"],
                                name="fk_deals_tenant_id_contact_id_contacts"),
        sa.ForeignKeyConstraint(["tenant_id", "stage_id"],
                                ["crm.deal_stages.tenant_id", "crm.deal_stages.id"],
                                name="fk_deals_tenant_id_stage_id_deal_stages"),
        _user("deals", "owner_id"),
        tenant_fk("deals"),
        sa.CheckConstraint("value >= 0", name="ck_deals_value_non_negative"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_deals_currency_iso"),
        schema="crm",
    )
    # The deals list filters by stage and pages by recency; the benchmark's query.
    op.create_index("ix_deals_tenant_id_stage_id_updated_at", "deals",
                    ["tenant_id", "stage_id", "updated_at"], schema="crm")
    op.create_index("ix_deals_tenant_id_account_id", "deals", ["tenant_id", "account_id"],
                    schema="crm")
    op.create_index("ix_deals_tenant_id_contact_id", "deals", ["tenant_id", "contact_id"],
                    schema="crm")
    op.create_foreign_key("fk_leads_tenant_id_converted_deal_id_deals", "leads", "deals",
                          ["tenant_id", "converted_deal_id"], ["tenant_id", "id"],
                          source_schema="crm", referent_schema="crm")
    op.create_table(
        "deal_stage_history",
        *tenant_key_columns(),
        sa.Column("deal_id", sa.Uuid(), nullable=False),
        sa.Column("from_stage_id", sa.Uuid(), nullable=True),
        sa.Column("to_stage_id", sa.Uuid(), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_deal_stage_history"),
        sa.ForeignKeyConstraint(["tenant_id", "deal_id"], ["crm.deals.tenant_id", "crm.deals.id"],
                                name="fk_deal_stage_history_tenant_id_deal_id_deals"),
        sa.ForeignKeyConstraint(["tenant_id", "from_stage_id"],
                                ["crm.deal_stages.tenant_id", "crm.deal_stages.id"],
                                name="fk_deal_stage_history_tenant_id_from_stage_id_deal_stages"),
        sa.ForeignKeyConstraint(["tenant_id", "to_stage_id"],
                                ["crm.deal_stages.tenant_id", "crm.deal_stages.id"],
                                name="fk_deal_stage_history_tenant_id_to_stage_id_deal_stages"),
        _user("deal_stage_history", "changed_by"),
        tenant_fk("deal_stage_history"),
        schema="crm",
    )
    op.create_index("ix_deal_stage_history_tenant_id_deal_id_changed_at", "deal_stage_history",
                    ["tenant_id", "deal_id", "changed_at"], schema="crm")
    op.create_table(
        "activities",
        *tenant_key_columns(),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("deal_id", sa.Uuid(), nullable=True),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_activities"),
        sa.ForeignKeyConstraint(["tenant_id", "deal_id"], ["crm.deals.tenant_id", "crm.deals.id"],
                                name="fk_activities_tenant_id_deal_id_deals"),
        sa.ForeignKeyConstraint(["tenant_id", "contact_id"],
                                ["crm.contacts.tenant_id", "crm.contacts.id"],
                                name="fk_activities_tenant_id_contact_id_contacts"),
        sa.ForeignKeyConstraint(["tenant_id", "account_id"],
                                ["crm.accounts.tenant_id", "crm.accounts.id"],
                                name="fk_activities_tenant_id_account_id_accounts"),
        _user("activities", "owner_id"),
        tenant_fk("activities"),
        sa.CheckConstraint("kind IN ('email', 'call', 'meeting', 'note', 'task')",
                           name="ck_activities_kind_known"),
        sa.CheckConstraint("num_nonnulls(deal_id, contact_id, account_id) > 0",
                           name="ck_activities_linked"),
        schema="crm",
    )
    for column in ("deal_id", "contact_id", "account_id"):
        op.create_index(f"ix_activities_tenant_id_{column}_created_at", "activities",
                        ["tenant_id", column, "created_at"], schema="crm")
    op.execute(
        """
        CREATE FUNCTION crm.refuse_leaving_terminal_stage() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            old_terminal boolean;
        BEGIN
            IF NEW.stage_id IS DISTINCT FROM OLD.stage_id THEN
                SELECT is_won OR is_lost INTO old_terminal FROM crm.deal_stages
                 WHERE tenant_id = OLD.tenant_id AND id = OLD.stage_id;
                IF old_terminal THEN
                    RAISE EXCEPTION 'the deal is closed (won or lost): its stage cannot change'
                        USING ERRCODE = 'CRMST';
                END IF;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER terminal_stage BEFORE UPDATE OF stage_id ON crm.deals"
               " FOR EACH ROW EXECUTE FUNCTION crm.refuse_leaving_terminal_stage()")
    for table in TABLES:
        enable_tenant_rls(op, table)
        enable_audit(op, table)
    _seed_existing_tenants()


# Frozen copy of app/crm/pipeline.py DEFAULT_STAGES, for tenants that exist already.
STAGES = (("Discovery", 10, False, False), ("Proposal Sent", 30, False, False),
          ("Negotiation", 60, False, False), ("Won", 100, True, False),
          ("Lost", 0, False, True))


def _seed_existing_tenants() -> None:
    conn = op.get_bind()
    insert = sa.text("INSERT INTO crm.deal_stages (tenant_id, name, position, probability,"
                     " is_won, is_lost) VALUES (:t, :name, :pos, :p, :won, :lost)")
    for (tenant_id,) in conn.execute(sa.text("SELECT id FROM core.tenants")).fetchall():
        # RLS is forced for the owner too: act as each tenant in turn.
        conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"),
                     {"t": str(tenant_id)})
        for pos, (name, probability, won, lost) in enumerate(STAGES, start=1):
            conn.execute(insert, {"t": tenant_id, "name": name, "pos": pos, "p": probability,
                                  "won": won, "lost": lost})
    conn.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    for table in reversed(TABLES):
        disable_audit(op, table)
    op.execute("DROP TRIGGER terminal_stage ON crm.deals")
    op.execute("DROP FUNCTION crm.refuse_leaving_terminal_stage()")
    op.drop_table("activities", schema="crm")
    op.drop_table("deal_stage_history", schema="crm")
    op.drop_constraint("fk_leads_tenant_id_converted_deal_id_deals", "leads", schema="crm")
    op.drop_table("deals", schema="crm")
    op.drop_table("leads", schema="crm")
    op.drop_table("deal_stages", schema="crm")
