"""Inventory services: products, warehouses, and the one way stock ever changes.

``apply_moves`` (and the helpers built on it: ``receive``, ``deliver``, ``transfer``,
``adjust``, ``return_in``) writes stock moves, stock levels and product totals in the
caller's transaction, under row locks taken in one global order (every level row of
the operation sorted by product and warehouse, then every product total sorted by
product), so concurrent operations queue instead of deadlocking or overselling.

Costing is moving average per product and warehouse: a level carries its quantity
and its value; stock going out takes ``value * qty / on_hand`` (all of it when the
level empties), rounded to the base currency's minor unit, so the value of the moves
and the inventory account in the ledger agree to the cent. Each operation that
changes value posts one journal entry through the ledger service.

When a product's available stock (all warehouses) falls below its reorder level, a
``ReorderEvent`` row is written and ``inventory.reorder_needed`` is published to the
outbox, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.events.services import publish
from app.ledger import services as ledger
from app.money import CURRENCIES, UnknownCurrency, quantize, validate_currency
from tenants.context import require_context
from tenants.models import Tenant

from .models import (
    Bin,
    Product,
    ProductStock,
    ReorderEvent,
    Reservation,
    StockLevel,
    StockMove,
    Warehouse,
)

ZERO = Decimal(0)
QTY_PLACES = 4
COST_PLACES = 6
UOMS = ("unit", "pair", "box", "pack", "pallet", "kg", "g", "t", "l", "ml", "m", "m2", "m3",
        "hour")
# Adjustment reasons: label, the ledger account role the difference is posted against,
# and whether the reason only ever adds stock.
ADJUSTMENT_REASONS: dict[str, tuple[str, str]] = {
    "count": ("Stock count difference", "inventory_adjustment"),
    "damaged": ("Damaged", "inventory_adjustment"),
    "expired": ("Expired", "inventory_adjustment"),
    "lost": ("Lost or stolen", "inventory_adjustment"),
    "found": ("Found", "inventory_adjustment"),
    "correction": ("Correction of an earlier error", "inventory_adjustment"),
    "opening": ("Opening stock", "opening_balance"),
}
# Counter accounts a receipt outside purchasing may be posted against.
RECEIPT_COUNTERS = {"grni": "Goods received, invoice to follow",
                    "opening_balance": "Opening stock"}
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
FIELD_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class InventoryError(ValueError):
    """Refused input or an impossible move; the message is fit for the user."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotEnoughStock(InventoryError):
    pass


# --- parsing ------------------------------------------------------------------------------


def parse_decimal(value: Any, field_name: str, places: int, *, positive: bool = False,
                  allow_zero: bool = True) -> Decimal:
    """A Decimal with at most ``places`` decimals; floats are refused (inexact)."""
    if isinstance(value, float):
        raise InventoryError("use an exact decimal, not a floating point number", field_name)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InventoryError(f"{value!r} is not a number", field_name) from None
    if not number.is_finite():
        raise InventoryError(f"{value!r} is not a number", field_name)
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise InventoryError(f"at most {places} decimal places", field_name)
    if abs(number) >= Decimal("1e14"):
        raise InventoryError("the number is too large", field_name)
    if number < 0 or (positive and number == 0) or (not allow_zero and number == 0):
        raise InventoryError("must be greater than zero" if positive else
                             "cannot be negative", field_name)
    return number


def _quantity(value: Any, field_name: str = "quantity") -> Decimal:
    return parse_decimal(value, field_name, QTY_PLACES, positive=True)


def _signed_quantity(value: Any, field_name: str = "quantity") -> Decimal:
    """A non-zero quantity that may be negative (stock out)."""
    raw = value if isinstance(value, Decimal) else str(value).strip()
    negative = (raw < 0) if isinstance(raw, Decimal) else raw.startswith("-")
    magnitude = -raw if isinstance(raw, Decimal) and negative else (
        raw[1:] if negative else raw)
    quantity = _quantity(magnitude, field_name)
    return -quantity if negative else quantity


# --- seeding, warehouses and bins ---------------------------------------------------------


def seed_default_warehouse(session: Session, _tenant: Tenant) -> None:
    """Tenant seeder: every company starts with one warehouse, so stock can be
    received on day one."""
    session.add(Warehouse(code="MAIN", name="Main warehouse"))
    session.flush()


def list_warehouses(session: Session, *, active_only: bool = False) -> list[Warehouse]:
    query = select(Warehouse).order_by(Warehouse.code)
    if active_only:
        query = query.where(Warehouse.is_active.is_(True))
    return list(session.scalars(query))


def get_warehouse(session: Session, warehouse_id: uuid.UUID) -> Warehouse | None:
    return session.scalar(select(Warehouse).where(Warehouse.id == warehouse_id))


