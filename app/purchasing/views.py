"""Portal: suppliers, purchase orders (list by status, form, approve / ship / cancel),
the receiving screen (partial receipts), supplier bills matched to receipts, and a
draft order from a reorder suggestion."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.db import db
from app.inventory import services as inventory
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import services
from .models import PO_STATUSES

bp = tenant_blueprint("purchasing", __name__, "/purchasing", template_folder="templates")
NAV.append(("Purchase orders", "purchasing.orders", "purchasing:read", 40))
NAV.append(("Suppliers", "purchasing.suppliers", "purchasing:read", 41))
NAV.append(("Supplier bills", "purchasing.bills", "purchasing:read", 42))
FORM_LINES = 8
SUPPLIER_KEYS = ("name", "email", "phone", "currency", "payment_terms_days", "tax_id",
                 "address")


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw or "")
    except ValueError:
        return None


def _po_or_404(po_id: str) -> Any:
    po = services.get_po(db.session, _uuid(po_id) or uuid.UUID(int=0))
    if po is None:
        abort(404)
    return po


# --- suppliers --------------------------------------------------------------------------


@bp.route("/suppliers", methods=["GET", "POST"])
@requires("purchasing:read")
def suppliers() -> ResponseReturnValue:
    values = dict.fromkeys(SUPPLIER_KEYS, "") | {"currency": g.tenant.base_currency,
                                               "payment_terms_days": "30"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not g.ctx.can("purchasing:write"):
            abort(403)
        values = {k: (request.form.get(k) or "").strip() for k in SUPPLIER_KEYS}
        try:
            supplier = services.create_supplier(db.session, dict(values))
            db.session.commit()
        except services.PurchasingError as exc:
            db.session.rollback()
            errors[exc.field or "name"] = str(exc)
        else:
            flash(f"Supplier {supplier.name} added.", "success")
            return redirect(url_for("purchasing.suppliers"))
    return render_template("purchasing/suppliers.html",
                           suppliers=services.list_suppliers(db.session), values=values,
                           errors=errors), (422 if errors else 200)


# --- purchase orders ---------------------------------------------------------------------


@bp.get("/orders")
@requires("purchasing:read")
def orders() -> ResponseReturnValue:
    status = request.args.get("status") if request.args.get("status") in PO_STATUSES else None
    try:
        page_no = max(1, min(100_000, int(request.args.get("page", "1"))))
    except ValueError:
        page_no = 1
    page = services.list_pos(db.session, status=status, page=page_no, per_page=25)
    return render_template("purchasing/orders.html", page=page, status=status,
                           statuses=PO_STATUSES)


def _order_form(po: Any = None) -> ResponseReturnValue:
    rows = [{"product_id": "", "quantity": "", "unit_cost": ""} for _ in range(FORM_LINES)]
    header = {"supplier_id": "", "warehouse_id": "", "expected_date": "", "notes": ""}
    if po is not None:
        header = {"supplier_id": str(po.supplier_id), "warehouse_id": str(po.warehouse_id),
                  "expected_date": str(po.expected_date or ""), "notes": po.notes}
        for i, ln in enumerate(services.po_lines(db.session, po.id)[:FORM_LINES]):
            rows[i] = {"product_id": str(ln.product_id), "quantity": str(ln.quantity.normalize()),
                       "unit_cost": str(ln.unit_cost.normalize())}
    error = None
    if request.method == "POST":
        header = {k: (request.form.get(k) or "").strip() for k in header}
        rows = [{k: (request.form.get(f"{k}-{i}") or "").strip()
                 for k in ("product_id", "quantity", "unit_cost")} for i in range(FORM_LINES)]
        lines = [services.POLineInput(_uuid(r["product_id"]) or uuid.UUID(int=0), r["quantity"],
                                      r["unit_cost"]) for r in rows if r["product_id"]]
        supplier, warehouse = _uuid(header["supplier_id"]), _uuid(header["warehouse_id"])
        try:
            expected = (dt.date.fromisoformat(header["expected_date"])
                        if header["expected_date"] else None)
        except ValueError:
            expected, error = None, "the expected date is a date, like 2026-12-01"
        if error is None and (supplier is None or warehouse is None):
            error = "choose a supplier and a warehouse"
        if error is None:
            try:
                if po is None:
                    po = services.create_po(db.session, supplier_id=supplier,
                                            warehouse_id=warehouse, lines=lines,
                                            expected_date=expected, notes=header["notes"])
                else:
                    services.update_po(db.session, po, supplier_id=supplier,
                                       warehouse_id=warehouse, lines=lines,
                                       expected_date=expected, notes=header["notes"])
                db.session.commit()
            except services.PurchasingError as exc:
                db.session.rollback()
                error = str(exc)
            else:
                flash(f"Purchase order {po.number} saved.", "success")
                return redirect(url_for("purchasing.order", po_id=po.id))
    return render_template(
        "purchasing/order_form.html", po=po, header=header, rows=rows, error=error,
        suppliers=services.list_suppliers(db.session, active_only=True),
        warehouses=inventory.list_warehouses(db.session, active_only=True),
        products=inventory.list_products(db.session, per_page=500).items), (
        422 if error else 200)


@bp.route("/orders/new", methods=["GET", "POST"])
@requires("purchasing:write")
def new_order() -> ResponseReturnValue:
    return _order_form()


@bp.route("/orders/<po_id>/edit", methods=["GET", "POST"])
@requires("purchasing:write")
def edit_order(po_id: str) -> ResponseReturnValue:
    return _order_form(_po_or_404(po_id))


@bp.get("/orders/<po_id>")
@requires("purchasing:read")
def order(po_id: str) -> ResponseReturnValue:
    po = _po_or_404(po_id)
    return _order_page(po, {}, {})


def _order_page(po: Any, typed: dict[str, str], errors: dict[str, str]) -> ResponseReturnValue:
    lines = services.po_lines(db.session, po.id)
    products = {ln.product_id: inventory.get_product(db.session, ln.product_id) for ln in lines}
    receipts = services.list_receipts(db.session, po.id)
    return render_template(
        "purchasing/order.html", po=po, lines=lines, products=products, receipts=receipts,
        supplier=services.get_supplier(db.session, po.supplier_id),
        total=services.po_total(po, lines), typed=typed, errors=errors,
        receivable=po.status in services.RECEIVABLE,
        today=dt.date.today()), (422 if errors else 200)


@bp.post("/orders/<po_id>/<action>")
@requires("purchasing:write")
def order_action(po_id: str, action: str) -> ResponseReturnValue:
    po = _po_or_404(po_id)
    steps = {"approve": services.approve, "ship": services.mark_shipped,
             "cancel": services.cancel}
    if action not in steps:
        abort(404)
    if action == "approve" and not g.ctx.can("purchasing:approve"):
        abort(403)
    try:
        steps[action](db.session, po)
        db.session.commit()
        flash(f"{po.number}: {po.status_label.lower()}.", "success")
    except services.PurchasingError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("purchasing.order", po_id=po.id))


@bp.post("/orders/<po_id>/receive")
@requires("purchasing:write")
def receive(po_id: str) -> ResponseReturnValue:
    """The receiving screen's submit: per line the quantity arriving now."""
    po = _po_or_404(po_id)
    typed = {k: (v or "").strip() for k, v in request.form.items() if k.startswith("qty-")}
    quantities: dict[uuid.UUID, Decimal] = {}
    errors: dict[str, str] = {}
    for key, raw in typed.items():
        if not raw:
            continue
        try:
            quantity = Decimal(raw)
        except InvalidOperation:
            errors[key] = "a quantity is a number, like 12"
            continue
        line_id = _uuid(key.removeprefix("qty-"))
        if line_id is not None and quantity:
            quantities[line_id] = quantity
    try:
        received_on = dt.date.fromisoformat(request.form.get("received_on") or "")
    except ValueError:
        received_on = dt.date.today()
    if not errors and not quantities:
        errors["form"] = "enter the quantity that arrived on at least one line"
    if not errors:
        try:
            receipt = services.receive(db.session, po, quantities, received_on=received_on,
                                       note=(request.form.get("note") or "")[:500])
            db.session.commit()
        except services.PurchasingError as exc:
            db.session.rollback()
            errors["form"] = str(exc)
        else:
            flash(f"Receipt {receipt.number} recorded: stock raised.", "success")
            return redirect(url_for("purchasing.order", po_id=po.id))
    return _order_page(po, typed, errors)


