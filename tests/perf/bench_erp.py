"""Benchmark: the ERP core at warehouse size, against a round-trip baseline, same run.

    .venv/bin/python -m tests.perf.bench_erp [--products 50000 --moves 2000000
        --tenants 5 --samples 300]

One tenant gets ``--products`` products in three warehouses and ``--moves`` stock
moves spread over two years; the other tenants get a thousandth of that each, so the
big tenant's queries run among other tenants' rows. Then, as the app role with the
tenant context and through the real services, it measures:

* stock level lookup (one product in one warehouse);
* product list with the low-stock filter (a page of 50, with the total);
* a delivery transaction: move + level + totals + COGS journal entry, committed;
* valuation as of a date a year back (every level's balance at that date).

Each is printed with p50/p99 and the row counts, beside the baseline (a primary-key
select over raw psycopg on the same server), and the ratio. Targets of the ERP issue:
list and lookup p99 under 50 ms, valuation under 2 s.

Bulk rows are written with SQL as the superuser with triggers off
(``session_replication_role = replica``); the script itself computes what the
triggers would (running balances, levels, totals), and then checks it with the
database's own rule: every level equals its last move.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.db import ENGINE_OPTIONS, install_engine_hooks
from app.inventory import services as inv
from app.inventory.services import MoveLine
from app.settings import sqlalchemy_url
from tenants.context import tenant_scope
from tenants.orm import install_session_guard
from tests.conftest import make_tenant
from tests.dbsetup import TestDatabase, scratch_database

DAYS = 730
WAREHOUSES = 3


def _step(label: str) -> Callable[[], None]:
    started = time.perf_counter()
    print(f"  {label} ...", end="", flush=True)

    def done() -> None:
        print(f" {time.perf_counter() - started:.1f} s", flush=True)

    return done


def load_tenant(conn: psycopg.Connection, tenant_id: uuid.UUID, warehouses: list[uuid.UUID],
                products: int, moves: int) -> None:
    """Products, two years of moves per (product, warehouse), levels and totals.

    Each stream alternates receipts of 10 and deliveries of 7 at the product's cost,
    so the running balance never goes negative and the moving average stays the
    product's cost: the running columns are exact without replaying the service.
    """
    per_stream = max(2, -(-moves // (products * len(warehouses))))  # at least --moves
    conn.execute("SET session_replication_role = replica")
    done = _step(f"{products:,} products")
    conn.execute(
        "INSERT INTO inventory.products (tenant_id, id, sku, name, category, uom,"
        " reorder_level, reorder_qty) SELECT %(t)s, app.uuid7(), 'SKU-' || lpad(g::text, 7,"
        " '0'), 'Product ' || g, 'Category ' || (g %% 20), 'unit',"
        " CASE WHEN g %% 20 = 0 THEN 1000 ELSE 10 END, 100"
        " FROM generate_series(1, %(n)s::int) g", {"t": tenant_id, "n": products})
    done()
    done = _step(f"{products * len(warehouses) * per_stream:,} stock moves "
                 f"({per_stream} per product and warehouse, over {DAYS} days)")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS)
    conn.execute(
        """
        INSERT INTO inventory.stock_moves (tenant_id, id, product_id, warehouse_id, kind,
            quantity, unit_cost, value, seq, on_hand_after, value_after, moved_at, note)
        SELECT p.tenant_id, app.uuid7(), p.id, w.id,
               CASE WHEN k %% 2 = 1 THEN 'receipt' ELSE 'delivery' END,
               CASE WHEN k %% 2 = 1 THEN 10 ELSE -7 END,
               c.cost,
               CASE WHEN k %% 2 = 1 THEN 10 ELSE -7 END * c.cost,
               k,
               10 * ((k + 1) / 2) - 7 * (k / 2),
               (10 * ((k + 1) / 2) - 7 * (k / 2)) * c.cost,
               %(start)s + (k - 1) * (%(days)s::int * interval '1 day' / %(per)s::int)
                   + (abs(hashtext(p.id::text)) %% 3600) * interval '1 second',
               'bench'
        FROM inventory.products p
        CROSS JOIN unnest(%(warehouses)s::uuid[]) AS w(id)
        CROSS JOIN LATERAL (SELECT (1 + abs(hashtext(p.sku)) %% 5000) / 100.0 AS cost) c
        CROSS JOIN generate_series(1, %(per)s::int) k
        WHERE p.tenant_id = %(t)s
        """, {"t": tenant_id, "warehouses": warehouses, "per": per_stream, "start": start,
              "days": DAYS})
    done()
    done = _step("stock levels and product totals")
    conn.execute(
        "INSERT INTO inventory.stock_levels (tenant_id, id, product_id, warehouse_id, on_hand,"
        " reserved, value, last_seq) SELECT m.tenant_id, app.uuid7(), m.product_id,"
        " m.warehouse_id, m.on_hand_after, 0, m.value_after, m.seq"
        " FROM inventory.stock_moves m WHERE m.tenant_id = %(t)s AND m.seq = %(per)s",
        {"t": tenant_id, "per": per_stream})
    conn.execute(
        "INSERT INTO inventory.product_stock (tenant_id, id, product_id, on_hand, reserved,"
        " reorder_level) SELECT p.tenant_id, app.uuid7(), p.id, coalesce(sum(l.on_hand), 0),"
        " 0, p.reorder_level FROM inventory.products p LEFT JOIN inventory.stock_levels l"
        " ON l.tenant_id = p.tenant_id AND l.product_id = p.id WHERE p.tenant_id = %(t)s"
        " GROUP BY p.tenant_id, p.id, p.reorder_level", {"t": tenant_id})
    done()
    conn.execute("SET session_replication_role = DEFAULT")


def _check(conn: psycopg.Connection) -> None:
    bad = conn.execute(
        "SELECT count(*) FROM inventory.stock_levels l JOIN inventory.stock_moves m"
        " ON m.tenant_id = l.tenant_id AND m.product_id = l.product_id"
        " AND m.warehouse_id = l.warehouse_id AND m.seq = l.last_seq"
        " WHERE m.on_hand_after <> l.on_hand OR m.value_after <> l.value").fetchone()[0]
    assert bad == 0, f"{bad} levels differ from their last move"


def _timed(fn: Callable[[int], object], n: int) -> list[float]:
    times = []
    for i in range(n):
        began = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - began) * 1000)
    return sorted(times)


def _p(times: list[float], q: float) -> float:
    return times[min(len(times) - 1, int(len(times) * q))]


def _report(label: str, times: list[float], base_p50: float, rows: str) -> dict[str, float]:
    p50, p99 = statistics.median(times), _p(times, 0.99)
    print(f"  {label:44} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  "
          f"({p50 / base_p50:,.0f}x baseline p50)  {rows}")
    return {"p50_ms": p50, "p99_ms": p99}


def run(*, products: int, moves: int, tenants: int, samples: int) -> dict[str, dict]:
    install_session_guard()
    with tempfile.TemporaryDirectory() as tmp, \
            scratch_database(Path(tmp), "erp_bench") as db:
        return _run(db, products=products, moves=moves, tenants=tenants, samples=samples)


def _run(db: TestDatabase, *, products: int, moves: int, tenants: int, samples: int
         ) -> dict[str, dict]:
    owner = create_engine(sqlalchemy_url(db.owner_url), **ENGINE_OPTIONS)
    install_engine_hooks(owner)
    made = []
    with Session(owner, expire_on_commit=False) as s:
        for i in range(tenants):
            t = make_tenant(s, f"erp-bench-{i}-{secrets.token_hex(2)}")
            made.append(t)
        s.commit()
        warehouses: dict[uuid.UUID, list[uuid.UUID]] = {}
        for t in made:
            with tenant_scope(t.ctx):
                ids = [inv.list_warehouses(s)[0].id]
                for code in ("EAST", "WEST")[:WAREHOUSES - 1]:
                    ids.append(inv.save_warehouse(s, {"code": code, "name": code.title()}).id)
                s.commit()
                warehouses[t.id] = ids
    owner.dispose()
    big = made[0]
    print(f"loading: {tenants} tenants; the measured one has {products:,} products and "
          f"about {moves:,} moves; the others {max(products // 1000, 20):,} products each")
    with db.admin_connect() as conn:
        load_tenant(conn, big.id, warehouses[big.id], products, moves)
        for t in made[1:]:
            load_tenant(conn, t.id, warehouses[t.id], max(products // 1000, 20),
                        max(moves // 1000, 400))
        done = _step("VACUUM ANALYZE (as autovacuum would) and check levels against moves")
        conn.execute("VACUUM ANALYZE")
        _check(conn)
        done()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM inventory.products WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM inventory.stock_moves WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM inventory.stock_levels WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM inventory.product_stock WHERE tenant_id = %(t)s"
            "  AND available < reorder_level),"
            " (SELECT count(*) FROM inventory.stock_moves)", {"t": big.id}).fetchone()
    n_products, n_moves, n_levels, n_low, all_moves = counts
    print(f"measured tenant: {n_products:,} products, {n_moves:,} moves, {n_levels:,} levels, "
          f"{n_low:,} below reorder level; {all_moves:,} moves in all tenants")

    rng = random.Random(7)
    with psycopg.connect(db.app_url) as raw:
        raw.execute("SELECT set_config('app.tenant_id', %s, false)", (str(big.id),))
        product_ids = [r[0] for r in raw.execute(
            "SELECT product_id FROM inventory.product_stock WHERE tenant_id = %s",
            (big.id,))]
        raw.execute("SELECT set_config('app.tenant_id', '', false)")
        raw.commit()
        base = _timed(lambda i: raw.execute(
            "SELECT id FROM core.tenants WHERE id = %s", (big.id,)).fetchone(), samples)
    base_p50 = statistics.median(base)
    results: dict[str, dict] = {}
    print(f"\n{samples} samples each (valuation: {max(3, samples // 60)}):")
    print(f"  {'baseline: primary-key select, raw psycopg':44} p50 {base_p50:8.2f} ms  "
          f"p99 {_p(base, 0.99):8.2f} ms")

    engine = create_engine(sqlalchemy_url(db.app_url), **ENGINE_OPTIONS)
    install_engine_hooks(engine)
    whs = warehouses[big.id]
    with tenant_scope(big.ctx), Session(engine, expire_on_commit=False) as s:
        def lookup(i: int) -> None:
            level = inv.stock_level(s, rng.choice(product_ids), rng.choice(whs))
            assert level is not None
            s.rollback()

        results["lookup"] = _report("stock level lookup", _timed(lookup, samples), base_p50,
                                    "1 row")

        def low_list(i: int) -> None:
            page = inv.list_products(s, low_stock=True, page=1 + i % 5, per_page=50)
            inv.levels_by_product(s, [r.product.id for r in page.items])
            assert page.total == n_low
            s.rollback()

        results["low_stock_list"] = _report(
            "product list, low-stock filter (page of 50)", _timed(low_list, samples),
            base_p50, f"{n_low:,} matching, 50 shown with their levels")

        def deliver(i: int) -> None:
            inv.deliver(s, [MoveLine(rng.choice(product_ids), rng.choice(whs), Decimal(1))])
            s.commit()

        results["delivery"] = _report(
            "delivery (move + level + COGS entry, commit)", _timed(deliver, samples),
            base_p50, "3 rows written, 1 entry posted")

        as_of = dt.date.today() - dt.timedelta(days=365)

        def valuation(i: int) -> None:
            result = inv.valuation(s, as_of)
            assert result.rows
            s.rollback()

        results["valuation"] = _report(
            f"valuation as of {as_of}", _timed(valuation, max(3, samples // 60)), base_p50,
            f"{n_levels:,} levels")
    engine.dispose()
    verdict = {
        "lookup p99 < 50 ms": results["lookup"]["p99_ms"] < 50,
        "list p99 < 50 ms": results["low_stock_list"]["p99_ms"] < 50,
        "valuation < 2 s": results["valuation"]["p99_ms"] < 2000,
    }
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in verdict.items()))
    results["counts"] = {"products": n_products, "moves": n_moves, "levels": n_levels,
                         "low": n_low}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--moves", type=int, default=2_000_000)
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    run(products=args.products, moves=args.moves, tenants=args.tenants, samples=args.samples)


if __name__ == "__main__":
    main()