def save_warehouse(session: Session, data: dict[str, Any],
                   warehouse: Warehouse | None = None) -> Warehouse:
    code = (data.get("code") or "").strip().upper()
    name = (data.get("name") or "").strip()
    if not re.match(r"^[A-Z0-9][A-Z0-9_-]{0,19}$", code):
        raise InventoryError("the code must be 1-20 letters, digits, '-' or '_'", "code")
    if not name:
        raise InventoryError("the warehouse needs a name", "name")
    clash = select(Warehouse.id).where(Warehouse.code == code)
    if warehouse is not None:
        clash = clash.where(Warehouse.id != warehouse.id)
    if session.scalar(clash):
        raise InventoryError(f"warehouse code {code} is taken", "code")
    if warehouse is None:
        warehouse = Warehouse(code=code, name=name)
        session.add(warehouse)
    warehouse.code, warehouse.name = code, name
    warehouse.address = (data.get("address") or "").strip()
    if "is_active" in data:
        warehouse.is_active = bool(data["is_active"])
    session.flush()
    return warehouse


def list_bins(session: Session, warehouse_id: uuid.UUID | None = None) -> list[Bin]:
    query = select(Bin).order_by(Bin.code)
    if warehouse_id is not None:
        query = query.where(Bin.warehouse_id == warehouse_id)
    return list(session.scalars(query))


def add_bin(session: Session, warehouse: Warehouse, code: str) -> Bin:
    code = (code or "").strip().upper()
    if not re.match(r"^[A-Z0-9][A-Z0-9_.-]{0,29}$", code):
        raise InventoryError("the bin code must be 1-30 letters, digits, '.', '-' or '_'",
                             "code")
    if session.scalar(select(Bin.id).where(Bin.warehouse_id == warehouse.id, Bin.code == code)):
        raise InventoryError(f"bin {code} exists in {warehouse.code}", "code")
    found = Bin(warehouse_id=warehouse.id, code=code)
    session.add(found)
    session.flush()
    return found


# --- products -----------------------------------------------------------------------------


PRODUCT_FIELDS = ("sku", "name", "name_translations", "description", "uom", "category",
                  "sale_price", "sale_currency", "reorder_level", "reorder_qty",
                  "preferred_supplier_id", "custom_fields", "is_active")


def _clean_product(data: dict[str, Any]) -> dict[str, Any]:
    clean = {k: v for k, v in data.items() if k in PRODUCT_FIELDS}
    if "sku" in clean:
        clean["sku"] = (clean["sku"] or "").strip()
        if not re.match(r"^\S{1,64}$", clean["sku"]):
            raise InventoryError("the SKU must be 1-64 characters without spaces", "sku")
    if "name" in clean:
        clean["name"] = (clean["name"] or "").strip()
        if not clean["name"] or len(clean["name"]) > 200:
            raise InventoryError("the product needs a name (at most 200 characters)", "name")
    if "uom" in clean:
        clean["uom"] = (clean["uom"] or "unit").strip().lower()
        if clean["uom"] not in UOMS:
            raise InventoryError(f"unit of measure must be one of {', '.join(UOMS)}", "uom")
    if "category" in clean:
        clean["category"] = (clean["category"] or "").strip()[:100]
    if "description" in clean:
        clean["description"] = clean["description"] or ""
    for key in ("reorder_level", "reorder_qty"):
        if key in clean:
            clean[key] = parse_decimal(clean[key] if clean[key] not in (None, "") else 0,
                                       key, QTY_PLACES)
    if "sale_price" in clean or "sale_currency" in clean:
        price, currency = clean.get("sale_price"), clean.get("sale_currency")
        if price in (None, ""):
            clean["sale_price"], clean["sale_currency"] = None, None
        else:
            try:
                currency = validate_currency(currency or "")
            except UnknownCurrency as exc:
                raise InventoryError(str(exc), "sale_currency") from None
            clean["sale_price"] = parse_decimal(price, "sale_price", CURRENCIES[currency])
            clean["sale_currency"] = currency
    if "name_translations" in clean:
        clean["name_translations"] = _translations(clean["name_translations"] or {})
    if "custom_fields" in clean:
        clean["custom_fields"] = _custom_fields(clean["custom_fields"] or {})
    return clean


def _translations(names: dict[str, Any]) -> dict[str, str]:
    result = {}
    for lang, name in names.items():
        if not isinstance(lang, str) or not LANG_RE.match(lang):
            raise InventoryError(f"{lang!r} is not a language code (e.g. fr, de, pt-BR)",
                                 "name_translations")
        name = (name or "").strip() if isinstance(name, str) else ""
        if not name or len(name) > 200:
            raise InventoryError(f"the {lang} name must be 1-200 characters",
                                 "name_translations")
        result[lang] = name
    return result


def _custom_fields(values: dict[str, Any]) -> dict[str, Any]:
    if len(values) > 50:
        raise InventoryError("at most 50 custom fields", "custom_fields")
    for key, value in values.items():
        if not isinstance(key, str) or not FIELD_KEY_RE.match(key):
            raise InventoryError(f"custom field name {key!r}: use a-z, 0-9 and _ (at most 40)",
                                 "custom_fields")
        if isinstance(value, float) or not (value is None or isinstance(value, str | int | bool)):
            raise InventoryError(f"custom field {key}: only text, whole numbers, true/false",
                                 "custom_fields")
        if isinstance(value, str) and len(value) > 500:
            raise InventoryError(f"custom field {key}: at most 500 characters", "custom_fields")
    return dict(values)


