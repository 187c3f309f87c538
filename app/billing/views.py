"""Portal: invoices (list, detail, credit note), payments (list, record with
allocation), receivables aging."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.crm.services import list_accounts
from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV
from app.sales import services as sales
from app.sales.views import ActionForm, uuid_or_404

from . import services as billing
from .models import INVOICE_LABELS

bp = tenant_blueprint("billing", __name__, "/billing", template_folder="templates")
NAV.append(("Invoices", "billing.invoices", "invoices:read", 23))
NAV.append(("Payments", "billing.payments", "invoices:read", 24))
NAV.append(("Receivables", "billing.aging", "invoices:read", 25))


def _found(obj: Any) -> Any:
    if obj is None:
        abort(404)
    return obj


@bp.get("/invoices")
@requires("invoices:read")
def invoices() -> ResponseReturnValue:
    status = request.args.get("status") or None
    status = status if status in INVOICE_LABELS else None
    return render_template("billing/invoices.html", status=status, labels=INVOICE_LABELS,
                           rows=billing.list_invoices(db.session, status=status))


@bp.get("/invoices/<invoice_id>")
@requires("invoices:read")
def invoice(invoice_id: str) -> ResponseReturnValue:
    found = _found(billing.get_invoice(db.session, uuid_or_404(invoice_id)))
    return render_template(
        "billing/invoice.html", invoice=found, form=ActionForm(),
        account=sales.get_account(db.session, found.account_id),
        order=sales.get_order(db.session, found.sales_order_id),
        lines=billing.invoice_lines(db.session, found.id),
        taxes=billing.invoice_taxes(db.session, found.id),
        allocations=billing.allocations_of(db.session, invoice_id=found.id))


@bp.post("/invoices/<invoice_id>/credit-note")
@requires("invoices:post")
def credit_note(invoice_id: str) -> ResponseReturnValue:
    found = _found(billing.get_invoice(db.session, uuid_or_404(invoice_id)))
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        note = billing.issue_credit_note(db.session, found,
                                         reason=request.form.get("reason", "")[:2000])
    except billing.BillingError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Credit note {note.number} issued; invoice {found.number} is void.", "success")
    return redirect(url_for("billing.invoice", invoice_id=found.id))


@bp.get("/payments")
@requires("invoices:read")
def payments() -> ResponseReturnValue:
    return render_template("billing/payments.html", rows=billing.list_payments(db.session))


def _amount(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


@bp.route("/payments/new", methods=["GET", "POST"])
@requires("payments:write")
def new_payment() -> ResponseReturnValue:
    """Choose the customer first; the form then lists their open invoices, each with
    an amount to allocate (empty = nothing). Nothing allocated anywhere leaves the
    allocation to the chain (oldest invoices first)."""
    form = ActionForm()
    accounts = list_accounts(db.session, per_page=200).items
    raw_account = request.values.get("account_id", "")
    account = None
    if raw_account:
        try:
            account = sales.get_account(db.session, uuid.UUID(raw_account))
        except (ValueError, sales.SalesError):
            abort(404)
    values = {k: request.form.get(k, "") for k in ("amount", "currency", "received_on",
                                                   "reference")}
    errors: dict[str, str] = {}
    open_items = billing.open_invoices(db.session, account.id) if account else []
    if request.method == "POST" and account is not None:
        if not form.validate_on_submit():
            abort(400)
        allocations = []
        for item in open_items:
            raw = request.form.get(f"alloc-{item.id}", "").strip()
            if raw:
                value = _amount(raw)
                if value is None or value <= 0:
                    errors[f"alloc-{item.id}"] = "enter an amount greater than zero"
                else:
                    allocations.append(billing.AllocationRequest(item.id, value))
        received_on = None
        if values["received_on"]:
            try:
                received_on = dt.date.fromisoformat(values["received_on"])
            except ValueError:
                errors["received_on"] = "use a date like 2026-12-31"
        if not errors:
            try:
                payment = billing.record_payment(
                    db.session, account_id=account.id, amount=values["amount"],
                    currency=values["currency"] or None, received_on=received_on,
                    reference=values["reference"], allocations=allocations or None)
            except (billing.BillingError, sales.SalesError) as exc:
                db.session.rollback()
                field = exc.field if exc.field in ("amount", "currency", "received_on") \
                    else "form"
                if exc.field == "invoice_id" or (exc.field == "amount" and allocations):
                    field = "form"
                errors[field] = str(exc)
            else:
                db.session.commit()
                left = "; the rest is kept as the customer's credit" if allocations else \
                    "; it is allocated to the oldest open invoices"
                flash(f"Payment {payment.number} recorded{left}.", "success")
                return redirect(url_for("billing.payments"))
    status = 422 if errors else 200
    return render_template("billing/payment_form.html", form=form, accounts=accounts,
                           account=account, open_items=open_items, values=values,
                           errors=errors), status


@bp.get("/receivables")
@requires("invoices:read")
def aging() -> ResponseReturnValue:
    as_of = None
    if request.args.get("as_of"):
        try:
            as_of = dt.date.fromisoformat(request.args["as_of"])
        except ValueError:
            flash("Use a date like 2026-12-31.", "error")
    report = billing.aging(db.session, as_of)
    return render_template("billing/aging.html", report=report, buckets=billing.BUCKETS)