@bp.post("/reorder/<event_id>")
@requires("purchasing:write")
def po_from_reorder(event_id: str) -> ResponseReturnValue:
    try:
        po = services.po_from_reorder(db.session, _uuid(event_id) or uuid.UUID(int=0))
        db.session.commit()
    except services.PurchasingError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("inventory.reorder"))
    flash(f"Draft purchase order {po.number} created from the suggestion.", "success")
    return redirect(url_for("purchasing.order", po_id=po.id))


# --- supplier bills ----------------------------------------------------------------------


@bp.get("/bills")
@requires("purchasing:read")
def bills() -> ResponseReturnValue:
    return render_template("purchasing/bills.html", bills=services.list_bills(db.session),
                           suppliers=services.list_suppliers(db.session))


@bp.route("/bills/new/<supplier_id>", methods=["GET", "POST"])
@requires("purchasing:write")
def new_bill(supplier_id: str) -> ResponseReturnValue:
    supplier = services.get_supplier(db.session, _uuid(supplier_id) or uuid.UUID(int=0))
    if supplier is None:
        abort(404)
    open_lines = services.open_receipt_lines(db.session, supplier.id)
    form = {"supplier_ref": "", "bill_date": dt.date.today().isoformat(), "tax": "0"}
    typed: dict[str, str] = {}
    error = None
    if request.method == "POST":
        form = {k: (request.form.get(k) or "").strip() for k in form}
        typed = {k: (v or "").strip() for k, v in request.form.items() if k.startswith("qty-")}
        try:
            bill_date = dt.date.fromisoformat(form["bill_date"])
            lines = [services.BillLineInput(uuid.UUID(k.removeprefix("qty-")), Decimal(v))
                     for k, v in typed.items() if v]
        except (ValueError, InvalidOperation):
            error = "dates look like 2026-11-22 and quantities like 12"
        else:
            try:
                bill = services.create_bill(db.session, supplier_id=supplier.id,
                                            supplier_ref=form["supplier_ref"],
                                            bill_date=bill_date, lines=lines,
                                            tax=form["tax"] or "0")
                db.session.commit()
            except services.PurchasingError as exc:
                db.session.rollback()
                error = str(exc)
            else:
                flash(f"Bill {bill.number} posted to payables.", "success")
                return redirect(url_for("purchasing.bills"))
    return render_template("purchasing/bill_form.html", supplier=supplier,
                           open_lines=open_lines, form=form, typed=typed, error=error), (
        422 if error else 200)