def _flush_product(session: Session, product: Product, new: bool) -> None:
    try:
        with session.begin_nested():
            if new:
                session.add(product)
            session.flush()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", "") or ""
        if "sku" in constraint:
            raise InventoryError(f"SKU {product.sku} is taken", "sku") from None
        if "supplier" in constraint or "suppliers" in constraint:
            raise InventoryError("no such supplier", "preferred_supplier_id") from None
        raise


def create_product(session: Session, data: dict[str, Any]) -> Product:
    clean = _clean_product(data)
    for required in ("sku", "name"):
        if not clean.get(required):
            raise InventoryError(f"the product needs a {required}", required)
    if session.scalar(select(Product.id).where(Product.sku == clean["sku"])):
        raise InventoryError(f"SKU {clean['sku']} is taken", "sku")
    product = Product(**clean)
    _flush_product(session, product, new=True)
    return product


def update_product(session: Session, product: Product, data: dict[str, Any]) -> Product:
    clean = _clean_product(data)
    if "sku" in clean and clean["sku"] != product.sku:
        if session.scalar(select(StockMove.id).where(StockMove.product_id == product.id)
                          .limit(1)):
            raise InventoryError("the product has stock moves: its SKU cannot change", "sku")
        if session.scalar(select(Product.id).where(Product.sku == clean["sku"],
                                                   Product.id != product.id)):
            raise InventoryError(f"SKU {clean['sku']} is taken", "sku")
    for key, value in clean.items():
        setattr(product, key, value)
    _flush_product(session, product, new=False)
    return product


def set_product_active(session: Session, product: Product, active: bool) -> Product:
    """Soft delete: an inactive product leaves the pickers and cannot be received;
    its history, stock and documents stay."""
    product.is_active = active
    session.flush()
    return product


def get_product(session: Session, product_id: uuid.UUID) -> Product | None:
    return session.scalar(select(Product).where(Product.id == product_id))


def product_by_sku(session: Session, sku: str) -> Product | None:
    return session.scalar(select(Product).where(Product.sku == (sku or "").strip()))


def require_product(session: Session, *, product_id: uuid.UUID | None = None,
                    sku: str | None = None) -> Product:
    """The product by id or SKU, or InventoryError naming what was not found."""
    product = (get_product(session, product_id) if product_id is not None
               else product_by_sku(session, sku or ""))
    if product is None:
        raise InventoryError(f"unknown SKU {sku!r}" if sku is not None else "no such product",
                             "sku" if sku is not None else "product_id")
    return product


def categories(session: Session) -> list[str]:
    return list(session.scalars(select(Product.category).where(Product.category != "")
                                .distinct().order_by(Product.category)))


@dataclass(frozen=True)
class ProductRow:
    product: Product
    stock: ProductStock

    @property
    def low(self) -> bool:
        return self.stock.on_hand - self.stock.reserved < self.product.reorder_level


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int


PRODUCT_SORTS = {"sku": (Product.sku,), "-sku": (Product.sku.desc(),),
                 "name": (Product.name, Product.sku), "-name": (Product.name.desc(), Product.sku)}


def list_products(session: Session, *, q: str | None = None, category: str | None = None,
                  low_stock: bool = False, include_inactive: bool = False, sort: str = "sku",
                  page: int = 1, per_page: int = 50) -> Page:
    """Products with their totals. ``low_stock``: available below the reorder level
    (read from a partial index, so it stays fast with many products)."""
    query = (select(Product, ProductStock)
             .join(ProductStock, (ProductStock.tenant_id == Product.tenant_id)
                   & (ProductStock.product_id == Product.id)))
    if not include_inactive:
        query = query.where(Product.is_active.is_(True))
    if q:
        pattern = "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") \
            + "%"
        query = query.where(or_(Product.sku.ilike(pattern), Product.name.ilike(pattern)))
    if category:
        query = query.where(Product.category == category)
    if low_stock:
        query = query.where(ProductStock.is_low)
    # The total rides along as a window count: one scan instead of a count query and a
    # page query (each of which would find the matching products again).
    rows = session.execute(query.add_columns(func.count().over().label("total"))
                           .order_by(*PRODUCT_SORTS.get(sort, PRODUCT_SORTS["sku"]))
                           .offset((page - 1) * per_page).limit(per_page)).all()
    if rows:
        total = rows[0].total
    else:  # a page past the end: count on its own
        total = session.scalar(select(func.count()).select_from(
            query.order_by(None).subquery())) or 0
    return Page([ProductRow(p, s) for p, s, _ in rows], total, page, per_page)


