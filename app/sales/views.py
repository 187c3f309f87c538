"""Portal: quotes (list, create, edit, send, accept, reject, print), sales orders
(list, detail with where the chain stands, try again, cancel), deliveries (pick list
per warehouse, confirm delivery, automatic delivery setting)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.crm.services import list_accounts
from app.db import db
from app.inventory import services as inventory
from app.money import CURRENCIES
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import services as sales
from .consumers import try_confirm
from .models import ORDER_STATUSES, QUOTE_STATUSES

bp = tenant_blueprint("sales", __name__, "/sales", template_folder="templates")
NAV.append(("Quotes", "sales.quotes", "sales:read", 20))
NAV.append(("Sales orders", "sales.orders", "sales:read", 21))
NAV.append(("Deliveries", "sales.deliveries", "sales:read", 22))
LINE_ROWS = 5  # empty line rows offered on the quote form (no script needed)
MAX_LINE_ROWS = 500
LINE_FIELDS = ("product_id", "quantity", "unit_price", "discount_pct", "tax_rate",
               "description")


class QuoteForm(FlaskForm):
    account_id = SelectField("Customer", choices=[], validators=[DataRequired()])
    currency = SelectField("Currency", choices=[SelectChoice(c) for c in sorted(CURRENCIES)],
                           validators=[DataRequired()])
    quote_date = DateField("Quote date", validators=[Optional()])
    valid_until = DateField("Valid until", validators=[Optional()])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000)])


class ActionForm(FlaskForm):
    """CSRF only: the buttons that change a document's state."""


