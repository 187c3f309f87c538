"""General ledger: chart of accounts, exchange rates, periods, journal entries and lines,
with the database enforcing balance, immutability of posted entries and closed periods.

Revision ID: 0200_ledger
Revises: 0501_session_generation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0200_ledger"
down_revision: str | Sequence[str] | None = "0501_session_generation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATE = sa.Numeric(20, 10)
MONEY = sa.Numeric(19, 4)
TABLES = ("ledger.accounts", "ledger.exchange_rates", "ledger.periods",
          "ledger.journal_entries", "ledger.journal_lines")

# Frozen copy of app/ledger/chart.py at the time of this revision, for tenants that
# existed before it (new tenants are seeded by the ledger's tenant seeder).
CHART = (
    ("1000", "Cash", "asset", "cash"),
    ("1010", "Bank", "asset", "bank"),
    ("1100", "Accounts receivable", "asset", "receivables"),
    ("1200", "Inventory", "asset", "inventory"),
    ("1300", "Input tax (recoverable)", "asset", "tax_receivable"),
    ("1500", "Equipment and machinery", "asset", None),
    ("2000", "Accounts payable", "liability", "payables"),
    ("2100", "Goods received not invoiced", "liability", "grni"),
    ("2200", "Sales tax payable", "liability", "tax_payable"),
    ("2300", "Payroll liabilities", "liability", "payroll"),
    ("3000", "Share capital", "equity", "capital"),
    ("3100", "Retained earnings", "equity", "retained_earnings"),
    ("3900", "Opening balance equity", "equity", "opening_balance"),
    ("4000", "Sales of goods", "revenue", "sales"),
    ("4100", "Services revenue", "revenue", None),
    ("4900", "Exchange rate gains", "revenue", "fx_gain"),
    ("5000", "Cost of goods sold", "cogs", "cogs"),
    ("5100", "Inventory adjustments", "cogs", "inventory_adjustment"),
    ("5200", "Purchase price variance", "cogs", "purchase_variance"),
    ("6000", "Salaries and wages", "expense", "wages"),
    ("6100", "Rent", "expense", None),
    ("6200", "Utilities", "expense", None),
    ("6300", "Repairs and maintenance", "expense", None),
    ("6400", "Office supplies", "expense", None),
    ("6800", "Bank charges", "expense", None),
    ("6900", "Exchange rate losses", "expense", "fx_loss"),
)


def upgrade() -> None:
    op.create_table(
        "accounts",
        *tenant_key_columns(),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("role", sa.String(40), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_accounts"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_accounts_tenant_id_code"),
        tenant_fk("accounts"),
        sa.CheckConstraint(
            "type IN ('asset', 'liability', 'equity', 'revenue', 'cogs', 'expense')",
            name="ck_accounts_type_known"),
        sa.CheckConstraint("code ~ '^[0-9A-Za-z][0-9A-Za-z.-]{0,19}$'",
                           name="ck_accounts_code_format"),
        schema="ledger",
    )
    op.create_index("uq_accounts_tenant_id_role", "accounts", ["tenant_id", "role"],
                    unique=True, schema="ledger", postgresql_where=sa.text("role IS NOT NULL"))

    op.create_table(
        "exchange_rates",
        *tenant_key_columns(),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_exchange_rates"),
        sa.UniqueConstraint("tenant_id", "currency", "rate_date",
                            name="uq_exchange_rates_tenant_id_currency_rate_date"),
        tenant_fk("exchange_rates"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_exchange_rates_currency_iso"),
        sa.CheckConstraint("rate > 0", name="ck_exchange_rates_rate_positive"),
        schema="ledger",
    )

    op.create_table(
        "periods",
        *tenant_key_columns(),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("status", sa.String(10), server_default="open", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_periods"),
        sa.UniqueConstraint("tenant_id", "period_start",
                            name="uq_periods_tenant_id_period_start"),
        sa.ForeignKeyConstraint(["closed_by"], ["core.users.id"],
                                name="fk_periods_closed_by_users"),
        tenant_fk("periods"),
        sa.CheckConstraint("period_start = date_trunc('month', period_start)::date",
                           name="ck_periods_first_of_month"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_periods_status_known"),
        sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)",
                           name="ck_periods_closed_stamped"),
        schema="ledger",
    )

    op.create_table(
        "journal_entries",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=True),
        sa.Column("entry_date", sa.Date(), nullable=False),
        sa.Column("description", sa.String(500), server_default="", nullable=False),
        sa.Column("status", sa.String(10), server_default="draft", nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_by", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("source_type", sa.String(60), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_journal_entries"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_journal_entries_tenant_id_number"),
        sa.UniqueConstraint("tenant_id", "reverses_id",
                            name="uq_journal_entries_tenant_id_reverses_id"),
        sa.ForeignKeyConstraint(["tenant_id", "reverses_id"],
                                ["ledger.journal_entries.tenant_id", "ledger.journal_entries.id"],
                                name="fk_journal_entries_tenant_id_journal_entries"),
        sa.ForeignKeyConstraint(["posted_by"], ["core.users.id"],
                                name="fk_journal_entries_posted_by_users"),
        sa.ForeignKeyConstraint(["created_by"], ["core.users.id"],
                                name="fk_journal_entries_created_by_users"),
        tenant_fk("journal_entries"),
        sa.CheckConstraint("status IN ('draft', 'posted')",
                           name="ck_journal_entries_status_known"),
        sa.CheckConstraint(
            "(status = 'draft' AND number IS NULL AND posted_at IS NULL)"
            " OR (status = 'posted' AND number IS NOT NULL AND posted_at IS NOT NULL)",
            name="ck_journal_entries_posted_numbered"),
        schema="ledger",
    )
    op.create_index("ix_journal_entries_tenant_id_entry_date", "journal_entries",
                    ["tenant_id", "entry_date"], schema="ledger")
    op.create_index("ix_journal_entries_tenant_id_source_type_source_id", "journal_entries",
                    ["tenant_id", "source_type", "source_id"], schema="ledger")

    op.create_table(
        "journal_lines",
        *tenant_key_columns(),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("description", sa.String(500), server_default="", nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("debit", MONEY, server_default="0", nullable=False),
        sa.Column("credit", MONEY, server_default="0", nullable=False),
        sa.Column("base_debit", MONEY, server_default="0", nullable=False),
        sa.Column("base_credit", MONEY, server_default="0", nullable=False),
        sa.Column("partner_type", sa.String(40), nullable=True),
        sa.Column("partner_id", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_journal_lines"),
        sa.UniqueConstraint("tenant_id", "entry_id", "line_no",
                            name="uq_journal_lines_tenant_id_entry_id_line_no"),
        sa.ForeignKeyConstraint(["tenant_id", "entry_id"],
                                ["ledger.journal_entries.tenant_id", "ledger.journal_entries.id"],
                                name="fk_journal_lines_tenant_id_journal_entries"),
        sa.ForeignKeyConstraint(["tenant_id", "account_id"],
                                ["ledger.accounts.tenant_id", "ledger.accounts.id"],
                                name="fk_journal_lines_tenant_id_accounts"),
        tenant_fk("journal_lines"),
        sa.CheckConstraint(
            "debit >= 0 AND credit >= 0 AND base_debit >= 0 AND base_credit >= 0",
            name="ck_journal_lines_amounts_non_negative"),
        sa.CheckConstraint("(debit = 0) <> (credit = 0)", name="ck_journal_lines_debit_xor_credit"),
        sa.CheckConstraint(
            "(debit = 0) = (base_debit = 0) AND (credit = 0) = (base_credit = 0)",
            name="ck_journal_lines_base_same_side"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_journal_lines_currency_iso"),
        sa.CheckConstraint("rate > 0", name="ck_journal_lines_rate_positive"),
        sa.CheckConstraint("line_no > 0", name="ck_journal_lines_line_no_positive"),
        schema="ledger",
    )
    op.create_index("ix_journal_lines_tenant_id_account_id_entry_id", "journal_lines",
                    ["tenant_id", "account_id", "entry_id"], schema="ledger")

    for table in TABLES:
        enable_tenant_rls(op, table)
        enable_audit(op, table)

    # --- closed periods ---------------------------------------------------------------
    # Share-locks the month's period row (creating it, open, if missing) so that a
    # concurrent close waits until this posting commits, and a posting that starts
    # after a close sees it. SQLSTATE LGPER lets the app recognise the refusal.
    op.execute(
        """
        CREATE FUNCTION ledger.assert_period_open(p_tenant uuid, p_date date) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            month date := date_trunc('month', p_date)::date;
            state text;
        BEGIN
            SELECT status INTO state FROM ledger.periods
             WHERE tenant_id = p_tenant AND period_start = month FOR SHARE;
            IF NOT FOUND THEN
                INSERT INTO ledger.periods (tenant_id, period_start, status)
                VALUES (p_tenant, month, 'open')
                ON CONFLICT (tenant_id, period_start) DO NOTHING;
                SELECT status INTO state FROM ledger.periods
                 WHERE tenant_id = p_tenant AND period_start = month FOR SHARE;
            END IF;
            IF state = 'closed' THEN
                RAISE EXCEPTION 'period % is closed: nothing can be posted dated %',
                    to_char(month, 'YYYY-MM'), p_date USING ERRCODE = 'LGPER';
            END IF;
        END
        $$
        """
    )

    # --- posted entries are immutable ---------------------------------------------------
    # Entries are born drafts (their lines are written next); the UPDATE that posts
    # one checks the period; after that no UPDATE or DELETE passes, whoever runs it.
    op.execute(
        """
        CREATE FUNCTION ledger.guard_entry() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                IF NEW.status <> 'draft' THEN
                    RAISE EXCEPTION 'a journal entry is created as a draft and posted after '
                        'its lines are written' USING ERRCODE = 'LGIMM';
                END IF;
                RETURN NEW;
            END IF;
            IF OLD.status = 'posted' THEN
                RAISE EXCEPTION 'journal entry % is posted: it cannot be %; post a reversing '
                    'entry instead', OLD.number,
                    CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'changed' END
                    USING ERRCODE = 'LGIMM';
            END IF;
            IF TG_OP = 'UPDATE' AND NEW.status = 'posted' THEN
                PERFORM ledger.assert_period_open(NEW.tenant_id, NEW.entry_date);
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER guard_entry BEFORE INSERT OR UPDATE OR DELETE"
               " ON ledger.journal_entries FOR EACH ROW EXECUTE FUNCTION ledger.guard_entry()")

    # Lines of a posted entry cannot be added, changed, moved or deleted. The parent
    # row is share-locked, so a line cannot slip into an entry being posted by a
    # concurrent transaction. Lines in the base currency carry rate 1 and equal amounts.
    op.execute(
        """
        CREATE FUNCTION ledger.guard_line() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            state text;
            num text;
            base text;
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                SELECT status, number INTO state, num FROM ledger.journal_entries
                 WHERE tenant_id = OLD.tenant_id AND id = OLD.entry_id FOR SHARE;
                IF state = 'posted' THEN
                    RAISE EXCEPTION 'journal entry % is posted: its lines cannot be changed '
                        'or deleted', num USING ERRCODE = 'LGIMM';
                END IF;
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            SELECT status, number INTO state, num FROM ledger.journal_entries
             WHERE tenant_id = NEW.tenant_id AND id = NEW.entry_id FOR SHARE;
            IF state = 'posted' THEN
                RAISE EXCEPTION 'journal entry % is posted: no line can be added to it', num
                    USING ERRCODE = 'LGIMM';
            END IF;
            SELECT base_currency INTO base FROM core.tenants WHERE id = NEW.tenant_id;
            IF NEW.currency = base AND (NEW.rate <> 1 OR NEW.base_debit <> NEW.debit
                                        OR NEW.base_credit <> NEW.credit) THEN
                RAISE EXCEPTION 'a line in the base currency % must have rate 1 and base '
                    'amounts equal to its amounts', base USING ERRCODE = 'LGCUR';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER guard_line BEFORE INSERT OR UPDATE OR DELETE"
               " ON ledger.journal_lines FOR EACH ROW EXECUTE FUNCTION ledger.guard_line()")

    # --- posted entries balance -----------------------------------------------------------
    # Checked at commit (deferred), when all lines of the entry are in: debits equal
    # credits in base currency, and at least two lines.
    op.execute(
        """
        CREATE FUNCTION ledger.check_balanced() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            t uuid;
            e uuid;
            state text;
            num text;
            n integer;
            debits numeric;
            credits numeric;
        BEGIN
            IF TG_TABLE_NAME = 'journal_entries' THEN
                t := NEW.tenant_id; e := NEW.id;
            ELSIF TG_OP = 'DELETE' THEN
                t := OLD.tenant_id; e := OLD.entry_id;
            ELSE
                t := NEW.tenant_id; e := NEW.entry_id;
            END IF;
            SELECT status, number INTO state, num FROM ledger.journal_entries
             WHERE tenant_id = t AND id = e;
            IF state IS DISTINCT FROM 'posted' THEN
                RETURN NULL;
            END IF;
            SELECT count(*), coalesce(sum(base_debit), 0), coalesce(sum(base_credit), 0)
              INTO n, debits, credits
              FROM ledger.journal_lines WHERE tenant_id = t AND entry_id = e;
            IF n < 2 THEN
                RAISE EXCEPTION 'journal entry % has % line(s): a posted entry needs at least '
                    'two', num, n USING ERRCODE = 'LGBAL';
            END IF;
            IF debits <> credits THEN
                RAISE EXCEPTION 'journal entry % does not balance in base currency: debits %, '
                    'credits %', num, debits, credits USING ERRCODE = 'LGBAL';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute("CREATE CONSTRAINT TRIGGER entry_balanced AFTER INSERT OR UPDATE OR DELETE"
               " ON ledger.journal_lines DEFERRABLE INITIALLY DEFERRED"
               " FOR EACH ROW EXECUTE FUNCTION ledger.check_balanced()")
    op.execute("CREATE CONSTRAINT TRIGGER entry_balanced AFTER UPDATE"
               " ON ledger.journal_entries DEFERRABLE INITIALLY DEFERRED"
               " FOR EACH ROW EXECUTE FUNCTION ledger.check_balanced()")

    _seed_existing_tenants()


def _seed_existing_tenants() -> None:
    conn = op.get_bind()
    insert = sa.text("INSERT INTO ledger.accounts (tenant_id, code, name, type, role)"
                     " VALUES (:t, :code, :name, :type, :role)")
    for (tenant_id,) in conn.execute(sa.text("SELECT id FROM core.tenants")).fetchall():
        # RLS is forced for the owner too: act as each tenant in turn.
        conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"),
                     {"t": str(tenant_id)})
        for code, name, type_, role in CHART:
            conn.execute(insert, {"t": tenant_id, "code": code, "name": name, "type": type_,
                                  "role": role})
    conn.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    op.execute("DROP TRIGGER entry_balanced ON ledger.journal_entries")
    op.execute("DROP TRIGGER entry_balanced ON ledger.journal_lines")
    op.execute("DROP TRIGGER guard_line ON ledger.journal_lines")
    op.execute("DROP TRIGGER guard_entry ON ledger.journal_entries")
    for table in reversed(TABLES):
        disable_audit(op, table)
    op.drop_table("journal_lines", schema="ledger")
    op.drop_table("journal_entries", schema="ledger")
    op.drop_table("periods", schema="ledger")
    op.drop_table("exchange_rates", schema="ledger")
    op.drop_table("accounts", schema="ledger")
    op.execute("DROP FUNCTION ledger.check_balanced()")
    op.execute("DROP FUNCTION ledger.guard_line()")
    op.execute("DROP FUNCTION ledger.guard_entry()")
    op.execute("DROP FUNCTION ledger.assert_period_open(uuid, date)")