def levels_by_product(session: Session, product_ids: Iterable[uuid.UUID]
                      ) -> dict[uuid.UUID, list[StockLevel]]:
    """Stock per warehouse for a page of products (one query)."""
    result: dict[uuid.UUID, list[StockLevel]] = {}
    ids = list(product_ids)
    if not ids:
        return result
    for level in session.scalars(select(StockLevel).where(StockLevel.product_id.in_(ids))):
        result.setdefault(level.product_id, []).append(level)
    return result


def product_totals(session: Session, product_id: uuid.UUID) -> ProductStock:
    return session.scalar(select(ProductStock).where(ProductStock.product_id == product_id))


def stock_level(session: Session, product_id: uuid.UUID, warehouse_id: uuid.UUID
                ) -> StockLevel | None:
    return session.scalar(select(StockLevel).where(StockLevel.product_id == product_id,
                                                   StockLevel.warehouse_id == warehouse_id))


# --- moves --------------------------------------------------------------------------------


@dataclass
class MoveLine:
    """One line of a stock operation. ``quantity`` is signed: + in, - out.
    ``unit_cost`` (base currency) prices incoming stock; None takes the level's
    current average cost."""

    product_id: uuid.UUID
    warehouse_id: uuid.UUID
    quantity: Decimal
    unit_cost: Decimal | None = None
    bin_id: uuid.UUID | None = None
    reservation_id: uuid.UUID | None = None
    note: str = ""


@dataclass
class Posting:
    """How an operation's value goes to the ledger: inventory against ``counter_role``."""

    counter_role: str
    description: str
    entry_date: dt.date | None = None


@dataclass
class MoveResult:
    moves: list[StockMove]
    entry_id: uuid.UUID | None = None
    reorder_events: list[ReorderEvent] = field(default_factory=list)

    @property
    def value(self) -> Decimal:
        return sum((m.value for m in self.moves), ZERO)


@dataclass
class _Book:
    """The rows one operation has locked, keyed for lookup."""

    base: str
    levels: dict[tuple[uuid.UUID, uuid.UUID], StockLevel]
    totals: dict[uuid.UUID, ProductStock]
    products: dict[uuid.UUID, Product]
    warehouses: dict[uuid.UUID, Warehouse]
    available_before: dict[uuid.UUID, Decimal]


def _lock(session: Session, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]],
          incoming: set[tuple[uuid.UUID, uuid.UUID]]) -> _Book:
    """Lock the stock levels of ``pairs`` and their products' totals, in the global
    order, creating missing levels for incoming stock first."""
    ordered = sorted(set(pairs))
    product_ids = sorted({p for p, _ in ordered})
    products = {p.id: p for p in session.scalars(select(Product).where(
        Product.id.in_(product_ids)))}
    warehouses = {w.id: w for w in session.scalars(select(Warehouse).where(
        Warehouse.id.in_({w for _, w in ordered})))}
    for product_id, warehouse_id in ordered:
        if product_id not in products:
            raise InventoryError("no such product", "product_id")
        if warehouse_id not in warehouses:
            raise InventoryError("no such warehouse", "warehouse_id")
    missing = [pair for pair in ordered if pair in incoming]
    if missing:
        tenant_id = require_context().tenant_id
        session.execute(
            pg_insert(StockLevel).values([
                {"tenant_id": tenant_id, "product_id": p, "warehouse_id": w}
                for p, w in missing])
            .on_conflict_do_nothing(index_elements=["tenant_id", "product_id", "warehouse_id"]))
    levels: dict[tuple[uuid.UUID, uuid.UUID], StockLevel] = {}
    for level in session.scalars(
            select(StockLevel)
            .where(StockLevel.product_id.in_(product_ids),
                   StockLevel.warehouse_id.in_({w for _, w in ordered}))
            .order_by(StockLevel.product_id, StockLevel.warehouse_id)
            .with_for_update()
            .execution_options(populate_existing=True)):
        levels[(level.product_id, level.warehouse_id)] = level
    totals = {t.product_id: t for t in session.scalars(
        select(ProductStock).where(ProductStock.product_id.in_(product_ids))
        .order_by(ProductStock.product_id).with_for_update()
        .execution_options(populate_existing=True))}
    return _Book(ledger.base_currency(session), levels, totals, products, warehouses,
                 {p: t.on_hand - t.reserved for p, t in totals.items()})


def _level(book: _Book, product_id: uuid.UUID, warehouse_id: uuid.UUID) -> StockLevel:
    level = book.levels.get((product_id, warehouse_id))
    if level is None:
        product, warehouse = book.products[product_id], book.warehouses[warehouse_id]
        raise NotEnoughStock(f"not enough stock of {product.sku} in {warehouse.code}: "
                             "0 available", "quantity")
    return level


def _outgoing_value(book: _Book, level: StockLevel, quantity: Decimal) -> Decimal:
    """Value leaving with ``quantity`` at the level's average cost."""
    if quantity == level.on_hand:
        return level.value
    return quantize(level.value * quantity / level.on_hand, book.base)