def uuid_or_404(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        abort(404)


def _found(obj: Any) -> Any:
    if obj is None:
        abort(404)
    return obj


def _quote_form(quote: Any = None) -> QuoteForm:
    form = QuoteForm(obj=quote)
    accounts = list_accounts(db.session, per_page=200).items
    form.account_id.choices = [SelectChoice("", "(choose)")] + [
        SelectChoice(str(a.id), a.name) for a in accounts]
    if request.method == "GET":
        if quote is not None:
            form.account_id.data = str(quote.account_id)
        else:
            form.currency.data = g.tenant.base_currency
            form.account_id.data = request.args.get("account_id", "")
    return form


def _line_count() -> int:
    """How many line rows the posted form had (bounded: it comes from the client)."""
    try:
        return max(0, min(MAX_LINE_ROWS, int(request.form.get("line_count", LINE_ROWS))))
    except ValueError:
        return LINE_ROWS


def _posted_lines() -> list[dict[str, Any]]:
    """The line rows of the form that have a product chosen."""
    rows = []
    for i in range(_line_count()):
        row = {f: (request.form.get(f"line-{i}-{f}") or "").strip() for f in LINE_FIELDS}
        if row["product_id"]:
            rows.append(row)
    return rows


def _line_rows(existing: list[Any]) -> list[dict[str, Any]]:
    if request.method == "POST":
        rows = [{f: (request.form.get(f"line-{i}-{f}") or "") for f in LINE_FIELDS}
                for i in range(_line_count())]
    else:
        rows = [{"product_id": str(ln.product_id), "quantity": f"{ln.quantity.normalize():f}",
                 "unit_price": f"{ln.unit_price.normalize():f}",
                 "discount_pct": f"{ln.discount_pct.normalize():f}",
                 "tax_rate": f"{ln.tax_rate.normalize():f}",
                 "description": ln.description} for ln in existing]
        rows += [dict.fromkeys(LINE_FIELDS, "") for _ in range(LINE_ROWS)]
    return rows


def _render_quote_form(form: QuoteForm, quote: Any, lines_error: str | None,
                       status: int) -> ResponseReturnValue:
    products = sales.sellable_products(db.session)
    existing = sales.quote_lines(db.session, quote.id) if quote else []
    return render_template("sales/quote_form.html", form=form, quote=quote,
                           products=products, rows=_line_rows(existing),
                           lines_error=lines_error), status


def _save_quote(form: QuoteForm, quote: Any) -> tuple[Any, str | None]:
    """Validate and save; returns (quote, None) or (None, message for the lines)."""
    if not form.validate_on_submit():
        return None, None
    data = {"account_id": form.account_id.data, "currency": form.currency.data,
            "quote_date": form.quote_date.data, "valid_until": form.valid_until.data,
            "notes": form.notes.data or "", "lines": _posted_lines()}
    try:
        if quote is None:
            saved = sales.create_quote(db.session, data)
        else:
            saved = sales.update_quote(db.session, quote, data)
    except sales.SalesError as exc:
        db.session.rollback()
        target = getattr(form, exc.field or "", None)
        if exc.field != "lines" and target is not None and hasattr(target, "errors"):
            target.errors = [*target.errors, str(exc)]
            return None, None
        return None, str(exc)
    db.session.commit()
    return saved, None


# --- quotes --------------------------------------------------------------------------------------


@bp.get("/quotes")
@requires("sales:read")
def quotes() -> ResponseReturnValue:
    status = request.args.get("status") or None
    status = status if status in QUOTE_STATUSES else None
    return render_template("sales/quotes.html", rows=sales.list_quotes(db.session,
                                                                       status=status),
                           status=status)


@bp.route("/quotes/new", methods=["GET", "POST"])
@requires("sales:write")
def new_quote() -> ResponseReturnValue:
    form = _quote_form()
    saved, lines_error = _save_quote(form, None)
    if saved is not None:
        flash(f"Quote {saved.number} created.", "success")
        return redirect(url_for("sales.quote", quote_id=saved.id))
    failed = request.method == "POST"
    return _render_quote_form(form, None, lines_error, 422 if failed else 200)


@bp.get("/quotes/<quote_id>")
@requires("sales:read")
def quote(quote_id: str) -> ResponseReturnValue:
    found = _found(sales.get_quote(db.session, uuid_or_404(quote_id)))
    account = sales.get_account(db.session, found.account_id)
    order = sales.order_for_quote(db.session, found.id)
    return render_template("sales/quote.html", quote=found, account=account,
                           lines=sales.quote_lines(db.session, found.id), order=order,
                           form=ActionForm())


@bp.route("/quotes/<quote_id>/edit", methods=["GET", "POST"])
@requires("sales:write")
def edit_quote(quote_id: str) -> ResponseReturnValue:
    found = _found(sales.get_quote(db.session, uuid_or_404(quote_id)))
    if found.status != "draft":
        flash(f"Quote {found.number} is {found.status_label.lower()}: only drafts can be "
              "changed.", "warning")
        return redirect(url_for("sales.quote", quote_id=found.id))
    form = _quote_form(found)
    saved, lines_error = _save_quote(form, found)
    if saved is not None:
        flash(f"Quote {saved.number} saved.", "success")
        return redirect(url_for("sales.quote", quote_id=saved.id))
    failed = request.method == "POST"
    return _render_quote_form(form, found, lines_error, 422 if failed else 200)


QUOTE_ACTIONS = {"send": (sales.send_quote, "sent"), "accept": (sales.accept_quote, "accepted"),
                 "reject": (sales.reject_quote, "rejected")}


@bp.post("/quotes/<quote_id>/<action>")
@requires("sales:write")
def quote_action(quote_id: str, action: str) -> ResponseReturnValue:
    if action not in QUOTE_ACTIONS:
        abort(404)
    found = _found(sales.get_quote(db.session, uuid_or_404(quote_id)))
    if not ActionForm().validate_on_submit():
        abort(400)
    call, done = QUOTE_ACTIONS[action]
    try:
        call(db.session, found)
    except sales.SalesError as exc:
        if found.status == "expired":
            db.session.commit()  # the refusal recorded the expiry
        else:
            db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        message = f"Quote {found.number} {done}."
        if action == "accept":
            message += " The sales order is being made."
        flash(message, "success")
    return redirect(url_for("sales.quote", quote_id=found.id))


@bp.get("/quotes/<quote_id>/print")
@requires("sales:read")
def print_quote(quote_id: str) -> ResponseReturnValue:
    found = _found(sales.get_quote(db.session, uuid_or_404(quote_id)))
    taxes: dict[Decimal, list[Decimal]] = {}
    lines = sales.quote_lines(db.session, found.id)
    for ln in lines:
        base, tax = taxes.setdefault(ln.tax_rate, [Decimal(0), Decimal(0)])
        taxes[ln.tax_rate] = [base + ln.net_amount, tax + ln.tax_amount]
    return render_template("sales/quote_print.html", quote=found, lines=lines,
                           account=sales.get_account(db.session, found.account_id),
                           taxes=sorted(taxes.items()))


# --- orders -------------------------------------------------------------------------------------


@bp.get("/orders")
@requires("sales:read")
def orders() -> ResponseReturnValue:
    status = request.args.get("status") or None
    status = status if status in ORDER_STATUSES else None
    return render_template("sales/orders.html",
                           rows=sales.list_orders(db.session, status=status), status=status)


@bp.get("/orders/<order_id>")
@requires("sales:read")
def order(order_id: str) -> ResponseReturnValue:
    from app.billing import services as billing

    found = _found(sales.get_order(db.session, uuid_or_404(order_id)))
    lines = sales.order_lines(db.session, found.id)
    products = sales.products_by_id(db.session, [ln.product_id for ln in lines])
    warehouses = {w.id: w for w in inventory.list_warehouses(db.session)}
    return render_template(
        "sales/order.html", order=found, lines=lines, products=products,
        warehouses=warehouses, account=sales.get_account(db.session, found.account_id),
        steps=sales.chain_position(db.session, found),
        deliveries=sales.list_deliveries(db.session, order_id=found.id),
        invoices=billing.invoices_for_order(db.session, found.id), form=ActionForm())


@bp.post("/orders/<order_id>/confirm")
@requires("sales:write")
def confirm_order(order_id: str) -> ResponseReturnValue:
    found = _found(sales.get_order(db.session, uuid_or_404(order_id)))
    if not ActionForm().validate_on_submit():
        abort(400)
    outcome = try_confirm(db.session, found)
    db.session.commit()
    if outcome.confirmed:
        flash(f"Order {found.number} confirmed: every line is reserved.", "success")
    else:
        flash(f"Order {found.number} is still waiting: {outcome.reason or found.status_label}",
              "warning")
    return redirect(url_for("sales.order", order_id=found.id))


@bp.post("/orders/<order_id>/lines/<line_id>/warehouse")
@requires("sales:write")
def line_warehouse(order_id: str, line_id: str) -> ResponseReturnValue:
    found = _found(sales.get_order(db.session, uuid_or_404(order_id)))
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        sales.set_line_warehouse(db.session, found, uuid_or_404(line_id),
                                 uuid_or_404(request.form.get("warehouse_id", "")))
    except sales.SalesError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("The line now ships from the chosen warehouse; confirm the order again.",
              "success")
    return redirect(url_for("sales.order", order_id=found.id))


@bp.post("/orders/<order_id>/cancel")
@requires("sales:write")
def cancel_order(order_id: str) -> ResponseReturnValue:
    found = _found(sales.get_order(db.session, uuid_or_404(order_id)))
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        sales.cancel_order(db.session, found)
    except sales.SalesError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Order {found.number} cancelled; its reservations are released.", "success")
    return redirect(url_for("sales.order", order_id=found.id))


# --- deliveries ---------------------------------------------------------------------------------


@bp.get("/deliveries")
@requires("sales:read")
def deliveries() -> ResponseReturnValue:
    warehouses = inventory.list_warehouses(db.session, active_only=True)
    chosen = None
    wanted = request.args.get("warehouse_id")
    for w in warehouses:
        if wanted and str(w.id) == wanted:
            chosen = w
    chosen = chosen or (warehouses[0] if warehouses else None)
    picks = sales.pick_list(db.session, chosen.id) if chosen else []
    by_order: dict[uuid.UUID, list[sales.PickLine]] = {}
    for pick in picks:
        by_order.setdefault(pick.order.id, []).append(pick)
    return render_template("sales/deliveries.html", warehouses=warehouses, chosen=chosen,
                           by_order=by_order, recent=sales.list_deliveries(db.session, limit=50),
                           auto_deliver=sales.auto_deliver_enabled(db.session),
                           form=ActionForm())


@bp.post("/deliveries/confirm")
@requires("inventory:write")
def confirm_delivery() -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        abort(400)
    order_id = uuid_or_404(request.form.get("order_id", ""))
    warehouse_id = uuid_or_404(request.form.get("warehouse_id", ""))
    found = _found(sales.get_order(db.session, order_id))
    quantities: dict[uuid.UUID, Any] = {}
    for key, value in request.form.items():
        if key.startswith("qty-"):
            quantities[uuid_or_404(key[4:])] = value.strip()
    try:
        delivery = sales.deliver(db.session, found, warehouse_id, quantities)
    except sales.SalesError as exc:
        db.session.rollback()
        flash(f"Order {found.number}: {exc}", "error")
    else:
        db.session.commit()
        flash(f"Delivery {delivery.number} for order {found.number} confirmed; the invoice "
              "follows.", "success")
    return redirect(url_for("sales.deliveries", warehouse_id=warehouse_id))


@bp.post("/deliveries/automatic")
@requires("tenant:write")
def set_auto_deliver() -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        abort(400)
    enabled = request.form.get("enabled") == "1"
    sales.set_auto_deliver(db.session, enabled)
    db.session.commit()
    flash("Orders are now delivered automatically when confirmed." if enabled else
          "Deliveries are now confirmed from the pick list.", "success")
    return redirect(url_for("sales.deliveries"))
