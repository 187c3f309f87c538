"""Portal: products with stock per warehouse (low-stock filter), product pages with
stock adjustments, counts and transfers, stock move history, warehouses and reorder
suggestions."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import services

bp = tenant_blueprint("inventory", __name__, "/inventory", template_folder="templates")
NAV.append(("Products", "inventory.products", "inventory:read", 30))
NAV.append(("Stock moves", "inventory.moves", "inventory:read", 31))
NAV.append(("Reorder", "inventory.reorder", "inventory:read", 32))
PER_PAGE = 25
PRODUCT_KEYS = ("sku", "name", "category", "uom", "reorder_level", "reorder_qty",
                "sale_price", "sale_currency", "description")


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw or "")
    except ValueError:
        return None


def _page() -> int:
    try:
        return max(1, min(100_000, int(request.args.get("page", "1"))))
    except ValueError:
        return 1


def _product_or_404(product_id: str) -> Any:
    found = services.get_product(db.session, _uuid(product_id) or uuid.UUID(int=0))
    if found is None:
        abort(404)
    return found


@bp.get("/products")
@requires("inventory:read")
def products() -> ResponseReturnValue:
    args = {"q": (request.args.get("q") or "").strip()[:200] or None,
            "category": request.args.get("category") or None,
            "low_stock": request.args.get("low") == "1",
            "sort": request.args.get("sort") if request.args.get("sort") in
            services.PRODUCT_SORTS else "sku", "page": _page()}
    page = services.list_products(db.session, per_page=PER_PAGE, **args)
    levels = services.levels_by_product(db.session, [r.product.id for r in page.items])
    warehouses = services.list_warehouses(db.session, active_only=True)
    return render_template("inventory/products.html", page=page, args=args, levels=levels,
                           warehouses=warehouses, categories=services.categories(db.session))


def _product_form(product: Any = None) -> ResponseReturnValue:
    values = {k: ("" if getattr(product, k, None) is None else str(getattr(product, k)))
              for k in PRODUCT_KEYS} if product else {
        "sku": "", "name": "", "category": "", "uom": "unit", "reorder_level": "0",
        "reorder_qty": "0", "sale_price": "", "sale_currency": "", "description": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {k: (request.form.get(k) or "").strip() for k in PRODUCT_KEYS}
        data: dict[str, Any] = dict(values)
        if not data["sale_price"]:
            data["sale_price"], data["sale_currency"] = None, None
        try:
            saved = (services.update_product(db.session, product, data) if product
                     else services.create_product(db.session, data))
            db.session.commit()
        except services.InventoryError as exc:
            db.session.rollback()
            errors[exc.field or "sku"] = str(exc)
        else:
            flash(f"Product {saved.sku} saved.", "success")
            return redirect(url_for("inventory.product", product_id=saved.id))
    return render_template("inventory/product_form.html", product=product, values=values,
                           errors=errors, uoms=services.UOMS), (422 if errors else 200)


@bp.route("/products/new", methods=["GET", "POST"])
@requires("inventory:write")
def new_product() -> ResponseReturnValue:
    return _product_form()


@bp.route("/products/<product_id>/edit", methods=["GET", "POST"])
@requires("inventory:write")
def edit_product(product_id: str) -> ResponseReturnValue:
    return _product_form(_product_or_404(product_id))


@bp.route("/products/<product_id>", methods=["GET", "POST"])
@requires("inventory:read")
def product(product_id: str) -> ResponseReturnValue:
    found = _product_or_404(product_id)
    errors: dict[str, str] = {}
    form: dict[str, str] = {}
    if request.method == "POST":
        from flask import g

        if not g.ctx.can("inventory:write"):
            abort(403)
        form = {k: (request.form.get(k) or "").strip() for k in (
            "operation", "warehouse_id", "to_warehouse_id", "reason", "quantity", "unit_cost",
            "note")}
        done = _operate(found, form, errors)
        if done:
            return redirect(url_for("inventory.product", product_id=found.id))
    warehouses = services.list_warehouses(db.session, active_only=True)
    levels = services.levels_by_product(db.session, [found.id]).get(found.id, [])
    moves = services.list_moves(db.session, product_id=found.id, per_page=20)
    return render_template(
        "inventory/product.html", product=found, levels=levels, warehouses=warehouses,
        names={w.id: w for w in services.list_warehouses(db.session)},
        totals=services.product_totals(db.session, found.id), moves=moves.items,
        reasons=services.ADJUSTMENT_REASONS, errors=errors, form=form), (
        422 if errors else 200)


def _operate(product: Any, form: dict[str, str], errors: dict[str, str]) -> bool:
    warehouse = _uuid(form["warehouse_id"])
    if warehouse is None or services.get_warehouse(db.session, warehouse) is None:
        errors["warehouse_id"] = "choose a warehouse"
        return False
    try:
        quantity = Decimal(form["quantity"])
        cost = Decimal(form["unit_cost"]) if form["unit_cost"] else None
    except InvalidOperation:
        errors["quantity"] = "quantities and costs are numbers, like 12 or 2.50"
        return False
    try:
        if form["operation"] == "transfer":
            target = _uuid(form["to_warehouse_id"])
            if target is None:
                errors["to_warehouse_id"] = "choose the warehouse to move to"
                return False
            services.transfer(db.session, product.id, warehouse, target, quantity,
                              note=form["note"])
            message = f"Moved {quantity} {product.uom} of {product.sku}."
        elif form["operation"] == "count":
            result = services.adjust(db.session, product.id, warehouse, reason="count",
                                     counted=quantity, unit_cost=cost, note=form["note"])
            message = ("The count matches the books." if result is None
                       else f"Stock of {product.sku} set to the counted {quantity}.")
        else:
            services.adjust(db.session, product.id, warehouse, reason=form["reason"],
                            delta=quantity, unit_cost=cost, note=form["note"])
            message = f"Stock of {product.sku} adjusted by {quantity}."
        db.session.commit()
    except services.InventoryError as exc:
        db.session.rollback()
        errors[exc.field or "quantity"] = str(exc)
        return False
    flash(message, "success")
    return True


@bp.get("/moves")
@requires("inventory:read")
def moves() -> ResponseReturnValue:
    product_q = (request.args.get("sku") or "").strip()
    product = services.product_by_sku(db.session, product_q) if product_q else None
    warehouse = _uuid(request.args.get("warehouse_id"))
    kind = request.args.get("kind") if request.args.get("kind") in (
        "receipt", "delivery", "transfer", "adjustment", "return") else None
    missing = bool(product_q) and product is None
    page = services.list_moves(db.session, product_id=product.id if product else None,
                               warehouse_id=warehouse, kind=kind, page=_page(),
                               per_page=PER_PAGE) if not missing else None
    ids = {m.product_id for m in page.items} if page else set()
    products = {p.id: p for p in (services.get_product(db.session, i) for i in ids) if p}
    return render_template("inventory/moves.html", page=page, sku=product_q, missing=missing,
                           kind=kind, warehouse_id=warehouse, products=products,
                           warehouses=services.list_warehouses(db.session))


@bp.route("/warehouses", methods=["POST"])
@requires("inventory:write")
def add_warehouse() -> ResponseReturnValue:
    try:
        services.save_warehouse(db.session, {"code": request.form.get("code"),
                                             "name": request.form.get("name")})
        db.session.commit()
        flash("Warehouse added.", "success")
    except services.InventoryError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("inventory.reorder"))


@bp.get("/reorder")
@requires("inventory:read")
def reorder() -> ResponseReturnValue:
    return render_template("inventory/reorder.html",
                           suggestions=services.list_reorder_events(db.session),
                           warehouses=services.list_warehouses(db.session))


@bp.post("/reorder/<event_id>/dismiss")
@requires("inventory:write")
def dismiss(event_id: str) -> ResponseReturnValue:
    try:
        services.set_reorder_status(db.session, _uuid(event_id) or uuid.UUID(int=0),
                                    "dismissed")
        db.session.commit()
    except services.InventoryError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("inventory.reorder"))