def _record(session: Session, book: _Book, kind: str, line: MoveLine, value: Decimal,
            reserved_release: Decimal = ZERO, **meta: Any) -> StockMove:
    """Write one move and apply it to its level and product totals (in memory; the
    caller flushes)."""
    level = _level(book, line.product_id, line.warehouse_id)
    totals = book.totals[line.product_id]
    qty = line.quantity
    unit_cost = (abs(value) / abs(qty)).quantize(Decimal(1).scaleb(-COST_PLACES))
    note = line.note or meta.pop("note", "")
    meta.pop("note", None)
    level.on_hand += qty
    level.value += value
    level.reserved -= reserved_release
    level.last_seq += 1
    totals.on_hand += qty
    totals.reserved -= reserved_release
    move = StockMove(product_id=line.product_id, warehouse_id=line.warehouse_id,
                     bin_id=line.bin_id, kind=kind, quantity=qty, unit_cost=unit_cost,
                     value=value, seq=level.last_seq, on_hand_after=level.on_hand,
                     value_after=level.value, note=(note or "")[:500],
                     created_by=require_context().user_id, **meta)
    session.add(move)
    return move


def _check_bins(session: Session, lines: Sequence[MoveLine]) -> None:
    wanted = {ln.bin_id for ln in lines if ln.bin_id is not None}
    if not wanted:
        return
    found = {b.id: b for b in session.scalars(select(Bin).where(Bin.id.in_(wanted)))}
    for line in lines:
        if line.bin_id is not None:
            bin_ = found.get(line.bin_id)
            if bin_ is None or bin_.warehouse_id != line.warehouse_id:
                raise InventoryError("the bin is not in that warehouse", "bin_id")


def apply_moves(session: Session, kind: str, lines: Sequence[MoveLine], *,
                posting: Posting | None = None, reason: str | None = None, note: str = "",
                source_type: str | None = None, source_id: uuid.UUID | None = None,
                source_ref: str = "", transfer_id: uuid.UUID | None = None) -> MoveResult:
    """Apply receipt/delivery/adjustment/return lines: moves, levels, totals, one
    ledger entry for the net value (when ``posting`` is given), reorder events.

    Refuses the whole operation (nothing written) if any line cannot be applied.
    """
    if not lines:
        raise InventoryError("nothing to move: add at least one line", "lines")
    for line in lines:
        line.quantity = _signed_quantity(line.quantity)
        if line.unit_cost is not None:
            line.unit_cost = parse_decimal(line.unit_cost, "unit_cost", COST_PLACES)
    _check_bins(session, lines)
    book = _lock(session, [(ln.product_id, ln.warehouse_id) for ln in lines],
                 {(ln.product_id, ln.warehouse_id) for ln in lines if ln.quantity > 0})
    reservations = _reservations(session, lines)
    moves = []
    meta = {"reason": reason, "note": note, "source_type": source_type, "source_id": source_id,
            "source_ref": source_ref[:60], "transfer_id": transfer_id}
    for line in lines:
        product = book.products[line.product_id]
        level = _level(book, line.product_id, line.warehouse_id) if line.quantity < 0 else None
        if line.quantity > 0:
            if not product.is_active and kind == "receipt":
                raise InventoryError(f"{product.sku} is inactive: reactivate it to receive it",
                                     "product_id")
            level = _level(book, line.product_id, line.warehouse_id)
            cost = line.unit_cost
            if cost is None:
                if level.on_hand == 0:
                    raise InventoryError(f"give a unit cost for {product.sku}: there is no "
                                         "stock to take the average cost from", "unit_cost")
                cost = level.value / level.on_hand
            value = quantize(line.quantity * cost, book.base)
            moves.append(_record(session, book, kind, line, value, **dict(meta)))
            continue
        wanted = -line.quantity
        release = ZERO
        if line.reservation_id is not None:
            reservation = reservations[line.reservation_id]
            release = min(wanted, reservation.open_quantity)
            reservation.fulfilled += release
            if reservation.open_quantity == 0:
                reservation.status = "fulfilled"
        assert level is not None
        if wanted - release > level.on_hand - level.reserved:
            warehouse = book.warehouses[line.warehouse_id]
            raise NotEnoughStock(
                f"not enough stock of {product.sku} in {warehouse.code}: "
                f"{_fmt(level.on_hand - level.reserved + release)} available, "
                f"{_fmt(wanted)} requested", "quantity")
        value = -_outgoing_value(book, level, wanted)
        moves.append(_record(session, book, kind, line, value, release, **dict(meta)))
    session.flush()
    result = MoveResult(moves)
    result.reorder_events = _reorder_events(session, book, moves)
    if posting is not None:
        result.entry_id = _post(session, posting, moves, source_type, source_id)
    return result


def _reservations(session: Session, lines: Sequence[MoveLine]) -> dict[uuid.UUID, Reservation]:
    ids = {ln.reservation_id for ln in lines if ln.reservation_id is not None}
    if not ids:
        return {}
    found = {r.id: r for r in session.scalars(select(Reservation).where(
        Reservation.id.in_(ids)).with_for_update())}
    for line in lines:
        if line.reservation_id is None:
            continue
        res = found.get(line.reservation_id)
        if (res is None or res.status != "active" or res.product_id != line.product_id
                or res.warehouse_id != line.warehouse_id or line.quantity > 0):
            raise InventoryError("the reservation does not match this delivery line",
                                 "reservation_id")
    return found


