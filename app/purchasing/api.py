"""``/api/v1/suppliers``, ``/purchase-orders`` (with approve, ship, cancel, receive),
``/receipts`` and ``/supplier-bills``.

The workflow is the portal's: a pending order can be edited; approving needs the
``purchasing:approve`` permission; receiving (partial allowed) raises stock at the
receipt date's rate and posts inventory against goods-received-not-invoiced; a bill is
matched to received lines. A step the order's status does not allow answers 409.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, EmailStr, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.openapi import doc
from app.api.resources import dump, list_model, load, out_model, page_model, service_errors
from app.api.validation import Input, parse_body, parse_query
from app.db import db

from . import services
from .models import Bill, BillLine, PurchaseOrder, PurchaseOrderLine, Receipt, ReceiptLine, Supplier

SupplierOut = out_model(Supplier)
SupplierList = list_model(SupplierOut)
POLineOut = out_model(PurchaseOrderLine)
POOut = out_model(PurchaseOrder, name="PurchaseOrderOut", extra={
    "lines": (list[POLineOut], ...), "total": (str, ...),  # type: ignore[valid-type]
    "supplier_name": (str, ...)})
POSummary = out_model(PurchaseOrder, name="PurchaseOrderSummary",
                      extra={"supplier_name": (str, ...)})
POPage = page_model(POSummary, "PurchaseOrderPage")
ReceiptLineOut = out_model(ReceiptLine)
ReceiptOut = out_model(Receipt, extra={"lines": (list[ReceiptLineOut], ...)})  # type: ignore[valid-type]
ReceiptList = list_model(ReceiptOut)
BillLineOut = out_model(BillLine)
BillOut = out_model(Bill, name="SupplierBillOut", extra={
    "lines": (list[BillLineOut], ...)})  # type: ignore[valid-type]
BillSummary = out_model(Bill, name="SupplierBillSummary")
BillList = list_model(BillSummary, "SupplierBillList")
Status = Literal["pending", "approved", "shipped", "partially_received", "received",
                 "cancelled"]


class SupplierIn(Input):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str = Field(default="", max_length=50)
    address: str = Field(default="", max_length=2000)
    tax_id: str = Field(default="", max_length=50)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    payment_terms_days: int = Field(default=30, ge=0, le=365)


class SupplierPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=50)
    address: str | None = Field(default=None, max_length=2000)
    tax_id: str | None = Field(default=None, max_length=50)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    payment_terms_days: int | None = Field(default=None, ge=0, le=365)
    is_active: bool | None = None


class POLineIn(Input):
    product_id: uuid.UUID
    quantity: Decimal = Field(gt=0, max_digits=19, decimal_places=4)
    unit_cost: Decimal = Field(ge=0, max_digits=19, decimal_places=6)


class POIn(Input):
    supplier_id: uuid.UUID
    warehouse_id: uuid.UUID
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    order_date: dt.date | None = None
    expected_date: dt.date | None = None
    notes: str = Field(default="", max_length=5000)
    lines: list[POLineIn] = Field(min_length=1, max_length=500)


class POPatch(Input):
    supplier_id: uuid.UUID
    warehouse_id: uuid.UUID
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    expected_date: dt.date | None = None
    notes: str = Field(default="", max_length=5000)
    lines: list[POLineIn] = Field(min_length=1, max_length=500)


class POQuery(Input):
    status: Status | None = None
    supplier_id: uuid.UUID | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class ReceiveLineIn(Input):
    po_line_id: uuid.UUID
    quantity: Decimal = Field(gt=0, max_digits=19, decimal_places=4)


class ReceiveIn(Input):
    lines: list[ReceiveLineIn] = Field(min_length=1, max_length=500)
    received_on: dt.date | None = None
    warehouse_id: uuid.UUID | None = None
    note: str = Field(default="", max_length=500)


class BillLineIn(Input):
    receipt_line_id: uuid.UUID
    quantity: Decimal = Field(gt=0, max_digits=19, decimal_places=4)
    unit_cost: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=6)


class BillIn(Input):
    supplier_id: uuid.UUID
    supplier_ref: str = Field(min_length=1, max_length=60)
    bill_date: dt.date
    due_date: dt.date | None = None
    tax: Decimal = Field(default=Decimal(0), ge=0, max_digits=19, decimal_places=4)
    lines: list[BillLineIn] = Field(min_length=1, max_length=500)


class OpenLineOut(BaseModel):
    receipt_line_id: uuid.UUID
    receipt_number: str
    po_number: str
    product_id: uuid.UUID
    quantity_open: str
    unit_cost: str
    currency: str


class OpenLineList(BaseModel):
    items: list[OpenLineOut]


def _s(value: Decimal) -> str:
    text = format(value, "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


def _po_out(po: PurchaseOrder) -> dict:
    lines = services.po_lines(db.session, po.id)
    supplier = services.get_supplier(db.session, po.supplier_id)
    return dump(po, POOut, lines=[dump(ln, POLineOut) for ln in lines],
                total=_s(services.po_total(po, lines)),
                supplier_name=supplier.name if supplier else "")


def _receipt_out(receipt: Receipt) -> dict:
    return dump(receipt, ReceiptOut, lines=[
        dump(ln, ReceiptLineOut) for ln in services.receipt_lines(db.session, receipt.id)])


def _lines(body: POIn | POPatch) -> list[services.POLineInput]:
    return [services.POLineInput(ln.product_id, ln.quantity, ln.unit_cost) for ln in body.lines]


# --- suppliers ---------------------------------------------------------------------------


@bp.get("/suppliers")
@api_auth("purchasing:read")
@doc(summary="Suppliers", response=SupplierList, tags=["purchasing"])
def purchasing_list_suppliers() -> ResponseReturnValue:
    return jsonify(items=[dump(s, SupplierOut) for s in services.list_suppliers(db.session)])


@bp.post("/suppliers")
@api_auth("purchasing:write")
@idempotent
@doc(summary="Add a supplier (names are unique per tenant)", body=SupplierIn,
     response=SupplierOut, status=201, tags=["purchasing"])
def purchasing_create_supplier() -> ResponseReturnValue:
    body = parse_body(SupplierIn)
    with service_errors():
        supplier = services.create_supplier(db.session, body.model_dump(exclude_none=True))
    return jsonify(dump(supplier, SupplierOut)), 201


@bp.get("/suppliers/<supplier_id>")
@api_auth("purchasing:read")
@doc(summary="A supplier", response=SupplierOut, tags=["purchasing"])
def purchasing_get_supplier(supplier_id: str) -> ResponseReturnValue:
    return jsonify(dump(load(services.get_supplier, supplier_id, "supplier"), SupplierOut))


@bp.patch("/suppliers/<supplier_id>")
@api_auth("purchasing:write")
@doc(summary="Change a supplier", body=SupplierPatch, response=SupplierOut,
     tags=["purchasing"])
def purchasing_update_supplier(supplier_id: str) -> ResponseReturnValue:
    supplier = load(services.get_supplier, supplier_id, "supplier")
    body = parse_body(SupplierPatch)
    with service_errors():
        services.update_supplier(db.session, supplier, body.model_dump(exclude_unset=True))
    return jsonify(dump(supplier, SupplierOut))


@bp.get("/suppliers/<supplier_id>/open-receipt-lines")
@api_auth("purchasing:read")
@doc(summary="Received lines not yet (fully) billed: what a supplier bill can match",
     response=OpenLineList, tags=["purchasing"])
def purchasing_open_lines(supplier_id: str) -> ResponseReturnValue:
    supplier = load(services.get_supplier, supplier_id, "supplier")
    rows = services.open_receipt_lines(db.session, supplier.id)
    return jsonify(items=[OpenLineOut(
        receipt_line_id=r.line.id, receipt_number=r.receipt.number, po_number=r.po.number,
        product_id=r.line.product_id, quantity_open=_s(r.line.quantity - r.line.quantity_billed),
        unit_cost=_s(r.line.unit_cost), currency=r.po.currency).model_dump(mode="json")
        for r in rows])


# --- purchase orders ---------------------------------------------------------------------


@bp.get("/purchase-orders")
@api_auth("purchasing:read")
@doc(summary="Purchase orders, newest first", query=POQuery, response=POPage,
     tags=["purchasing"])
def purchasing_list_pos() -> ResponseReturnValue:
    query = parse_query(POQuery)
    page = services.list_pos(db.session, **query.model_dump())
    return jsonify(items=[dump(po, POSummary, supplier_name=s.name) for po, s in page.items],
                   total=page.total, page=page.page, per_page=page.per_page)


@bp.post("/purchase-orders")
@api_auth("purchasing:write")
@idempotent
@doc(summary="Create a pending purchase order (gapless number per tenant)", body=POIn,
     response=POOut, status=201, tags=["purchasing"])
def purchasing_create_po() -> ResponseReturnValue:
    body = parse_body(POIn)
    with service_errors():
        po = services.create_po(db.session, supplier_id=body.supplier_id,
                                warehouse_id=body.warehouse_id, lines=_lines(body),
                                currency=body.currency, order_date=body.order_date,
                                expected_date=body.expected_date, notes=body.notes)
    return jsonify(_po_out(po)), 201


@bp.get("/purchase-orders/<po_id>")
@api_auth("purchasing:read")
@doc(summary="A purchase order with its lines", response=POOut, tags=["purchasing"])
def purchasing_get_po(po_id: str) -> ResponseReturnValue:
    return jsonify(_po_out(load(services.get_po, po_id, "purchase order")))


@bp.put("/purchase-orders/<po_id>")
@api_auth("purchasing:write")
@doc(summary="Replace a pending order's terms and lines (approved orders are frozen)",
     body=POPatch, response=POOut, errors=(409,), tags=["purchasing"])
def purchasing_update_po(po_id: str) -> ResponseReturnValue:
    po = load(services.get_po, po_id, "purchase order")
    body = parse_body(POPatch)
    with service_errors():
        services.update_po(db.session, po, supplier_id=body.supplier_id,
                           warehouse_id=body.warehouse_id, lines=_lines(body),
                           currency=body.currency, expected_date=body.expected_date,
                           notes=body.notes)
    return jsonify(_po_out(po))


def _step(po_id: str, step: object) -> ResponseReturnValue:
    po = load(services.get_po, po_id, "purchase order")
    with service_errors(services.PurchasingError):
        step(db.session, po)  # type: ignore[operator]
    return jsonify(_po_out(po))


@bp.post("/purchase-orders/<po_id>/approve")
@api_auth("purchasing:approve")
@idempotent
@doc(summary="Approve a pending order (needs purchasing:approve)", response=POOut,
     tags=["purchasing"])
def purchasing_approve_po(po_id: str) -> ResponseReturnValue:
    return _step(po_id, services.approve)


@bp.post("/purchase-orders/<po_id>/ship")
@api_auth("purchasing:write")
@idempotent
@doc(summary="Mark an approved order shipped by the supplier", response=POOut,
     tags=["purchasing"])
def purchasing_ship_po(po_id: str) -> ResponseReturnValue:
    return _step(po_id, services.mark_shipped)


@bp.post("/purchase-orders/<po_id>/cancel")
@api_auth("purchasing:write")
@idempotent
@doc(summary="Cancel an order before goods arrive", response=POOut, tags=["purchasing"])
def purchasing_cancel_po(po_id: str) -> ResponseReturnValue:
    return _step(po_id, services.cancel)


@bp.post("/purchase-orders/<po_id>/receipts")
@api_auth("purchasing:write")
@idempotent
@doc(summary="Receive some or all open quantities (partial receipts allowed)",
     body=ReceiveIn, response=ReceiptOut, status=201, tags=["purchasing"])
def purchasing_receive(po_id: str) -> ResponseReturnValue:
    po = load(services.get_po, po_id, "purchase order")
    body = parse_body(ReceiveIn)
    quantities: dict[uuid.UUID, Decimal] = {}
    for line in body.lines:
        quantities[line.po_line_id] = quantities.get(line.po_line_id, Decimal(0)) + line.quantity
    with service_errors():
        receipt = services.receive(db.session, po, quantities, received_on=body.received_on,
                                   warehouse_id=body.warehouse_id, note=body.note)
    return jsonify(_receipt_out(receipt)), 201


@bp.get("/purchase-orders/<po_id>/receipts")
@api_auth("purchasing:read")
@doc(summary="The receipts of an order", response=ReceiptList, tags=["purchasing"])
def purchasing_list_receipts(po_id: str) -> ResponseReturnValue:
    po = load(services.get_po, po_id, "purchase order")
    return jsonify(items=[_receipt_out(r) for r in services.list_receipts(db.session, po.id)])


# --- supplier bills ----------------------------------------------------------------------


@bp.get("/supplier-bills")
@api_auth("purchasing:read")
@doc(summary="Supplier bills, newest first", response=BillList, tags=["purchasing"])
def purchasing_list_bills() -> ResponseReturnValue:
    return jsonify(items=[dump(b, BillSummary) for b, _ in services.list_bills(db.session)])


@bp.post("/supplier-bills")
@api_auth("purchasing:write")
@idempotent
@doc(summary="Record and post a supplier bill matched to received lines", body=BillIn,
     response=BillOut, status=201, tags=["purchasing"])
def purchasing_create_bill() -> ResponseReturnValue:
    body = parse_body(BillIn)
    lines = [services.BillLineInput(ln.receipt_line_id, ln.quantity, ln.unit_cost)
             for ln in body.lines]
    with service_errors():
        bill = services.create_bill(db.session, supplier_id=body.supplier_id,
                                    supplier_ref=body.supplier_ref, bill_date=body.bill_date,
                                    lines=lines, tax=body.tax, due_date=body.due_date)
    return jsonify(dump(bill, BillOut, lines=[
        dump(ln, BillLineOut) for ln in services.bill_lines(db.session, bill.id)])), 201


@bp.get("/supplier-bills/<bill_id>")
@api_auth("purchasing:read")
@doc(summary="A supplier bill with its lines", response=BillOut, tags=["purchasing"])
def purchasing_get_bill(bill_id: str) -> ResponseReturnValue:
    bill = load(services.get_bill, bill_id, "supplier bill")
    return jsonify(dump(bill, BillOut, lines=[
        dump(ln, BillLineOut) for ln in services.bill_lines(db.session, bill.id)]))
