"""CRM: support tickets with a comment thread, and per-tenant custom fields.

* ``crm.custom_field_definitions``: what a tenant admin defined (entity, key, type,
  label, required, choices). Keys are unique per entity *including* deleted
  definitions, so a key is never reused with another meaning over old values.
* ``custom jsonb`` on accounts, contacts and tickets, with a GIN (jsonb_path_ops)
  index, and ``crm.custom_values``: one row per (record, key, scalar value) kept by
  the trigger ``crm.index_custom_values()``. Filters go through that table because
  under RLS the planner may not use an index for any jsonb operator (none is
  leakproof); see ``app/crm/custom_fields.py`` for the measurement.
* ``crm.tickets`` (gapless number per tenant, status and priority checked) and the
  append-only ``crm.ticket_comments``.

Revision ID: 0503_crm_tickets_custom_fields
Revises: 0301_billing
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0503_crm_tickets_custom_fields"
down_revision: str | Sequence[str] | None = "0301_billing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same list as app.crm.custom_fields.ENTITIES (a migration must not import app code
# that may change later).
ENTITIES = ("account", "contact", "deal", "lead", "ticket", "product")
FIELD_TYPES = ("text", "number", "date", "boolean", "choice", "multi_choice")
CUSTOM_TABLES = {"crm.accounts": "account", "crm.contacts": "contact", "crm.tickets": "ticket"}


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


INDEX_FUNCTION = r"""
CREATE FUNCTION crm.index_custom_values() RETURNS trigger
LANGUAGE plpgsql AS $$
-- TG_ARGV[0]: the entity name; TG_ARGV[1] (optional): the jsonb column, default 'custom'.
-- Runs as the writing role, so RLS on crm.custom_values applies to what it writes.
DECLARE
    entity_name text := TG_ARGV[0];
    column_name text := coalesce(TG_ARGV[1], 'custom');
    doc jsonb;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF TG_OP = 'UPDATE'
           AND to_jsonb(NEW) -> column_name IS NOT DISTINCT FROM to_jsonb(OLD) -> column_name
        THEN
            RETURN NULL;
        END IF;
        DELETE FROM crm.custom_values
         WHERE tenant_id = OLD.tenant_id AND entity = entity_name AND record_id = OLD.id;
        IF TG_OP = 'DELETE' THEN
            RETURN NULL;
        END IF;
    END IF;
    doc := to_jsonb(NEW) -> column_name;
    IF doc IS NULL OR jsonb_typeof(doc) <> 'object' THEN
        RETURN NULL;
    END IF;
    INSERT INTO crm.custom_values (tenant_id, entity, record_id, key, value)
    SELECT NEW.tenant_id, entity_name, NEW.id, f.key,
           CASE jsonb_typeof(e.value)
               WHEN 'number' THEN trim_scale((e.value #>> '{}')::numeric)::text
               ELSE left(e.value #>> '{}', 500)
           END
      FROM jsonb_each(doc) AS f
      CROSS JOIN LATERAL jsonb_array_elements(
          CASE jsonb_typeof(f.value) WHEN 'array' THEN f.value
               ELSE jsonb_build_array(f.value) END) AS e(value)
     WHERE jsonb_typeof(e.value) IN ('string', 'number', 'boolean');
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "custom_field_definitions",
        *tenant_key_columns(),
        sa.Column("entity", sa.String(20), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("field_type", sa.String(20), nullable=False),
        sa.Column("required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("choices", pg.JSONB(), server_default=sa.text("'[]'::jsonb"),
                  nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_custom_field_definitions"),
        sa.UniqueConstraint("tenant_id", "entity", "key",
                            name="uq_custom_field_definitions_tenant_id_entity_key"),
        tenant_fk("custom_field_definitions"),
        sa.CheckConstraint(_in("entity", ENTITIES),
                           name="ck_custom_field_definitions_entity_known"),
        sa.CheckConstraint(_in("field_type", FIELD_TYPES),
                           name="ck_custom_field_definitions_field_type_known"),
        sa.CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,39}$'",
                           name="ck_custom_field_definitions_key_format"),
        sa.CheckConstraint("jsonb_typeof(choices) = 'array' AND "
                           "(field_type IN ('choice', 'multi_choice')) = "
                           "(jsonb_array_length(choices) > 0)",
                           name="ck_custom_field_definitions_choices_for_choice_types"),
        schema="crm",
    )
    enable_tenant_rls(op, "crm.custom_field_definitions")
    enable_audit(op, "crm.custom_field_definitions")

    op.create_table(
        "custom_values",
        *tenant_key_columns(),
        sa.Column("entity", sa.String(20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_custom_values"),
        tenant_fk("custom_values"),
        schema="crm",
    )
    op.create_index("ix_custom_values_tenant_id_entity_key_value", "custom_values",
                    ["tenant_id", "entity", "key", "value", "record_id"], schema="crm")
    op.create_index("ix_custom_values_tenant_id_entity_record_id", "custom_values",
                    ["tenant_id", "entity", "record_id"], schema="crm")
    enable_tenant_rls(op, "crm.custom_values")
    op.execute(INDEX_FUNCTION)

    op.create_table(
        "tickets",
        *tenant_key_columns(),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("priority", sa.String(10), server_default="normal", nullable=False),
        sa.Column("status", sa.String(10), server_default="open", nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("custom", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_tickets"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_tickets_tenant_id_number"),
        sa.ForeignKeyConstraint(["tenant_id", "account_id"],
                                ["crm.accounts.tenant_id", "crm.accounts.id"],
                                name="fk_tickets_tenant_id_accounts"),
        sa.ForeignKeyConstraint(["tenant_id", "contact_id"],
                                ["crm.contacts.tenant_id", "crm.contacts.id"],
                                name="fk_tickets_tenant_id_contacts"),
        sa.ForeignKeyConstraint(["assignee_id"], ["core.users.id"],
                                name="fk_tickets_assignee_id_users"),
        sa.ForeignKeyConstraint(["created_by_id"], ["core.users.id"],
                                name="fk_tickets_created_by_id_users"),
        tenant_fk("tickets"),
        sa.CheckConstraint("number > 0", name="ck_tickets_number_positive"),
        sa.CheckConstraint(_in("priority", ("low", "normal", "high", "urgent")),
                           name="ck_tickets_priority_known"),
        sa.CheckConstraint(_in("status", ("open", "pending", "resolved", "closed")),
                           name="ck_tickets_status_known"),
        sa.CheckConstraint("(status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL)",
                           name="ck_tickets_resolved_at_matches_status"),
        sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)",
                           name="ck_tickets_closed_at_matches_status"),
        sa.CheckConstraint("jsonb_typeof(custom) = 'object'", name="ck_tickets_custom_object"),
        schema="crm",
    )
    op.create_index("ix_tickets_tenant_id_status_created_at", "tickets",
                    ["tenant_id", "status", "created_at"], schema="crm")
    op.create_index("ix_tickets_tenant_id_assignee_id", "tickets",
                    ["tenant_id", "assignee_id"], schema="crm")
    op.create_index("ix_tickets_tenant_id_account_id", "tickets",
                    ["tenant_id", "account_id"], schema="crm")
    op.create_index("ix_tickets_tenant_id_contact_id", "tickets",
                    ["tenant_id", "contact_id"], schema="crm")
    op.create_index("ix_tickets_tenant_id_updated_at", "tickets",
                    ["tenant_id", "updated_at"], schema="crm")
    enable_tenant_rls(op, "crm.tickets")
    enable_audit(op, "crm.tickets")

    op.create_table(
        "ticket_comments",
        *tenant_key_columns(),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("internal", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_ticket_comments"),
        sa.ForeignKeyConstraint(["tenant_id", "ticket_id"],
                                ["crm.tickets.tenant_id", "crm.tickets.id"],
                                name="fk_ticket_comments_tenant_id_tickets"),
        sa.ForeignKeyConstraint(["author_id"], ["core.users.id"],
                                name="fk_ticket_comments_author_id_users"),
        tenant_fk("ticket_comments"),
        sa.CheckConstraint("length(btrim(body)) > 0", name="ck_ticket_comments_body_not_blank"),
        schema="crm",
    )
    op.create_index("ix_ticket_comments_tenant_id_ticket_id_created_at", "ticket_comments",
                    ["tenant_id", "ticket_id", "created_at"], schema="crm")
    enable_tenant_rls(op, "crm.ticket_comments")
    enable_audit(op, "crm.ticket_comments")

    for table in ("accounts", "contacts"):
        op.add_column(table, sa.Column("custom", pg.JSONB(),
                                       server_default=sa.text("'{}'::jsonb"), nullable=False),
                      schema="crm")
        op.create_check_constraint(f"ck_{table}_custom_object", table,
                                   "jsonb_typeof(custom) = 'object'", schema="crm")
    for qualified, entity in CUSTOM_TABLES.items():
        table = qualified.split(".")[1]
        op.create_index(f"ix_{table}_custom", table, ["custom"], schema="crm",
                        postgresql_using="gin", postgresql_ops={"custom": "jsonb_path_ops"})
        op.execute(f"CREATE TRIGGER index_custom_values AFTER INSERT OR DELETE OR UPDATE OF "
                   f"custom ON {qualified} FOR EACH ROW "
                   f"EXECUTE FUNCTION crm.index_custom_values('{entity}')")


def downgrade() -> None:
    for qualified in CUSTOM_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS index_custom_values ON {qualified}")
    for table in ("contacts", "accounts"):
        op.drop_index(f"ix_{table}_custom", table_name=table, schema="crm")
        op.drop_constraint(f"ck_{table}_custom_object", table, schema="crm", type_="check")
        op.drop_column(table, "custom", schema="crm")
    disable_audit(op, "crm.ticket_comments")
    op.drop_table("ticket_comments", schema="crm")
    disable_audit(op, "crm.tickets")
    op.drop_table("tickets", schema="crm")
    op.execute("DROP FUNCTION crm.index_custom_values()")
    op.drop_table("custom_values", schema="crm")
    disable_audit(op, "crm.custom_field_definitions")
    op.drop_table("custom_field_definitions", schema="crm")