def _post(session: Session, posting: Posting, moves: Sequence[StockMove],
          source_type: str | None, source_id: uuid.UUID | None) -> uuid.UUID | None:
    net = sum((m.value for m in moves), ZERO)
    if net == 0:
        return None
    try:
        roles = ledger.accounts_for(session, "inventory", posting.counter_role)
        inventory, counter = roles["inventory"].id, roles[posting.counter_role].id
        debit, credit = (inventory, counter) if net > 0 else (counter, inventory)
        amount = abs(net)
        entry = ledger.post_entry(
            session, entry_date=posting.entry_date or moves[0].moved_at.date(),
            description=posting.description,
            lines=[ledger.LineInput(debit, debit=amount), ledger.LineInput(credit, credit=amount)],
            source_type=source_type or "inventory.stock_move",
            source_id=source_id or moves[0].id)
    except ledger.LedgerError as exc:
        raise InventoryError(str(exc), "entry_date" if exc.field == "entry_date" else None
                             ) from None
    return entry.id


def _reorder_events(session: Session, book: _Book, moves: Sequence[StockMove]
                    ) -> list[ReorderEvent]:
    events = []
    last_move = {m.product_id: m for m in moves}
    for product_id, before in book.available_before.items():
        totals, product = book.totals[product_id], book.products[product_id]
        after = totals.on_hand - totals.reserved
        level = product.reorder_level
        if level > 0 and before >= level > after:
            move = last_move.get(product_id)
            events.append(_reorder(session, product, after, move.id if move else None))
    return events


def _reorder(session: Session, product: Product, available: Decimal,
             move_id: uuid.UUID | None) -> ReorderEvent:
    event = ReorderEvent(product_id=product.id, available=available,
                         reorder_level=product.reorder_level, reorder_qty=product.reorder_qty,
                         preferred_supplier_id=product.preferred_supplier_id, move_id=move_id,
                         status="open")
    session.add(event)
    session.flush()
    publish(session, "inventory.reorder_needed", {
        "reorder_event_id": str(event.id), "product_id": str(product.id), "sku": product.sku,
        "available": str(available), "reorder_level": str(product.reorder_level),
        "reorder_qty": str(product.reorder_qty),
        "preferred_supplier_id": (str(product.preferred_supplier_id)
                                  if product.preferred_supplier_id else None)})
    return event


def _fmt(quantity: Decimal) -> str:
    """``5`` rather than ``5.0000`` in messages."""
    return format(quantity.normalize(), "f")


# --- the operations -----------------------------------------------------------------------


def receive(session: Session, lines: Sequence[MoveLine], *, counter_role: str = "grni",
            description: str = "Goods received", entry_date: dt.date | None = None,
            source_type: str | None = None, source_id: uuid.UUID | None = None,
            source_ref: str = "", note: str = "") -> MoveResult:
    """Stock in at the given unit costs; posts inventory against ``counter_role``
    (goods received not invoiced for purchases)."""
    for line in lines:
        line.quantity = _signed_quantity(line.quantity)
        if line.quantity <= 0:
            raise InventoryError("received quantities must be positive", "quantity")
        if line.unit_cost is None:
            raise InventoryError("give the unit cost of received goods", "unit_cost")
    return apply_moves(session, "receipt", lines, posting=Posting(counter_role, description,
                                                                  entry_date),
                       source_type=source_type, source_id=source_id, source_ref=source_ref,
                       note=note)


def deliver(session: Session, lines: Sequence[MoveLine], *, description: str = "Goods delivered",
            entry_date: dt.date | None = None, source_type: str | None = None,
            source_id: uuid.UUID | None = None, source_ref: str = "", note: str = "",
            ) -> MoveResult:
    """Stock out at moving average cost; posts cost of goods sold against inventory.
    Give positive quantities."""
    out = [MoveLine(ln.product_id, ln.warehouse_id, -_quantity(ln.quantity), None, ln.bin_id,
                    ln.reservation_id, ln.note) for ln in lines]
    return apply_moves(session, "delivery", out, posting=Posting("cogs", description,
                                                                 entry_date),
                       source_type=source_type, source_id=source_id, source_ref=source_ref,
                       note=note)


def return_in(session: Session, lines: Sequence[MoveLine], *,
              description: str = "Goods returned by customer", source_type: str | None = None,
              source_id: uuid.UUID | None = None, source_ref: str = "", note: str = "",
              ) -> MoveResult:
    """A customer return: stock back in at the given cost (default: current average),
    reversing cost of goods sold."""
    for line in lines:
        line.quantity = _quantity(line.quantity)
    return apply_moves(session, "return", lines, posting=Posting("cogs", description),
                       source_type=source_type, source_id=source_id, source_ref=source_ref,
                       note=note)


