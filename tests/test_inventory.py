"""Inventory: products, moves at moving average cost, ledger postings, reservations,
reorder events, valuation, and the stock rules the database enforces by itself."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app.db import ENGINE_OPTIONS, db, install_engine_hooks
from app.events.models import OutboxEvent
from app.inventory import services as inv
from app.inventory.models import ProductStock, StockLevel, StockMove
from app.inventory.services import InventoryError, MoveLine, NotEnoughStock
from app.ledger import services as ledger
from app.ledger.models import JournalEntry
from app.settings import sqlalchemy_url
from tenants.context import tenant_scope

from .conftest import make_tenant

D = Decimal
TODAY = dt.date.today()


def _main(s):
    return inv.list_warehouses(s)[0]


def _product(s, sku="SKU-1", **extra):
    return inv.create_product(s, {"sku": sku, "name": f"Product {sku}", **extra})


def _receive(s, product, warehouse, qty, cost):
    return inv.receive(s, [MoveLine(product.id, warehouse.id, D(qty), D(cost))])


def _deliver(s, product, warehouse, qty):
    return inv.deliver(s, [MoveLine(product.id, warehouse.id, D(qty))])


def _balance(s, role):
    account = ledger.account_for(s, role)
    return ledger.general_ledger(s, account, dt.date(2000, 1, 1), TODAY).closing


# --- products and warehouses -----------------------------------------------------------------


def test_new_tenant_has_a_main_warehouse(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        assert [(w.code, w.name) for w in inv.list_warehouses(s)] == [("MAIN", "Main warehouse")]


def test_product_rules(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        p = _product(s, "BOLT-10", uom="box", category="Fasteners", sale_price="2.50",
                     sale_currency="usd", reorder_level="5", reorder_qty="20",
                     name_translations={"fr": "Boulon", "pt-BR": "Parafuso"},
                     custom_fields={"colour": "zinc", "pack_size": 100})
        assert (p.sale_currency, p.sale_price, p.uom) == ("USD", D("2.50"), "box")
        assert p.display_name("fr") == "Boulon" and p.display_name("de") == p.name
        assert p.display_name("pt-BR") == "Parafuso"
        assert inv.product_totals(s, p.id).reorder_level == D(5)
        for data, message in [
            ({"sku": "BOLT-10", "name": "x"}, "SKU BOLT-10 is taken"),
            ({"sku": "has space", "name": "x"}, "without spaces"),
            ({"sku": "X1", "name": ""}, "needs a name"),
            ({"sku": "X1", "name": "x", "uom": "bucket"}, "unit of measure must be one of"),
            ({"sku": "X1", "name": "x", "sale_price": "1", "sale_currency": "EURO"},
             "not an ISO 4217 currency code"),
            ({"sku": "X1", "name": "x", "sale_price": "1.001", "sale_currency": "EUR"},
             "at most 2 decimal places"),
            ({"sku": "X1", "name": "x", "reorder_level": "-1"}, "cannot be negative"),
            ({"sku": "X1", "name": "x", "name_translations": {"french": "x"}},
             "not a language code"),
            ({"sku": "X1", "name": "x", "custom_fields": {"Bad Key": 1}}, "custom field name"),
            ({"sku": "X1", "name": "x", "custom_fields": {"w": 1.5}}, "only text"),
        ]:
            with pytest.raises(InventoryError, match=message):
                inv.create_product(s, data)
        assert inv.product_by_sku(s, "X1") is None
        inv.update_product(s, p, {"reorder_level": "7"})
        s.flush()
        s.expire_all()
        assert inv.product_totals(s, p.id).reorder_level == D(7)  # mirrored by the database
        with pytest.raises(InventoryError, match="unknown SKU 'NOPE'"):
            inv.require_product(s, sku="NOPE")


# --- moves and costing -------------------------------------------------------------------------


def test_receipts_and_deliveries_at_moving_average_post_to_the_ledger(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, p = _main(s), _product(s)
        r1 = _receive(s, p, wh, "10", "1.00")
        _receive(s, p, wh, "10", "2.00")
        level = inv.stock_level(s, p.id, wh.id)
        assert (level.on_hand, level.value, level.last_seq) == (D(20), D("30.00"), 2)
        entry = s.get(JournalEntry, (t.id, r1.entry_id))
        assert entry.status == "posted" and entry.source_id == r1.moves[0].id
        d1 = _deliver(s, p, wh, "5")
        assert d1.moves[0].value == D("-7.50") and d1.moves[0].unit_cost == D("1.5")
        d2 = _deliver(s, p, wh, "15")
        assert d2.moves[0].value == D("-22.50")
        level = inv.stock_level(s, p.id, wh.id)
        assert (level.on_hand, level.value) == (0, 0)
        assert _balance(s, "inventory") == 0
        assert _balance(s, "cogs") == D("30.00")
        assert _balance(s, "grni") == D("30.00")


def test_rounding_never_leaves_value_behind(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, p = _main(s), _product(s)
        _receive(s, p, wh, "3", "3.333333")  # 10.00 (rounded to cents)
        values = [_deliver(s, p, wh, "1").moves[0].value for _ in range(3)]
        assert values == [D("-3.33"), D("-3.34"), D("-3.33")]
        assert sum(values) == D("-10.00")
        assert inv.stock_level(s, p.id, wh.id).value == 0
        assert _balance(s, "inventory") == 0


def test_overselling_is_refused_and_writes_nothing(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, p, q = _main(s), _product(s, "A"), _product(s, "B")
        _receive(s, p, wh, "3", "1")
        _receive(s, q, wh, "3", "1")
    with as_tenant(t.ctx) as s:
        moves_before = s.scalar(select(func.count()).select_from(StockMove))
        entries_before = s.scalar(select(func.count()).select_from(JournalEntry))
        with pytest.raises(NotEnoughStock, match="not enough stock of B in MAIN: 3 available, "
                                                 "4 requested"):
            inv.deliver(s, [MoveLine(p.id, wh.id, D(2)), MoveLine(q.id, wh.id, D(4))])
        s.rollback()
        assert s.scalar(select(func.count()).select_from(StockMove)) == moves_before
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == entries_before
        assert inv.stock_level(s, p.id, wh.id).on_hand == D(3)
        with pytest.raises(NotEnoughStock, match="0 available"):
            inv.deliver(s, [MoveLine(p.id, inv.save_warehouse(
                s, {"code": "EMPTY", "name": "Empty"}).id, D(1))])


@pytest.mark.parametrize(("qty", "cost", "message"), [
    ("0", "1", "must be greater than zero"),
    ("-1", "1", "received quantities must be positive"),
    ("1.00001", "1", "at most 4 decimal places"),
    ("1", "-1", "cannot be negative"),
    ("1", "0.0000001", "at most 6 decimal places"),
    ("x", "1", "'x' is not a number"),
])
def test_bad_quantities_and_costs(tenant_factory, as_tenant, qty, cost, message):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, p = _main(s), _product(s)
        with pytest.raises(InventoryError, match=message):
            inv.receive(s, [MoveLine(p.id, wh.id, qty, cost)])


def test_inactive_product_cannot_be_received_but_can_be_sold_off(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, p = _main(s), _product(s)
        _receive(s, p, wh, "2", "1")
        inv.set_product_active(s, p, False)
        with pytest.raises(InventoryError, match="is inactive"):
            _receive(s, p, wh, "1", "1")
        _deliver(s, p, wh, "2")
        assert inv.list_products(s).total == 0
        assert inv.list_products(s, include_inactive=True).total == 1


def test_transfer_moves_value_without_a_ledger_entry(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        main, p = _main(s), _product(s)
        north = inv.save_warehouse(s, {"code": "north", "name": "North"})
        assert north.code == "NORTH"
        _receive(s, p, main, "4", "2.50")
        entries = s.scalar(select(func.count()).select_from(JournalEntry))
        result = inv.transfer(s, p.id, main.id, north.id, "1")
        out, into = result.moves
        assert (out.quantity, out.value, into.quantity, into.value) == (D(-1), D("-2.50"), D(1),
                                                                        D("2.50"))
        assert out.transfer_id == into.transfer_id
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == entries
        with pytest.raises(NotEnoughStock, match="1 available, 2 requested"):
            inv.transfer(s, p.id, north.id, main.id, "2")
        with pytest.raises(InventoryError, match="two different warehouses"):
            inv.transfer(s, p.id, main.id, main.id, "1")
        assert inv.product_totals(s, p.id).on_hand == D(4)


def test_stock_count_and_adjustments_post_with_their_reason(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, p = _main(s), _product(s)
        opening = inv.adjust(s, p.id, wh.id, reason="opening", delta="10", unit_cost="4")
        assert opening.moves[0].reason == "opening" and opening.moves[0].value == D(40)
        assert _balance(s, "opening_balance") == D(40)
        assert inv.adjust(s, p.id, wh.id, reason="count", counted="10") is None
        counted = inv.adjust(s, p.id, wh.id, reason="count", counted="8", note="cycle count")
        assert counted.moves[0].quantity == D(-2) and counted.moves[0].value == D(-8)
        assert counted.moves[0].note == "cycle count"
        found = inv.adjust(s, p.id, wh.id, reason="found", delta="1")  # at average cost
        assert found.moves[0].value == D(4)
        assert _balance(s, "inventory_adjustment") == D(4)
        assert _balance(s, "inventory") == D(36)
        with pytest.raises(InventoryError, match="reason must be one of"):
            inv.adjust(s, p.id, wh.id, reason="whim", delta="1")
        with pytest.raises(InventoryError, match="opening stock can only add"):
            inv.adjust(s, p.id, wh.id, reason="opening", delta="-1")
        with pytest.raises(InventoryError, match="either the change or the counted"):
            inv.adjust(s, p.id, wh.id, reason="count", delta="1", counted="3")


def test_reservations_hold_stock_back(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, p = _main(s), _product(s)
        _receive(s, p, wh, "10", "1")
        res = inv.reserve(s, p.id, wh.id, "7", source_type="sales.order", source_ref="SO-1")
        level = inv.stock_level(s, p.id, wh.id)
        assert (level.on_hand, level.reserved) == (D(10), D(7))
        with pytest.raises(NotEnoughStock, match="3 available, 4 requested"):
            _deliver(s, p, wh, "4")
        with pytest.raises(NotEnoughStock, match="3 available"):
            inv.reserve(s, p.id, wh.id, "4")
        inv.deliver(s, [MoveLine(p.id, wh.id, D(5), reservation_id=res.id)])
        assert (res.fulfilled, res.status) == (D(5), "active")
        level = inv.stock_level(s, p.id, wh.id)
        assert (level.on_hand, level.reserved) == (D(5), D(2))
        inv.release(s, res)
        totals = inv.product_totals(s, p.id)
        assert (totals.on_hand, totals.reserved) == (D(5), 0)
        with pytest.raises(InventoryError, match="is released"):
            inv.release(s, res)


def test_reorder_event_when_available_crosses_below_the_level(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, p = _main(s), _product(s, reorder_level="5", reorder_qty="50")
        _receive(s, p, wh, "10", "1")
        assert _deliver(s, p, wh, "5").reorder_events == []  # 5 is not below 5
        first = _deliver(s, p, wh, "1").reorder_events
        assert [(e.available, e.reorder_level, e.reorder_qty) for e in first] == [
            (D(4), D(5), D(50))]
        assert _deliver(s, p, wh, "1").reorder_events == []  # already below: no repeat
        _receive(s, p, wh, "10", "1")
        inv.reserve(s, p.id, wh.id, "9")  # 13 available -> 4: a reservation counts too
        assert len(inv.list_reorder_events(s)) == 2
        events = s.scalars(select(OutboxEvent).where(
            OutboxEvent.event_type == "inventory.reorder_needed")).all()
        assert len(events) == 2 and events[0].payload["sku"] == "SKU-1"
        assert events[0].payload["reorder_event_id"] == str(first[0].id)
        low = inv.list_products(s, low_stock=True)
        assert [row.product.sku for row in low.items] == ["SKU-1"]
        inv.set_reorder_status(s, first[0].id, "ordered")
        assert len(inv.list_reorder_events(s)) == 1


def test_valuation_as_of_a_date(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        wh, a, b = _main(s), _product(s, "A", category="Tools"), _product(s, "B")
        _receive(s, a, wh, "4", "2.50")
        _receive(s, b, wh, "1", "7")
        _deliver(s, a, wh, "1")
        now = inv.valuation(s, TODAY)
        assert [(r.sku, r.quantity, r.value) for r in now.rows] == [("A", D(3), D("7.50")),
                                                                    ("B", D(1), D(7))]
        assert now.total == D("14.50") == _balance(s, "inventory")
        assert now.by_category() == [("Tools", D("7.50"), 1), ("(none)", D(7), 1)]
        assert inv.valuation(s, TODAY - dt.timedelta(days=1)).rows == []
        assert inv.valuation(s, TODAY, warehouse_id=wh.id).total == D("14.50")


# --- what the database enforces -----------------------------------------------------------------


@pytest.fixture
def stocked(app):
    with app.app_context():
        t = make_tenant(db.session, f"inv-{secrets.token_hex(3)}")
        db.session.commit()
        with tenant_scope(t.ctx):
            wh, p = _main(db.session), _product(db.session)
            _receive(db.session, p, wh, "10", "1")
            db.session.commit()
            ids = {"p": p.id, "w": wh.id}
        db.session.remove()
    return t, ids


def _app_conn(database, tenant_id):
    conn = psycopg.connect(database.app_url)
    conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant_id),))
    conn.commit()
    return conn


@pytest.mark.parametrize(("sql", "message"), [
    ("UPDATE inventory.stock_levels SET on_hand = on_hand + 1, value = value + 1"
     " WHERE product_id = %(p)s", "differs from its moves"),
    ("UPDATE inventory.stock_levels SET on_hand = -1 WHERE product_id = %(p)s",
     "ck_stock_levels_on_hand_non_negative"),
    ("UPDATE inventory.stock_levels SET reserved = 11 WHERE product_id = %(p)s",
     "ck_stock_levels_reserved_within_on_hand"),
    ("UPDATE inventory.stock_levels SET reserved = 1 WHERE product_id = %(p)s",
     "product totals"),
    ("UPDATE inventory.product_stock SET on_hand = 99 WHERE product_id = %(p)s", None),
    ("DELETE FROM inventory.stock_levels WHERE product_id = %(p)s", "are never deleted"),
    ("UPDATE inventory.stock_moves SET quantity = 99 WHERE product_id = %(p)s",
     "permission denied"),
    ("DELETE FROM inventory.stock_moves WHERE product_id = %(p)s", "permission denied"),
    ("INSERT INTO inventory.stock_moves (tenant_id, product_id, warehouse_id, kind, quantity,"
     " unit_cost, value, seq, on_hand_after, value_after) VALUES (app.current_tenant_id(),"
     " %(p)s, %(w)s, 'receipt', 5, 1, 5, 2, 15, 15)", "without updating its stock level"),
    ("INSERT INTO inventory.stock_moves (tenant_id, product_id, warehouse_id, kind, quantity,"
     " unit_cost, value, seq, on_hand_after, value_after) VALUES (app.current_tenant_id(),"
     " %(p)s, %(w)s, 'receipt', 5, 1, 5, 2, 99, 15)", "breaks the running balance"),
    ("INSERT INTO inventory.stock_moves (tenant_id, product_id, warehouse_id, kind, quantity,"
     " unit_cost, value, seq, on_hand_after, value_after) VALUES (app.current_tenant_id(),"
     " %(p)s, %(w)s, 'receipt', 5, 1, 5, 7, 15, 15)", "has no predecessor"),
    ("INSERT INTO inventory.stock_moves (tenant_id, product_id, warehouse_id, kind, quantity,"
     " unit_cost, value, seq, on_hand_after, value_after) VALUES (app.current_tenant_id(),"
     " %(p)s, %(w)s, 'delivery', 5, 1, 5, 2, 15, 15)", "ck_stock_moves_quantity_sign"),
])
def test_stock_books_cannot_be_forged_by_the_app_role(database, stocked, sql, message):
    t, ids = stocked
    with _app_conn(database, t.id) as conn:
        with pytest.raises(psycopg.Error, match=message or "differ from the sum"):
            conn.execute(sql, ids)
            conn.commit()
        conn.rollback()
        assert conn.execute("SELECT on_hand, value, reserved FROM inventory.stock_levels"
                            " WHERE product_id = %s", (ids["p"],)).fetchone() == (10, 10, 0)


def test_sixteen_concurrent_deliveries_never_oversell(app, database, stocked):
    """16 threads, each its own connection as the app role, deliver 1 unit each
    against 10 units: exactly 10 succeed, the stock ends at 0, COGS posted 10 times."""
    t, ids = stocked
    engine = create_engine(sqlalchemy_url(database.app_url),
                           **{**ENGINE_OPTIONS, "pool_size": 16, "max_overflow": 0})
    install_engine_hooks(engine)
    start = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def deliver() -> None:
        try:
            with tenant_scope(t.ctx), Session(engine) as session:
                session.execute(text("SELECT 1"))  # connection checked out before the race
                start.wait(timeout=30)
                try:
                    inv.deliver(session, [MoveLine(ids["p"], ids["w"], D(1))])
                    session.commit()
                    outcome = "ok"
                except NotEnoughStock:
                    session.rollback()
                    outcome = "refused"
        except Exception as exc:
            outcome = repr(exc)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=deliver) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    try:
        with tenant_scope(t.ctx), Session(engine) as session:
            level = session.scalar(select(StockLevel).where(StockLevel.product_id == ids["p"]))
            totals = session.scalar(select(ProductStock).where(ProductStock.product_id == ids["p"]))
            moves = session.scalars(select(StockMove).where(StockMove.product_id == ids["p"])
                                    .order_by(StockMove.seq)).all()
            cogs = session.scalar(select(func.count()).select_from(JournalEntry).where(
                JournalEntry.description == "Goods delivered"))
    finally:
        engine.dispose()
    assert sorted(outcomes) == ["ok"] * 10 + ["refused"] * 6
    assert (level.on_hand, level.value, totals.on_hand) == (0, 0, 0)
    assert [m.seq for m in moves] == list(range(1, 12))
    assert [m.on_hand_after for m in moves] == [D(10), *[D(n) for n in range(9, -1, -1)]]
    assert cogs == 10
