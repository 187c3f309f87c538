"""General ledger: services, and the rules the database enforces by itself."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import select, text

from app.db import db
from app.ledger import services as ledger
from app.ledger.chart import DEFAULT_CHART
from app.ledger.models import Account, JournalEntry, JournalLine
from app.ledger.services import LedgerError, LineInput
from tenants.context import tenant_scope

from .conftest import make_tenant

D = Decimal
TODAY = dt.date.today()


def _acc(s, role):
    return ledger.account_for(s, role).id


def _simple(s, amount="100.00", debit="inventory", credit="payables", day=TODAY):
    return ledger.post_entry(s, entry_date=day, description="test", lines=[
        LineInput(_acc(s, debit), debit=D(amount)),
        LineInput(_acc(s, credit), credit=D(amount))])


# --- chart and posting -----------------------------------------------------------------------


def test_new_tenant_gets_the_default_chart(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        accounts = ledger.list_accounts(s)
        assert [a.code for a in accounts] == sorted(c for c, *_ in DEFAULT_CHART)
        roles = {a.role for a in accounts}
        for role in ("cash", "receivables", "inventory", "grni", "payables", "tax_payable",
                     "cogs", "sales", "retained_earnings"):
            assert role in roles
        assert {a.type for a in accounts} == {"asset", "liability", "equity", "revenue",
                                               "cogs", "expense"}


def test_post_balanced_entry_gets_gapless_numbers_per_year(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        first = _simple(s)
        second = _simple(s, "5.50")
        last_year = _simple(s, "1.00", day=dt.date(TODAY.year - 1, 6, 30))
        assert first.number == f"JE-{TODAY.year}-000001"
        assert second.number == f"JE-{TODAY.year}-000002"
        assert last_year.number == f"JE-{TODAY.year - 1}-000001"
        assert first.status == "posted" and first.posted_by == t.owner.id
        lines = ledger.entry_lines(s, first.id)
        assert [(ln.debit, ln.credit, ln.base_debit, ln.base_credit, ln.currency, ln.rate)
                for ln in lines] == [(D(100), 0, D(100), 0, "EUR", 1), (0, D(100), 0, D(100),
                                                                        "EUR", 1)]


def test_unbalanced_entry_is_refused_and_writes_nothing(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        with pytest.raises(LedgerError, match=r"does not balance: debits 100.00 EUR, credits "
                                              r"99.99 EUR \(difference 0.01 EUR\)"):
            ledger.post_entry(s, entry_date=TODAY, description="bad", lines=[
                LineInput(_acc(s, "cash"), debit=D("100")),
                LineInput(_acc(s, "sales"), credit=D("99.99"))])
        assert s.scalar(select(JournalEntry.id)) is None


@pytest.mark.parametrize(("line", "message"), [
    ({"debit": D("-5")}, "cannot be negative"),
    ({"debit": D("5"), "credit": D("5")}, "either a debit or a credit"),
    ({}, "either a debit or a credit"),
    ({"debit": D("1.001")}, "EUR amounts have at most 2 decimal places"),
    ({"debit": D("1"), "currency": "XYZ"}, "'XYZ' is not an ISO 4217 currency code"),
    ({"debit": D("1"), "currency": "USD"}, "no exchange rate for USD on or before"),
    ({"debit": 1.5}, "exact decimals, not floating point"),
    ({"debit": "abc"}, "is not a number"),
])
def test_invalid_lines_get_clear_errors(tenant_factory, as_tenant, line, message):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        with pytest.raises(LedgerError, match=message):
            ledger.post_entry(s, entry_date=TODAY, description="bad", lines=[
                LineInput(_acc(s, "cash"), **line), LineInput(_acc(s, "sales"), credit=D(1))])
        assert s.scalar(select(JournalEntry.id)) is None


def test_another_tenants_account_is_no_such_account(two_tenants, as_tenant):
    a, b = two_tenants
    with as_tenant(b.ctx) as s:
        foreign = _acc(s, "cash")
    with as_tenant(a.ctx) as s:
        with pytest.raises(LedgerError, match="line 1: no such account"):
            ledger.post_entry(s, entry_date=TODAY, description="x", lines=[
                LineInput(foreign, debit=D(1)), LineInput(_acc(s, "sales"), credit=D(1))])


def test_multi_currency_entry_balances_in_base_currency(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ledger.set_rate(s, "USD", TODAY - dt.timedelta(days=3), D("0.9"))
        ledger.set_rate(s, "USD", TODAY, D("0.92"))
        ledger.set_rate(s, "JPY", TODAY, D("0.0061"))
        assert ledger.rate_for(s, "usd", TODAY - dt.timedelta(days=1)) == D("0.9")
        assert ledger.rate_for(s, "USD", TODAY) == D("0.92")
        with pytest.raises(LedgerError, match="base currency always has rate 1"):
            ledger.set_rate(s, "EUR", TODAY, D(1))
        entry = ledger.post_entry(s, entry_date=TODAY, description="fx", lines=[
            LineInput(_acc(s, "bank"), debit=D("1000.00"), currency="USD"),  # 920.00 EUR
            LineInput(_acc(s, "cash"), debit=D("10000"), currency="JPY"),  # 61.00 EUR
            LineInput(_acc(s, "sales"), credit=D("981.00"))])
        lines = ledger.entry_lines(s, entry.id)
        assert [(ln.currency, ln.rate, ln.base_debit, ln.base_credit) for ln in lines] == [
            ("USD", D("0.92"), D("920.00"), 0), ("JPY", D("0.0061"), D("61.00"), 0),
            ("EUR", 1, 0, D("981.00"))]
        with pytest.raises(LedgerError, match="JPY amounts have at most 0 decimal places"):
            ledger.post_entry(s, entry_date=TODAY, description="fx", lines=[
                LineInput(_acc(s, "cash"), debit=D("1.5"), currency="JPY"),
                LineInput(_acc(s, "sales"), credit=D("0.01"))])


def test_reversal_mirrors_the_entry_once(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ledger.set_rate(s, "USD", TODAY, D("0.9"))
        original = ledger.post_entry(s, entry_date=TODAY, description="sale", lines=[
            LineInput(_acc(s, "receivables"), debit=D("10.01"), currency="USD"),
            LineInput(_acc(s, "sales"), credit=D("9.01"))])
        ledger.set_rate(s, "USD", TODAY, D("1.5"))  # the reversal keeps the stored rate
        reversal = ledger.reverse(s, original)
        assert reversal.reverses_id == original.id
        assert ledger.reversal_of(s, original.id).id == reversal.id
        mirrored = [(ln.account_id, ln.debit, ln.credit, ln.base_debit, ln.base_credit)
                    for ln in ledger.entry_lines(s, reversal.id)]
        assert mirrored == [(ln.account_id, ln.credit, ln.debit, ln.base_credit, ln.base_debit)
                            for ln in ledger.entry_lines(s, original.id)]
        with pytest.raises(LedgerError, match="already been reversed"):
            ledger.reverse(s, original)
        tb = ledger.trial_balance(s, TODAY)
        assert all(r.net_debit == 0 and r.net_credit == 0 for r in tb.rows)


def test_drafts_need_not_balance_but_posting_them_does(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        draft = ledger.save_draft(s, entry_date=TODAY, description="wip", lines=[
            LineInput(_acc(s, "cash"), debit=D(5)), LineInput(_acc(s, "sales"), credit=D(4))])
        assert draft.status == "draft" and draft.number is None
        assert ledger.trial_balance(s, TODAY).rows == []  # drafts have no effect
        with pytest.raises(LedgerError, match="does not balance"):
            ledger.post(s, draft)
        ledger.save_draft(s, entry=draft, entry_date=TODAY, description="fixed", lines=[
            LineInput(_acc(s, "cash"), debit=D(5)), LineInput(_acc(s, "sales"), credit=D(5))])
        ledger.post(s, draft)
        assert draft.number == f"JE-{TODAY.year}-000001"
        with pytest.raises(LedgerError, match="cannot be edited"):
            ledger.save_draft(s, entry=draft, entry_date=TODAY, description="x", lines=[])
        with pytest.raises(LedgerError, match="cannot be deleted"):
            ledger.delete_draft(s, draft)


def test_closed_period_refuses_postings_until_reopened(tenant_factory, as_tenant):
    t = tenant_factory()
    last_month = ledger.month_start(TODAY) - dt.timedelta(days=1)
    with as_tenant(t.ctx) as s:
        ledger.close_period(s, last_month.year, last_month.month)
        with pytest.raises(LedgerError, match=f"period {last_month:%Y-%m} is closed"):
            _simple(s, day=last_month)
        with pytest.raises(LedgerError, match="already closed"):
            ledger.close_period(s, last_month.year, last_month.month)
        _simple(s)  # this month is open
    with as_tenant(t.ctx) as s:
        # the database refuses too, whatever the application checks
        draft = ledger.save_draft(s, entry_date=last_month, description="x", lines=[
            LineInput(_acc(s, "cash"), debit=D(1)), LineInput(_acc(s, "sales"), credit=D(1))])
        s.commit()
        with pytest.raises(Exception, match=f"period {last_month:%Y-%m} is closed"):
            s.execute(text("UPDATE ledger.journal_entries SET status = 'posted', number = 'X',"
                           " posted_at = now() WHERE id = :id"), {"id": draft.id})
        s.rollback()
    with as_tenant(t.ctx) as s:
        ledger.reopen_period(s, last_month.year, last_month.month)
        assert _simple(s, day=last_month).status == "posted"


def test_reports_add_up(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ledger.post_entry(s, entry_date=TODAY, description="capital", lines=[
            LineInput(_acc(s, "bank"), debit=D(1000)), LineInput(_acc(s, "capital"),
                                                                 credit=D(1000))])
        _simple(s, "300.00", "inventory", "payables")
        ledger.post_entry(s, entry_date=TODAY, description="sale", lines=[
            LineInput(_acc(s, "receivables"), debit=D(500)),
            LineInput(_acc(s, "sales"), credit=D(500))])
        _simple(s, "200.00", "cogs", "inventory")
        tb = ledger.trial_balance(s, TODAY)
        assert tb.total_debit == tb.total_credit == D(2000)
        assert tb.total_net_debit == tb.total_net_credit
        bs = ledger.balance_sheet(s, TODAY)
        assert bs.assets.total == D(1600) and bs.liabilities.total == D(300)
        assert bs.equity.total == D(1000) and bs.earnings == D(300) and bs.balanced
        pl = ledger.profit_and_loss(s, ledger.month_start(TODAY), TODAY)
        assert (pl.revenue.total, pl.cogs.total, pl.gross_profit, pl.net_profit) == (
            D(500), D(200), D(300), D(300))
        gl = ledger.general_ledger(s, ledger.account_for(s, "inventory"),
                                   ledger.month_start(TODAY), TODAY)
        assert gl.opening == 0 and [r.balance for r in gl.rows] == [D(300), D(100)]
        before = ledger.trial_balance(s, TODAY - dt.timedelta(days=40))
        assert before.rows == []


def test_account_rules(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acc = ledger.create_account(s, {"code": "6500", "name": "Travel", "type": "expense"})
        with pytest.raises(LedgerError, match="code 6500 is taken"):
            ledger.create_account(s, {"code": "6500", "name": "Other", "type": "expense"})
        with pytest.raises(LedgerError, match="type must be one of"):
            ledger.create_account(s, {"code": "6501", "name": "Other", "type": "weird"})
        with pytest.raises(LedgerError, match="another account already has this role"):
            ledger.create_account(s, {"code": "6502", "name": "X", "type": "asset",
                                      "role": "inventory"})
        ledger.post_entry(s, entry_date=TODAY, description="trip", lines=[
            LineInput(acc.id, debit=D(10)), LineInput(_acc(s, "cash"), credit=D(10))])
        with pytest.raises(LedgerError, match="its type cannot change"):
            ledger.update_account(s, acc, {"type": "asset"})
        ledger.update_account(s, acc, {"is_active": False})
        with pytest.raises(LedgerError, match="is inactive"):
            ledger.post_entry(s, entry_date=TODAY, description="trip", lines=[
                LineInput(acc.id, debit=D(10)), LineInput(_acc(s, "cash"), credit=D(10))])


# --- what the database enforces on its own ----------------------------------------------------


@pytest.fixture
def committed(app):
    """A committed tenant with one posted entry, for tests that need real commits and
    raw connections as the app role."""
    with app.app_context():
        t = make_tenant(db.session, f"gl-{secrets.token_hex(3)}")
        db.session.commit()
        with tenant_scope(t.ctx):
            entry = _simple(db.session)
            db.session.commit()
            ids = {"entry": entry.id, "line": ledger.entry_lines(db.session, entry.id)[0].id,
                   "cash": _acc(db.session, "cash"), "sales": _acc(db.session, "sales")}
        db.session.remove()
    return t, ids


def _app_conn(database, tenant_id):
    conn = psycopg.connect(database.app_url)
    conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant_id),))
    conn.commit()
    return conn


ATTACKS = [
    "UPDATE ledger.journal_entries SET description = 'changed' WHERE id = %(entry)s",
    "UPDATE ledger.journal_entries SET status = 'draft', number = NULL, posted_at = NULL"
    " WHERE id = %(entry)s",
    "UPDATE ledger.journal_entries SET entry_date = entry_date - 40 WHERE id = %(entry)s",
    "DELETE FROM ledger.journal_entries WHERE id = %(entry)s",
    "UPDATE ledger.journal_lines SET debit = debit + 1, base_debit = base_debit + 1"
    " WHERE id = %(line)s",
    "UPDATE ledger.journal_lines SET account_id = %(cash)s WHERE id = %(line)s",
    "DELETE FROM ledger.journal_lines WHERE id = %(line)s",
    "DELETE FROM ledger.journal_lines WHERE entry_id = %(entry)s",
    "INSERT INTO ledger.journal_lines (tenant_id, entry_id, line_no, account_id, currency,"
    " rate, debit, base_debit) VALUES (app.current_tenant_id(), %(entry)s, 9, %(cash)s, 'EUR',"
    " 1, 1, 1)",
    "TRUNCATE ledger.journal_lines",
    "TRUNCATE ledger.journal_entries CASCADE",
    "ALTER TABLE ledger.journal_lines DISABLE TRIGGER guard_line",
    "DROP TRIGGER guard_entry ON ledger.journal_entries",
    "SET session_replication_role = replica",
    "CREATE OR REPLACE FUNCTION ledger.guard_line() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN RETURN NEW; END $$",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_posted_entry_cannot_be_changed_by_the_app_role(database, committed, attack):
    t, ids = committed
    with _app_conn(database, t.id) as conn:
        before = conn.execute("SELECT l.debit, l.credit, l.account_id, e.description"
                              " FROM ledger.journal_lines l JOIN ledger.journal_entries e"
                              " ON e.id = l.entry_id WHERE e.id = %s ORDER BY l.line_no",
                              (ids["entry"],)).fetchall()
        with pytest.raises(psycopg.Error):
            conn.execute(attack, ids)
            conn.commit()
        conn.rollback()
        after = conn.execute("SELECT l.debit, l.credit, l.account_id, e.description"
                             " FROM ledger.journal_lines l JOIN ledger.journal_entries e"
                             " ON e.id = l.entry_id WHERE e.id = %s ORDER BY l.line_no",
                             (ids["entry"],)).fetchall()
        assert after == before and len(after) == 2


def test_unbalanced_posting_fails_at_commit(database, committed):
    """The balance check is deferred: statements pass, COMMIT raises."""
    t, ids = committed
    with _app_conn(database, t.id) as conn:
        entry = conn.execute("INSERT INTO ledger.journal_entries (tenant_id, entry_date)"
                             " VALUES (app.current_tenant_id(), current_date) RETURNING id"
                             ).fetchone()[0]
        for no, (account, debit, credit) in enumerate(
                [(ids["cash"], 10, 0), (ids["sales"], 0, 9)], start=1):
            conn.execute("INSERT INTO ledger.journal_lines (tenant_id, entry_id, line_no,"
                         " account_id, currency, rate, debit, credit, base_debit, base_credit)"
                         " VALUES (app.current_tenant_id(), %s, %s, %s, 'EUR', 1, %s, %s, %s,"
                         " %s)", (entry, no, account, debit, credit, debit, credit))
        conn.execute("UPDATE ledger.journal_entries SET status = 'posted', number = 'HAND-1',"
                     " posted_at = now() WHERE id = %s", (entry,))
        with pytest.raises(psycopg.DatabaseError,
                           match=r"HAND-1 does not balance in base currency: debits 10.0000, "
                                 r"credits 9.0000"):
            conn.commit()
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM ledger.journal_entries WHERE id = %s",
                            (entry,)).fetchone()[0] == 0


@pytest.mark.parametrize(("sql", "message"), [
    ("INSERT INTO ledger.journal_lines (tenant_id, entry_id, line_no, account_id, currency, rate,"
     " debit, credit, base_debit, base_credit) VALUES (app.current_tenant_id(), %(e)s, 1,"
     " %(cash)s, 'EUR', 1, 5, 5, 5, 5)", "ck_journal_lines_debit_xor_credit"),
    ("INSERT INTO ledger.journal_lines (tenant_id, entry_id, line_no, account_id, currency, rate,"
     " debit, base_debit) VALUES (app.current_tenant_id(), %(e)s, 1, %(cash)s, 'EUR', 1, -5, -5)",
     "ck_journal_lines_amounts_non_negative"),
    ("INSERT INTO ledger.journal_lines (tenant_id, entry_id, line_no, account_id, currency, rate,"
     " debit, base_debit) VALUES (app.current_tenant_id(), %(e)s, 1, %(cash)s, 'EUR', 2, 5, 10)",
     "must have rate 1"),
    ("INSERT INTO ledger.journal_entries (tenant_id, entry_date, status, number, posted_at)"
     " VALUES (app.current_tenant_id(), current_date, 'posted', 'X', now())",
     "created as a draft"),
])
def test_line_and_entry_checks(database, committed, sql, message):
    t, ids = committed
    with _app_conn(database, t.id) as conn:
        e = conn.execute("INSERT INTO ledger.journal_entries (tenant_id, entry_date) VALUES"
                         " (app.current_tenant_id(), current_date) RETURNING id").fetchone()[0]
        with pytest.raises(psycopg.Error, match=message):
            conn.execute(sql, {"e": e, **ids})
        conn.rollback()


def test_close_waits_for_a_running_posting_then_refuses_later_ones(app, database, committed):
    t, ids = committed
    month = ledger.month_start(TODAY)
    poster = _app_conn(database, t.id)
    closer = _app_conn(database, t.id)
    try:
        # A posting into this month is in flight (not committed yet) ...
        e = poster.execute("INSERT INTO ledger.journal_entries (tenant_id, entry_date) VALUES"
                           " (app.current_tenant_id(), %s) RETURNING id", (TODAY,)).fetchone()[0]
        for no, (account, debit, credit) in enumerate(
                [(ids["cash"], 3, 0), (ids["sales"], 0, 3)], start=1):
            poster.execute("INSERT INTO ledger.journal_lines (tenant_id, entry_id, line_no,"
                           " account_id, currency, rate, debit, credit, base_debit, base_credit)"
                           " VALUES (app.current_tenant_id(), %s, %s, %s, 'EUR', 1, %s, %s, %s,"
                           " %s)", (e, no, account, debit, credit, debit, credit))
        poster.execute("UPDATE ledger.journal_entries SET status = 'posted', number = 'RACE-1',"
                       " posted_at = now() WHERE id = %s", (e,))
        # ... so closing the month has to wait for it.
        done = threading.Event()

        def close() -> None:
            closer.execute("UPDATE ledger.periods SET status = 'closed', closed_at = now()"
                           " WHERE period_start = %s", (month,))
            closer.commit()
            done.set()

        th = threading.Thread(target=close)
        th.start()
        time.sleep(0.5)
        assert not done.is_set(), "the close must wait for the running posting"
        poster.commit()
        th.join(timeout=10)
        assert done.is_set()
        # The posting landed before the close; a new one is refused.
        assert poster.execute("SELECT status FROM ledger.journal_entries WHERE id = %s",
                              (e,)).fetchone()[0] == "posted"
        poster.rollback()
        with app.app_context(), tenant_scope(t.ctx):
            with pytest.raises(LedgerError, match="is closed"):
                _simple(db.session)
            db.session.rollback()
            db.session.remove()
    finally:
        poster.close()
        closer.close()


def test_app_role_sees_only_its_tenants_ledger(two_tenants, as_tenant):
    a, b = two_tenants
    with as_tenant(a.ctx) as s:
        _simple(s)
    with as_tenant(b.ctx) as s:
        assert s.scalar(text("SELECT count(*) FROM ledger.journal_entries")) == 0
        assert s.scalar(select(JournalLine.id)) is None
        assert {acc.tenant_id for acc in s.scalars(select(Account))} == {b.id}