def adjust(session: Session, product_id: uuid.UUID, warehouse_id: uuid.UUID, *, reason: str,
           delta: Decimal | str | None = None, counted: Decimal | str | None = None,
           unit_cost: Decimal | str | None = None, note: str = "") -> MoveResult | None:
    """Correct stock by ``delta``, or to the ``counted`` quantity (a stock count).
    The value difference is posted against the reason's account. None when a count
    matches the books."""
    if reason not in ADJUSTMENT_REASONS:
        raise InventoryError(f"the reason must be one of {', '.join(ADJUSTMENT_REASONS)}",
                             "reason")
    if (delta is None) == (counted is None):
        raise InventoryError("give either the change or the counted quantity", "quantity")
    cost = None if unit_cost in (None, "") else parse_decimal(unit_cost, "unit_cost",
                                                              COST_PLACES)
    if counted is not None:
        counted_qty = parse_decimal(counted, "counted", QTY_PLACES)
        book = _lock(session, [(product_id, warehouse_id)], {(product_id, warehouse_id)})
        level = book.levels[(product_id, warehouse_id)]
        change = counted_qty - level.on_hand
        if change == 0:
            return None
        if counted_qty < level.reserved:
            raise InventoryError(f"{_fmt(level.reserved)} are reserved: release reservations "
                                 "before counting below that", "counted")
    else:
        if isinstance(delta, float):
            raise InventoryError("use an exact decimal, not a floating point number",
                                 "quantity")
        try:
            change = Decimal(str(delta).strip())
        except (InvalidOperation, ValueError):
            raise InventoryError(f"{delta!r} is not a number", "quantity") from None
        if change == 0:
            raise InventoryError("the change cannot be zero", "quantity")
    if reason == "opening" and change < 0:
        raise InventoryError("opening stock can only add stock", "reason")
    label, role = ADJUSTMENT_REASONS[reason]
    return apply_moves(session, "adjustment",
                       [MoveLine(product_id, warehouse_id, change, cost if change > 0 else None)],
                       posting=Posting(role, f"Stock adjustment: {label}"), reason=reason,
                       note=note)


def transfer(session: Session, product_id: uuid.UUID, from_warehouse_id: uuid.UUID,
             to_warehouse_id: uuid.UUID, quantity: Decimal | str, note: str = "") -> MoveResult:
    """Move stock between warehouses at its average cost: two moves, one transfer id,
    no ledger entry (the value stays on the inventory account)."""
    if from_warehouse_id == to_warehouse_id:
        raise InventoryError("choose two different warehouses", "to_warehouse_id")
    qty = _quantity(quantity)
    pairs = [(product_id, from_warehouse_id), (product_id, to_warehouse_id)]
    book = _lock(session, pairs, {(product_id, to_warehouse_id)})
    source = _level(book, product_id, from_warehouse_id)
    product = book.products[product_id]
    if not book.warehouses[to_warehouse_id].is_active:
        raise InventoryError("the destination warehouse is inactive", "to_warehouse_id")
    if qty > source.on_hand - source.reserved:
        raise NotEnoughStock(f"not enough stock of {product.sku} in "
                             f"{book.warehouses[from_warehouse_id].code}: "
                             f"{_fmt(source.on_hand - source.reserved)} available, "
                             f"{_fmt(qty)} requested", "quantity")
    value = _outgoing_value(book, source, qty)
    transfer_id = uuid.uuid4()
    meta = {"transfer_id": transfer_id, "note": note}
    out = _record(session, book, "transfer", MoveLine(product_id, from_warehouse_id, -qty),
                  -value, **dict(meta))
    into = _record(session, book, "transfer", MoveLine(product_id, to_warehouse_id, qty),
                   value, **dict(meta))
    session.flush()
    return MoveResult([out, into])


# --- reservations -------------------------------------------------------------------------


def reserve(session: Session, product_id: uuid.UUID, warehouse_id: uuid.UUID,
            quantity: Decimal | str, *, source_type: str | None = None,
            source_id: uuid.UUID | None = None, source_ref: str = "") -> Reservation:
    """Set stock aside for a document; refused when not enough is available."""
    qty = _quantity(quantity)
    book = _lock(session, [(product_id, warehouse_id)], set())
    level = _level(book, product_id, warehouse_id)
    product = book.products[product_id]
    if qty > level.on_hand - level.reserved:
        raise NotEnoughStock(f"not enough stock of {product.sku} in "
                             f"{book.warehouses[warehouse_id].code}: "
                             f"{_fmt(level.on_hand - level.reserved)} available, "
                             f"{_fmt(qty)} requested", "quantity")
    level.reserved += qty
    book.totals[product_id].reserved += qty
    reservation = Reservation(product_id=product_id, warehouse_id=warehouse_id, quantity=qty,
                              status="active", source_type=source_type, source_id=source_id,
                              source_ref=source_ref[:60])
    session.add(reservation)
    session.flush()
    _reorder_events(session, book, [])
    return reservation


