"""``/api/v1/products``, ``/warehouses``, ``/stock-levels``, ``/stock-moves`` and the stock
operations (adjustments, counts, transfers, reservations), reorder suggestions and the
valuation.

Stock changes only through the operations here, each one transaction: moves, levels,
totals and the ledger entry commit together or not at all. An operation that would
oversell answers 409 with the quantities, an unknown SKU or product 422 naming the
field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Literal

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field, model_validator

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.openapi import doc
from app.api.resources import dump, list_model, load, out_model, page_model, service_errors
from app.api.validation import Input, parse_body, parse_query
from app.db import db
from app.errors import ApiError

from . import services
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

LevelOut = out_model(StockLevel)
ProductOut = out_model(Product, extra={
    "on_hand": (str, ...), "reserved": (str, ...), "available": (str, ...),
    "low_stock": (bool, ...), "levels": (list[LevelOut], ...)})  # type: ignore[valid-type]
ProductPage = page_model(ProductOut)
WarehouseOut = out_model(Warehouse)
WarehouseList = list_model(WarehouseOut)
BinOut = out_model(Bin)
BinList = list_model(BinOut)
MoveOut = out_model(StockMove)
MovePage = page_model(MoveOut, "StockMovePage")
ReservationOut = out_model(Reservation)
ReorderOut = out_model(ReorderEvent, extra={"sku": (str, ...), "product_name": (str, ...)})
ReorderList = list_model(ReorderOut, "ReorderSuggestionList")


class StockOut(BaseModel):
    product_id: uuid.UUID
    warehouse_id: uuid.UUID
    on_hand: str
    reserved: str
    available: str
    value: str


class OperationOut(BaseModel):
    moves: list[MoveOut]  # type: ignore[valid-type]
    entry_id: uuid.UUID | None
    value: str


class ValuationRowOut(BaseModel):
    product_id: uuid.UUID
    sku: str
    name: str
    category: str
    quantity: str
    value: str


class ValuationOut(BaseModel):
    as_of: dt.date
    currency: str
    total: str
    rows: list[ValuationRowOut]


class ProductQuery(Input):
    q: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    low_stock: bool = False
    include_inactive: bool = False
    sort: Literal["sku", "-sku", "name", "-name"] = "sku"
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class ProductIn(Input):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    name_translations: dict[str, str] = Field(default_factory=dict)
    description: str = Field(default="", max_length=5000)
    uom: str = Field(default="unit", max_length=20)
    category: str = Field(default="", max_length=100)
    sale_price: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    sale_currency: str | None = Field(default=None, min_length=3, max_length=3)
    reorder_level: Decimal = Field(default=Decimal(0), ge=0, max_digits=19, decimal_places=4)
    reorder_qty: Decimal = Field(default=Decimal(0), ge=0, max_digits=19, decimal_places=4)
    preferred_supplier_id: uuid.UUID | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class ProductPatch(Input):
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_translations: dict[str, str] | None = None
    description: str | None = Field(default=None, max_length=5000)
    uom: str | None = Field(default=None, max_length=20)
    category: str | None = Field(default=None, max_length=100)
    sale_price: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    sale_currency: str | None = Field(default=None, min_length=3, max_length=3)
    reorder_level: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    reorder_qty: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    preferred_supplier_id: uuid.UUID | None = None
    custom_fields: dict[str, Any] | None = None
    is_active: bool | None = None


class WarehouseIn(Input):
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(default="", max_length=2000)


class BinIn(Input):
    code: str = Field(min_length=1, max_length=30)


class LevelQuery(Input):
    product_id: uuid.UUID | None = None
    sku: str | None = Field(default=None, max_length=64)
    warehouse_id: uuid.UUID


class MoveQuery(Input):
    product_id: uuid.UUID | None = None
    warehouse_id: uuid.UUID | None = None
    kind: Literal["receipt", "delivery", "transfer", "adjustment", "return"] | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class ProductRef(Input):
    """A product by id or by SKU (exactly one)."""

    product_id: uuid.UUID | None = None
    sku: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one(self) -> ProductRef:
        if (self.product_id is None) == (self.sku is None):
            raise ValueError("give either product_id or sku")
        return self


class AdjustmentIn(ProductRef):
    warehouse_id: uuid.UUID
    reason: Literal[tuple(services.ADJUSTMENT_REASONS)]  # type: ignore[valid-type]
    delta: Decimal | None = Field(default=None, max_digits=19, decimal_places=4,
                                  description="The change (+/-); or give counted")
    counted: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4,
                                    description="The quantity counted (a stock count)")
    unit_cost: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=6)
    note: str = Field(default="", max_length=500)


class TransferIn(ProductRef):
    from_warehouse_id: uuid.UUID
    to_warehouse_id: uuid.UUID
    quantity: Decimal = Field(gt=0, max_digits=19, decimal_places=4)
    note: str = Field(default="", max_length=500)


class ReservationIn(ProductRef):
    warehouse_id: uuid.UUID
    quantity: Decimal = Field(gt=0, max_digits=19, decimal_places=4)
    source_ref: str = Field(default="", max_length=60)


class ValuationQuery(Input):
    as_of: dt.date = Field(default_factory=lambda: dt.date.today())
    warehouse_id: uuid.UUID | None = None


def _s(value: Decimal) -> str:
    text = format(value, "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


def _product_out(product: Product, stock: ProductStock | None = None,
                 levels: list[StockLevel] | None = None) -> dict:
    if stock is None:
        stock = services.product_totals(db.session, product.id)
    if levels is None:
        levels = services.levels_by_product(db.session, [product.id]).get(product.id, [])
    available = stock.on_hand - stock.reserved
    return dump(product, ProductOut, on_hand=stock.on_hand, reserved=stock.reserved,
                available=available, low_stock=available < product.reorder_level,
                levels=[dump(lv, LevelOut) for lv in levels])


def _product_id(ref: ProductRef) -> uuid.UUID:
    product = services.require_product(db.session, product_id=ref.product_id, sku=ref.sku)
    return product.id


def _operation_out(result: services.MoveResult | None) -> dict:
    if result is None:
        return {"moves": [], "entry_id": None, "value": "0"}
    return OperationOut(moves=[dump(m, MoveOut) for m in result.moves],
                        entry_id=result.entry_id, value=_s(result.value)).model_dump(mode="json")


# --- products ---------------------------------------------------------------------------


@bp.get("/products")
@api_auth("inventory:read")
@doc(summary="Products with stock totals and levels per warehouse; low_stock=true lists "
             "those whose available stock is below their reorder level",
     query=ProductQuery, response=ProductPage, tags=["inventory"])
def inventory_list_products() -> ResponseReturnValue:
    query = parse_query(ProductQuery)
    page = services.list_products(db.session, **query.model_dump())
    levels = services.levels_by_product(db.session, [r.product.id for r in page.items])
    return jsonify(items=[_product_out(r.product, r.stock, levels.get(r.product.id, []))
                          for r in page.items],
                   total=page.total, page=page.page, per_page=page.per_page)


@bp.post("/products")
@api_auth("inventory:write")
@idempotent
@doc(summary="Create a product (SKU unique per tenant)", body=ProductIn, response=ProductOut,
     status=201, tags=["inventory"])
def inventory_create_product() -> ResponseReturnValue:
    body = parse_body(ProductIn)
    with service_errors():
        product = services.create_product(db.session, body.model_dump())
    return jsonify(_product_out(product)), 201


@bp.get("/products/<product_id>")
@api_auth("inventory:read")
@doc(summary="A product with its stock per warehouse", response=ProductOut,
     tags=["inventory"])
def inventory_get_product(product_id: str) -> ResponseReturnValue:
    return jsonify(_product_out(load(services.get_product, product_id, "product")))


@bp.patch("/products/<product_id>")
@api_auth("inventory:write")
@doc(summary="Change a product", body=ProductPatch, response=ProductOut, tags=["inventory"])
def inventory_update_product(product_id: str) -> ResponseReturnValue:
    product = load(services.get_product, product_id, "product")
    body = parse_body(ProductPatch)
    with service_errors():
        services.update_product(db.session, product, body.model_dump(exclude_unset=True))
    return jsonify(_product_out(product))


@bp.delete("/products/<product_id>")
@api_auth("inventory:write")
@doc(summary="Deactivate a product (soft delete: history and stock stay)", status=204,
     tags=["inventory"])
def inventory_delete_product(product_id: str) -> ResponseReturnValue:
    product = load(services.get_product, product_id, "product")
    with service_errors():
        services.set_product_active(db.session, product, False)
    return "", 204


# --- warehouses, levels, moves ------------------------------------------------------------


@bp.get("/warehouses")
@api_auth("inventory:read")
@doc(summary="Warehouses", response=WarehouseList, tags=["inventory"])
def inventory_list_warehouses() -> ResponseReturnValue:
    return jsonify(items=[dump(w, WarehouseOut) for w in services.list_warehouses(db.session)])


@bp.post("/warehouses")
@api_auth("inventory:write")
@idempotent
@doc(summary="Add a warehouse", body=WarehouseIn, response=WarehouseOut, status=201,
     tags=["inventory"])
def inventory_create_warehouse() -> ResponseReturnValue:
    body = parse_body(WarehouseIn)
    with service_errors():
        warehouse = services.save_warehouse(db.session, body.model_dump())
    return jsonify(dump(warehouse, WarehouseOut)), 201


@bp.get("/warehouses/<warehouse_id>/bins")
@api_auth("inventory:read")
@doc(summary="Bins of a warehouse", response=BinList, tags=["inventory"])
def inventory_list_bins(warehouse_id: str) -> ResponseReturnValue:
    warehouse = load(services.get_warehouse, warehouse_id, "warehouse")
    return jsonify(items=[dump(b, BinOut) for b in services.list_bins(db.session,
                                                                      warehouse.id)])


@bp.post("/warehouses/<warehouse_id>/bins")
@api_auth("inventory:write")
@idempotent
@doc(summary="Add a bin (storage location) to a warehouse", body=BinIn, response=BinOut,
     status=201, tags=["inventory"])
def inventory_add_bin(warehouse_id: str) -> ResponseReturnValue:
    warehouse = load(services.get_warehouse, warehouse_id, "warehouse")
    body = parse_body(BinIn)
    with service_errors():
        found = services.add_bin(db.session, warehouse, body.code)
    return jsonify(dump(found, BinOut)), 201


@bp.get("/stock-levels")
@api_auth("inventory:read")
@doc(summary="Stock of one product (by id or sku) in one warehouse", query=LevelQuery,
     response=StockOut, errors=(404,), tags=["inventory"])
def inventory_stock_level() -> ResponseReturnValue:
    query = parse_query(LevelQuery)
    if (query.product_id is None) == (query.sku is None):
        raise ApiError(422, "give either product_id or sku", "invalid",
                       {"product_id": "give either product_id or sku"})
    product = (services.get_product(db.session, query.product_id) if query.product_id
               else services.product_by_sku(db.session, query.sku or ""))
    if product is None:
        raise ApiError(404, "no such product")
    if services.get_warehouse(db.session, query.warehouse_id) is None:
        raise ApiError(404, "no such warehouse")
    level = services.stock_level(db.session, product.id, query.warehouse_id)
    zero = Decimal(0)
    on_hand, reserved = (level.on_hand, level.reserved) if level else (zero, zero)
    return jsonify(StockOut(product_id=product.id, warehouse_id=query.warehouse_id,
                            on_hand=_s(on_hand), reserved=_s(reserved),
                            available=_s(on_hand - reserved),
                            value=_s(level.value if level else zero)).model_dump(mode="json"))


@bp.get("/stock-moves")
@api_auth("inventory:read")
@doc(summary="Stock move history, newest first (total is -1 while more pages follow: "
             "counting millions of moves would cost more than the page)",
     query=MoveQuery, response=MovePage, tags=["inventory"])
def inventory_list_moves() -> ResponseReturnValue:
    query = parse_query(MoveQuery)
    page = services.list_moves(db.session, **query.model_dump())
    return jsonify(items=[dump(m, MoveOut) for m in page.items], total=page.total,
                   page=page.page, per_page=page.per_page)


# --- operations ---------------------------------------------------------------------------


@bp.post("/stock-adjustments")
@api_auth("inventory:write")
@idempotent
@doc(summary="Adjust stock by a change, or to a counted quantity, with a reason code; "
             "the value difference is posted to the ledger",
     body=AdjustmentIn, response=OperationOut, status=201, tags=["inventory"])
def inventory_adjust() -> ResponseReturnValue:
    body = parse_body(AdjustmentIn)
    with service_errors(services.NotEnoughStock):
        result = services.adjust(db.session, _product_id(body), body.warehouse_id,
                                 reason=body.reason, delta=body.delta, counted=body.counted,
                                 unit_cost=body.unit_cost, note=body.note)
    return jsonify(_operation_out(result)), 201


@bp.post("/stock-transfers")
@api_auth("inventory:write")
@idempotent
@doc(summary="Move stock between warehouses at its average cost", body=TransferIn,
     response=OperationOut, status=201, tags=["inventory"])
def inventory_transfer() -> ResponseReturnValue:
    body = parse_body(TransferIn)
    with service_errors(services.NotEnoughStock):
        result = services.transfer(db.session, _product_id(body), body.from_warehouse_id,
                                   body.to_warehouse_id, body.quantity, note=body.note)
    return jsonify(_operation_out(result)), 201


@bp.post("/reservations")
@api_auth("inventory:write")
@idempotent
@doc(summary="Set stock aside (409 when not enough is available)", body=ReservationIn,
     response=ReservationOut, status=201, tags=["inventory"])
def inventory_reserve() -> ResponseReturnValue:
    body = parse_body(ReservationIn)
    with service_errors(services.NotEnoughStock):
        reservation = services.reserve(db.session, _product_id(body), body.warehouse_id,
                                       body.quantity, source_type="api",
                                       source_ref=body.source_ref)
    return jsonify(dump(reservation, ReservationOut)), 201


@bp.delete("/reservations/<reservation_id>")
@api_auth("inventory:write")
@doc(summary="Release a reservation", status=204, errors=(422,), tags=["inventory"])
def inventory_release(reservation_id: str) -> ResponseReturnValue:
    reservation = load(services.get_reservation, reservation_id, "reservation")
    with service_errors():
        services.release(db.session, reservation)
    return "", 204


@bp.get("/reorder-suggestions")
@api_auth("inventory:read")
@doc(summary="Open reorder suggestions (available stock fell below the reorder level)",
     response=ReorderList, tags=["inventory"])
def inventory_reorder_suggestions() -> ResponseReturnValue:
    rows = services.list_reorder_events(db.session)
    return jsonify(items=[dump(e, ReorderOut, sku=p.sku, product_name=p.name)
                          for e, p in rows])


@bp.get("/stock-valuation")
@api_auth("inventory:read")
@doc(summary="Quantity and value per product at the end of a date (base currency)",
     query=ValuationQuery, response=ValuationOut, tags=["inventory"])
def inventory_valuation() -> ResponseReturnValue:
    query = parse_query(ValuationQuery)
    if query.warehouse_id and services.get_warehouse(db.session, query.warehouse_id) is None:
        raise ApiError(422, "no such warehouse", "invalid", {"warehouse_id": "no such warehouse"})
    result = services.valuation(db.session, query.as_of, query.warehouse_id)
    return jsonify(ValuationOut(
        as_of=result.as_of, currency=result.currency, total=_s(result.total),
        rows=[ValuationRowOut(product_id=r.product_id, sku=r.sku, name=r.name,
                              category=r.category, quantity=_s(r.quantity), value=_s(r.value))
              for r in result.rows]).model_dump(mode="json"))

