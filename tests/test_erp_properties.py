"""Property-based tests of the ERP core's books (hypothesis).

Random sequences of receipts, deliveries (some of them impossible), adjustments,
transfers and manual journal postings run through the real services on the real
database as the app role. After every sequence:

* no stock level is negative, and each equals the sum of its moves;
* the stock the services report equals a plain model of the same operations (so an
  impossible delivery was refused, whole, and a possible one was not);
* the inventory account's balance equals the value of the stock on hand;
* every posted entry balances in base currency, and the trial balance does too;
* the database's deferred checks (balanced entries, levels matching moves) pass when
  forced to run, as they would at commit.

A last property: a posted entry cannot be changed by any DML the app role can run,
whatever column of the entry or its lines is touched.

Examples per property: ``ERP_HYPOTHESIS_EXAMPLES`` (default 15; the CI run stays
well under a minute). Hypothesis' example database is off, so nothing is written
outside the test's rolled-back transaction.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.inventory import services as inv
from app.inventory.services import InventoryError, MoveLine
from app.ledger import services as ledger
from app.ledger.services import LedgerError, LineInput

D = Decimal
TODAY = dt.date.today()
EXAMPLES = int(os.environ.get("ERP_HYPOTHESIS_EXAMPLES", "15"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

quantities = st.integers(min_value=1, max_value=40).map(D)
costs = st.integers(min_value=1, max_value=5000).map(lambda c: D(c) / 100)
amounts = st.integers(min_value=1, max_value=10**7).map(lambda c: D(c) / 100)
product_ix = st.integers(min_value=0, max_value=2)
warehouse_ix = st.integers(min_value=0, max_value=1)

operations = st.one_of(
    st.tuples(st.just("receive"), product_ix, warehouse_ix, quantities, costs),
    st.tuples(st.just("deliver"), product_ix, warehouse_ix, quantities),
    st.tuples(st.just("adjust"), product_ix, warehouse_ix,
              st.integers(min_value=-30, max_value=30).filter(bool).map(D),
              st.sampled_from(["damaged", "found", "count", "correction"])),
    st.tuples(st.just("transfer"), product_ix, warehouse_ix, quantities),
    st.tuples(st.just("journal"), amounts,
              st.sampled_from([("cash", "sales"), ("wages", "cash"),
                               ("receivables", "sales"), ("cash", "payables")])),
)


@pytest.fixture
def books(tenant_factory, as_tenant):
    """A tenant with two warehouses and three products, committed to the test's
    transaction; each example then runs in a savepoint rolled back at its end."""
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        main = inv.list_warehouses(s)[0]
        second = inv.save_warehouse(s, {"code": "W2", "name": "Second"})
        products = [inv.create_product(s, {"sku": f"P-{i}", "name": f"Product {i}"})
                    for i in range(3)]
        ids = ([p.id for p in products], [main.id, second.id])
    return t, ids


def _apply(s, op, products, warehouses, model) -> None:
    kind = op[0]
    if kind == "journal":
        _, amount, (debit, credit) = op
        ledger.post_entry(s, entry_date=TODAY, description="random posting", lines=[
            LineInput(ledger.account_for(s, debit).id, debit=amount),
            LineInput(ledger.account_for(s, credit).id, credit=amount)])
        return
    p, w = products[op[1]], warehouses[op[2]]
    have = model.get((p, w), D(0))
    if kind == "receive":
        inv.receive(s, [MoveLine(p, w, op[3], op[4])])
        model[(p, w)] = have + op[3]
    elif kind == "deliver":
        try:
            inv.deliver(s, [MoveLine(p, w, op[3])])
        except InventoryError:
            assert op[3] > have, f"delivery of {op[3]} refused with {have} on hand"
            return
        assert op[3] <= have, f"delivery of {op[3]} accepted with only {have} on hand"
        model[(p, w)] = have - op[3]
    elif kind == "adjust":
        try:
            inv.adjust(s, p, w, reason=op[4], delta=op[3],
                       unit_cost=D("1.00") if have == 0 else None)
        except InventoryError:
            assert have + op[3] < 0, f"adjustment {op[3]} refused with {have} on hand"
            return
        assert have + op[3] >= 0
        model[(p, w)] = have + op[3]
    elif kind == "transfer":
        other = warehouses[1 - op[2]]
        try:
            inv.transfer(s, p, w, other, op[3])
        except InventoryError:
            assert op[3] > have, f"transfer of {op[3]} refused with {have} on hand"
            return
        model[(p, w)] = have - op[3]
        model[(p, other)] = model.get((p, other), D(0)) + op[3]


def _check_books(s, model) -> None:
    levels = s.execute(text(
        "SELECT l.product_id, l.warehouse_id, l.on_hand, l.value,"
        " coalesce((SELECT sum(m.quantity) FROM inventory.stock_moves m"
        "  WHERE m.tenant_id = l.tenant_id AND m.product_id = l.product_id"
        "  AND m.warehouse_id = l.warehouse_id), 0)"
        " FROM inventory.stock_levels l")).all()
    for product, warehouse, on_hand, _value, moved in levels:
        assert on_hand >= 0
        assert on_hand == moved, "a stock level differs from the sum of its moves"
        assert on_hand == model.get((product, warehouse), D(0))
    stock_value = sum((row[3] for row in levels), D(0))
    inventory = ledger.account_for(s, "inventory")
    closing = ledger.general_ledger(s, inventory, dt.date(2000, 1, 1), TODAY).closing
    assert closing == stock_value, "inventory account differs from the stock's value"
    unbalanced = s.execute(text(
        "SELECT e.id FROM ledger.journal_entries e JOIN ledger.journal_lines l"
        " ON l.tenant_id = e.tenant_id AND l.entry_id = e.id WHERE e.status = 'posted'"
        " GROUP BY e.id HAVING sum(l.base_debit) <> sum(l.base_credit)")).all()
    assert unbalanced == []
    trial = ledger.trial_balance(s, TODAY)
    assert trial.total_debit == trial.total_credit
    assert trial.total_net_debit == trial.total_net_credit
    # What COMMIT would run: the deferred balance and stock-chain checks.
    s.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    s.execute(text("SET CONSTRAINTS ALL DEFERRED"))


def test_random_stock_and_ledger_operations_keep_the_books(books, as_tenant):
    t, (products, warehouses) = books

    @SETTINGS
    @given(ops=st.lists(operations, min_size=1, max_size=12))
    def run(ops):
        with as_tenant(t.ctx) as s:
            example = s.begin_nested()
            try:
                model: dict = {}
                for op in ops:
                    with s.begin_nested():
                        _apply(s, op, products, warehouses, model)
                _check_books(s, model)
            finally:
                example.rollback()

    run()


def _columns(s, table: str) -> list[str]:
    schema, name = table.split(".")
    return list(s.scalars(text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND"
        " table_name = :n AND is_generated = 'NEVER' ORDER BY ordinal_position"),
        {"s": schema, "n": name}))


def test_a_posted_entry_refuses_every_change_the_app_role_can_try(books, as_tenant):
    """Each of these is tried (a loop, not a sample): every column of a posted entry
    and of its lines, set to another row's value or to NULL; a deleted entry or line;
    a line added; status back to draft."""
    t, _ = books
    with as_tenant(t.ctx) as s:
        cash, sales = ledger.account_for(s, "cash").id, ledger.account_for(s, "sales").id
        target = ledger.post_entry(s, entry_date=TODAY, description="target", lines=[
            LineInput(cash, debit=D("10")), LineInput(sales, credit=D("10"))])
        donor = ledger.post_entry(s, entry_date=TODAY - dt.timedelta(days=1),
                                  description="donor of other values", lines=[
            LineInput(sales, debit=D("7.5")), LineInput(cash, credit=D("7.5"))])
        entry_columns = _columns(s, "ledger.journal_entries")
        line_columns = _columns(s, "ledger.journal_lines")
        line_id = ledger.entry_lines(s, target.id)[0].id
        donor_line = ledger.entry_lines(s, donor.id)[0].id
    attacks = (
        [("UPDATE ledger.journal_entries SET {c} = (SELECT {c} FROM ledger.journal_entries"
          " WHERE id = :donor) WHERE id = :target", c) for c in entry_columns]
        + [("UPDATE ledger.journal_entries SET {c} = NULL WHERE id = :target", c)
           for c in entry_columns]
        + [("UPDATE ledger.journal_lines SET {c} = (SELECT {c} FROM ledger.journal_lines"
            " WHERE id = :donor_line) WHERE id = :line", c) for c in line_columns]
        + [("UPDATE ledger.journal_lines SET {c} = NULL WHERE id = :line", c)
           for c in line_columns]
        + [("DELETE FROM ledger.journal_lines WHERE id = :line", ""),
           ("DELETE FROM ledger.journal_entries WHERE id = :target", ""),
           ("UPDATE ledger.journal_entries SET status = 'draft' WHERE id = :target", ""),
           ("INSERT INTO ledger.journal_lines (tenant_id, entry_id, line_no, account_id,"
            " debit, credit, currency, rate, base_debit, base_credit)"
            " SELECT tenant_id, entry_id, 99, account_id, 1, 0, currency, 1, 1, 0"
            " FROM ledger.journal_lines WHERE id = :line", ""),
           ("UPDATE ledger.journal_lines SET entry_id = :donor WHERE id = :line", "")]
    )
    params = {"target": target.id, "donor": donor.id, "line": line_id,
              "donor_line": donor_line}

    refused = 0
    for sql, column in attacks:  # every one of them, not a sample
        with as_tenant(t.ctx) as s:
            before = s.execute(text(
                "SELECT to_jsonb(e), (SELECT jsonb_agg(to_jsonb(l) ORDER BY l.line_no)"
                " FROM ledger.journal_lines l WHERE l.entry_id = e.id)"
                " FROM ledger.journal_entries e WHERE e.id = :target"), params).one()
            attempt = s.begin_nested()
            try:
                s.execute(text(sql.format(c=column)), params)
                s.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
            except DBAPIError:
                attempt.rollback()
                refused += 1
            else:
                changed = s.execute(text(
                    "SELECT to_jsonb(e), (SELECT jsonb_agg(to_jsonb(l) ORDER BY l.line_no)"
                    " FROM ledger.journal_lines l WHERE l.entry_id = e.id)"
                    " FROM ledger.journal_entries e WHERE e.id = :target"), params).one()
                attempt.rollback()
                assert tuple(changed) == tuple(before), (
                    f"the app role changed a posted entry with: {sql.format(c=column)}")
    assert len(attacks) > 40 and refused >= len(attacks) - 4  # a few are no-ops (id = id)


def test_refused_operations_leave_nothing_half_written(books, as_tenant):
    """An impossible delivery in a multi-line operation writes no line of it."""
    t, (products, warehouses) = books
    with as_tenant(t.ctx) as s:
        inv.receive(s, [MoveLine(products[0], warehouses[0], D(5), D(2))])
        moves = s.scalar(text("SELECT count(*) FROM inventory.stock_moves"))
        entries = s.scalar(text("SELECT count(*) FROM ledger.journal_entries"))
        with pytest.raises(InventoryError), s.begin_nested():
            inv.deliver(s, [MoveLine(products[0], warehouses[0], D(3)),
                            MoveLine(products[0], warehouses[0], D(3))])
        assert s.scalar(text("SELECT count(*) FROM inventory.stock_moves")) == moves
        assert s.scalar(text("SELECT count(*) FROM ledger.journal_entries")) == entries
        with pytest.raises(LedgerError), s.begin_nested():
            ledger.post_entry(s, entry_date=TODAY, description="unbalanced", lines=[
                LineInput(ledger.account_for(s, "cash").id, debit=D("1")),
                LineInput(ledger.account_for(s, "sales").id, credit=D("2"))])
        assert s.scalar(text("SELECT count(*) FROM ledger.journal_entries")) == entries