def release(session: Session, reservation: Reservation) -> Reservation:
    """Give reserved stock back to available."""
    if reservation.status != "active":
        raise InventoryError(f"the reservation is {reservation.status}", "reservation_id")
    book = _lock(session, [(reservation.product_id, reservation.warehouse_id)], set())
    open_qty = reservation.open_quantity
    book.levels[(reservation.product_id, reservation.warehouse_id)].reserved -= open_qty
    book.totals[reservation.product_id].reserved -= open_qty
    reservation.status = "released"
    session.flush()
    return reservation


def get_reservation(session: Session, reservation_id: uuid.UUID) -> Reservation | None:
    return session.scalar(select(Reservation).where(Reservation.id == reservation_id))


# --- reorder suggestions ------------------------------------------------------------------


def list_reorder_events(session: Session, status: str = "open", limit: int = 200
                        ) -> list[tuple[ReorderEvent, Product]]:
    rows = session.execute(
        select(ReorderEvent, Product)
        .join(Product, (Product.tenant_id == ReorderEvent.tenant_id)
              & (Product.id == ReorderEvent.product_id))
        .where(ReorderEvent.status == status)
        .order_by(ReorderEvent.created_at.desc()).limit(limit)).all()
    return [(e, p) for e, p in rows]


def set_reorder_status(session: Session, event_id: uuid.UUID, status: str) -> ReorderEvent:
    if status not in ("ordered", "dismissed"):
        raise InventoryError("a suggestion is either ordered or dismissed", "status")
    event = session.scalar(select(ReorderEvent).where(ReorderEvent.id == event_id)
                           .with_for_update())
    if event is None:
        raise InventoryError("no such reorder suggestion", "status")
    if event.status != "open":
        raise InventoryError(f"the suggestion is already {event.status}", "status")
    event.status = status
    session.flush()
    return event


# --- history and valuation ----------------------------------------------------------------


def list_moves(session: Session, *, product_id: uuid.UUID | None = None,
               warehouse_id: uuid.UUID | None = None, kind: str | None = None,
               page: int = 1, per_page: int = 50) -> Page:
    query = select(StockMove)
    if product_id is not None:
        query = query.where(StockMove.product_id == product_id)
    if warehouse_id is not None:
        query = query.where(StockMove.warehouse_id == warehouse_id)
    if kind:
        query = query.where(StockMove.kind == kind)
    items = list(session.scalars(query.order_by(StockMove.moved_at.desc(), StockMove.seq.desc())
                                 .offset((page - 1) * per_page).limit(per_page + 1)))
    # No total count: on millions of moves it would cost more than the page itself.
    more = len(items) > per_page
    return Page(items[:per_page], -1 if more else (page - 1) * per_page + len(items), page,
                per_page)


@dataclass(frozen=True)
class ValuationRow:
    product_id: uuid.UUID
    sku: str
    name: str
    category: str
    quantity: Decimal
    value: Decimal


@dataclass(frozen=True)
class Valuation:
    as_of: dt.date
    currency: str
    rows: list[ValuationRow]

    @property
    def total(self) -> Decimal:
        return sum((r.value for r in self.rows), ZERO)

    def by_category(self) -> list[tuple[str, Decimal, int]]:
        groups: dict[str, list[ValuationRow]] = {}
        for row in self.rows:
            groups.setdefault(row.category or "(none)", []).append(row)
        return sorted(((c, sum((r.value for r in rows), ZERO), len(rows))
                       for c, rows in groups.items()), key=lambda g: -g[1])


VALUATION_SQL = text("""
    SELECT p.id, p.sku, p.name, p.category, sum(m.on_hand_after), sum(m.value_after)
    FROM inventory.stock_levels l
    CROSS JOIN LATERAL (
        SELECT mv.on_hand_after, mv.value_after FROM inventory.stock_moves mv
        WHERE mv.tenant_id = l.tenant_id AND mv.product_id = l.product_id
          AND mv.warehouse_id = l.warehouse_id AND mv.moved_at < :until
        ORDER BY mv.moved_at DESC, mv.seq DESC LIMIT 1) m
    JOIN inventory.products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id
    WHERE l.tenant_id = :tenant AND (CAST(:warehouse AS uuid) IS NULL
                                     OR l.warehouse_id = CAST(:warehouse AS uuid))
    GROUP BY p.id, p.sku, p.name, p.category
    HAVING sum(m.on_hand_after) <> 0
    ORDER BY sum(m.value_after) DESC, p.sku
""")


def valuation(session: Session, as_of: dt.date, warehouse_id: uuid.UUID | None = None
              ) -> Valuation:
    """Quantity and value per product at the end of ``as_of`` (UTC): each level's
    running balance after its last move before then, one index probe per level."""
    until = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), dt.UTC)
    rows = session.execute(VALUATION_SQL, {"until": until, "tenant": require_context().tenant_id,
                                           "warehouse": warehouse_id}).all()
    return Valuation(as_of, ledger.base_currency(session),
                     [ValuationRow(*row) for row in rows])
