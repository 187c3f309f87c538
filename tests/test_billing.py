"""Billing: invoices per delivery with tax lines and ledger postings, credit notes,
payments and allocation (partial, several invoices, overpayment as credit), aging,
and the receivables account agreeing with the open invoices."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing import services as billing
from app.billing.models import Invoice
from app.events.models import OutboxEvent
from app.ledger import services as ledger
from app.ledger.models import JournalLine
from app.sales import services as sales

from .q2c_support import account, balance, line, product, quote

D = Decimal
TODAY = dt.date.today()


def _delivered(s, acct, lines, *, quantities=None, currency=None):
    q = quote(s, acct, lines, **({"currency": currency} if currency else {}))
    sales.accept_quote(s, q)
    order = sales.create_order_from_quote(s, q)
    assert sales.confirm_order(s, order).confirmed, order.hold_reason
    warehouse = sales.order_lines(s, order.id)[0].warehouse_id
    return order, sales.deliver(s, order, warehouse, quantities)


def _invoice(s, acct, lines, **kwargs):
    order, delivery = _delivered(s, acct, lines, **kwargs)
    return order, billing.issue_invoice(s, delivery)


def _open_total(s) -> Decimal:
    return sum((i.open_amount * i.rate for i in s.scalars(
        select(Invoice).where(Invoice.status.in_(billing.OPEN_STATES)))), D(0))


def test_invoice_posts_receivable_revenue_and_tax_lines(tenant_factory, as_tenant):
    t = tenant_factory()
    year = str(TODAY.year)
    with as_tenant(t.ctx) as s:
        acct, p1, p2 = account(s, payment_terms_days=45), product(s, "I-1"), product(s, "I-2")
        order, invoice = _invoice(s, acct, [line(p1, "3", "10.00", tax="20"),
                                            line(p2, "1", "5.00", discount="10", tax="7"),
                                            line(p2, "2", "1.00", tax="20")])
        assert invoice.number == f"INV-{year}-000001"
        assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
            D("36.50"), D("6.72"), D("43.22"))
        assert invoice.due_date == invoice.invoice_date + dt.timedelta(days=45)
        assert (invoice.status, invoice.rate) == ("unpaid", D(1))
        taxes = [(x.tax_rate, x.base_amount, x.tax_amount)
                 for x in billing.invoice_taxes(s, invoice.id)]
        assert taxes == [(D(7), D("4.50"), D("0.32")), (D(20), D("32.00"), D("6.40"))]
        assert (balance(s, "receivables"), balance(s, "sales"), balance(s, "tax_payable")) == (
            D("43.22"), D("36.50"), D("6.72"))
        partner = s.scalar(select(JournalLine.partner_id).where(
            JournalLine.entry_id == invoice.entry_id, JournalLine.base_debit > 0))
        assert partner == acct.id
        assert order.status == "invoiced"
        (event,) = s.scalars(select(OutboxEvent).where(
            OutboxEvent.event_type == billing.INVOICE_ISSUED))
        assert event.payload["number"] == invoice.number and event.payload["total"] == "43.22"
        # one invoice per delivery: asking again returns the same invoice, posts nothing
        delivery = sales.get_delivery(s, invoice.delivery_id)
        assert billing.issue_invoice(s, delivery).id == invoice.id
        assert s.scalar(select(func.count()).select_from(Invoice)) == 1
        assert balance(s, "receivables") == D("43.22")


def test_partial_deliveries_are_invoiced_one_by_one(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "PD-1")
        q = quote(s, acct, [line(p, "5", "10.00", tax="0")])
        sales.accept_quote(s, q)
        order = sales.create_order_from_quote(s, q)
        sales.confirm_order(s, order)
        (ol,) = sales.order_lines(s, order.id)
        d1 = sales.deliver(s, order, ol.warehouse_id, {ol.id: "2"})
        i1 = billing.issue_invoice(s, d1)
        assert (i1.total, order.status) == (D("20.00"), "partially_delivered")
        d2 = sales.deliver(s, order, ol.warehouse_id)
        i2 = billing.issue_invoice(s, d2)
        assert (i2.total, order.status) == (D("30.00"), "invoiced")


def test_foreign_currency_invoice_uses_the_rate_and_balances(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ledger.set_rate(s, "USD", TODAY - dt.timedelta(days=1), D("0.9"))
        acct, p = account(s, currency="USD"), product(s, "FX-1")
        _, invoice = _invoice(s, acct, [line(p, "1", "10.01", tax="19"),
                                        line(p, "1", "10.01", tax="19")])
        assert (invoice.currency, invoice.rate, invoice.total) == ("USD", D("0.9"), D("23.82"))
        # receivable 23.82 x 0.9 = 21.438 -> 21.44; tax 3.80 x 0.9 = 3.42; revenue the rest
        assert balance(s, "receivables") == D("21.44")
        assert balance(s, "tax_payable") == D("3.42")
        assert balance(s, "sales") == D("18.02")
        # paid later at a better rate: the exchange gain clears receivables exactly
        ledger.set_rate(s, "USD", TODAY, D("0.95"))
        billing.record_payment(s, account_id=acct.id, amount="23.82", currency="USD",
                               allocations=[billing.AllocationRequest(invoice.id, D("23.82"))])
        assert invoice.status == "paid"
        assert balance(s, "receivables") == 0
        assert balance(s, "fx_gain") == D("1.19")  # 22.63 - 21.44


def test_missing_exchange_rate_is_a_clear_refusal(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s, currency="GBP"), product(s, "FX-2")
        q = quote(s, acct, [line(p)])
        sales.accept_quote(s, q)
        order = sales.create_order_from_quote(s, q)
        order_status = sales.confirm_order(s, order)
        assert order_status.confirmed  # no credit limit: no conversion needed
        delivery = sales.deliver(s, order, sales.order_lines(s, order.id)[0].warehouse_id)
        with pytest.raises(billing.BillingError, match="no exchange rate for GBP"):
            billing.issue_invoice(s, delivery)


def test_credit_note_reverses_the_invoice(tenant_factory, as_tenant):
    t = tenant_factory()
    year = str(TODAY.year)
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "CN-1")
        _, invoice = _invoice(s, acct, [line(p, "2", "50.00", tax="20")])
        note = billing.issue_credit_note(s, invoice, reason="damaged in transit")
        assert (note.number, note.total, invoice.status) == (f"CN-{year}-000001", D("120.00"),
                                                             "void")
        assert balance(s, "receivables") == balance(s, "sales") == balance(s, "tax_payable") == 0
        assert ledger.get_entry(s, note.entry_id).reverses_id == invoice.entry_id
        with pytest.raises(billing.BillingError, match="already void"):
            billing.issue_credit_note(s, invoice)
        _, paid = _invoice(s, acct, [line(p, "1", "10.00", tax="0")])
        billing.record_payment(s, account_id=acct.id, amount="5", currency="EUR",
                               allocations=[billing.AllocationRequest(paid.id, D(5))])
        with pytest.raises(billing.BillingError, match="has payments allocated"):
            billing.issue_credit_note(s, paid)


def test_payment_allocation_partial_several_invoices_and_credit(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "PAY-1")
        _, a = _invoice(s, acct, [line(p, "1", "100.00", tax="0")])
        _, b = _invoice(s, acct, [line(p, "1", "50.00", tax="0")])
        partial = billing.record_payment(
            s, account_id=acct.id, amount="30", currency="EUR",
            allocations=[billing.AllocationRequest(a.id, D(30))])
        assert (a.status, a.open_amount, partial.unallocated) == ("partially_paid", D(70), 0)
        assert balance(s, "receivables") == _open_total(s) == D(120)
        savepoint = s.begin_nested()  # a refused service call is rolled back by its caller
        with pytest.raises(billing.BillingError, match=r"has only 70\.00 EUR open"):
            billing.record_payment(s, account_id=acct.id, amount="80", currency="EUR",
                                   allocations=[billing.AllocationRequest(a.id, D(80))])
        savepoint.rollback()
        # one payment over two invoices, 10 left as the customer's credit
        big = billing.record_payment(s, account_id=acct.id, amount="130", currency="EUR")
        made = billing.auto_allocate(s, big)
        assert [(m.invoice_id, m.amount) for m in made] == [(a.id, D(70)), (b.id, D(50))]
        assert (a.status, b.status, big.unallocated) == ("paid", "paid", D(10))
        assert balance(s, "receivables") == D(-10)  # the credit sits on receivables
        assert balance(s, "bank") == D(160)
        assert billing.auto_allocate(s, big) == []  # nothing open: nothing changes
        with pytest.raises(billing.BillingError, match="is paid"):
            billing.allocate(s, big, a.id, D(1))
        # the credit pays the next invoice
        _, c = _invoice(s, acct, [line(p, "1", "25.00", tax="0")])
        billing.auto_allocate(s, big)
        assert (c.status, c.open_amount, big.unallocated) == ("partially_paid", D(15), 0)
        assert balance(s, "receivables") == _open_total(s) == D(15)
        paid_events = s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.event_type == billing.INVOICE_PAID)).all()
        assert sorted(e["number"] for e in paid_events) == sorted([a.number, b.number])


def test_payment_validation(tenant_factory, as_tenant):
    t, other = tenant_factory(), tenant_factory()
    with as_tenant(other.ctx) as s:
        foreign = account(s, "Other Co")
        foreign_id = foreign.id
    with as_tenant(t.ctx) as s:
        acct = account(s)
        with pytest.raises(billing.BillingError, match="at most 2 decimal places"):
            billing.record_payment(s, account_id=acct.id, amount="1.001", currency="EUR")
        with pytest.raises(billing.BillingError, match="greater than zero"):
            billing.record_payment(s, account_id=acct.id, amount="0", currency="EUR")
        with pytest.raises(sales.SalesError, match="no such account"):
            billing.record_payment(s, account_id=foreign_id, amount="1", currency="EUR")


def test_aging_buckets_per_customer(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acme, beta = account(s, payment_terms_days=0), account(s, "Beta GmbH",
                                                               payment_terms_days=30)
        p = product(s, "AG-1")
        invoices = []
        for acct, amount in [(acme, "10.00"), (acme, "20.00"), (acme, "40.00"),
                             (acme, "80.00"), (acme, "160.00"), (beta, "5.00")]:
            invoices.append(_invoice(s, acct, [line(p, "1", amount, tax="0")])[1])
        # back-date due dates: current, 1-30, 31-60, 61-90, 90+
        for invoice, days in zip(invoices[:5], (0, 1, 31, 61, 91), strict=True):
            invoice.due_date = TODAY - dt.timedelta(days=days)
            invoice.invoice_date = invoice.due_date
        s.flush()
        billing.record_payment(s, account_id=beta.id, amount="8", currency="EUR")
        report = billing.aging(s, TODAY)
        assert [r.account_name for r in report.rows] == ["Acme Ltd", "Beta GmbH"]
        acme_row, beta_row = report.rows
        assert acme_row.buckets == {"current": D(10), "1-30": D(20), "31-60": D(40),
                                    "61-90": D(80), "90+": D(160)}
        assert (beta_row.buckets["current"], beta_row.credit, beta_row.balance) == (
            D(5), D(8), D(-3))
        assert report.total == D(315) and report.credit == D(8)
        assert [billing.bucket_for(d) for d in (-5, 0, 1, 30, 31, 60, 61, 90, 91)] == [
            "current", "current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "90+"]


# --- API -----------------------------------------------------------------------------------


def _auth(as_tenant, t):
    from app.api import tokens

    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, t.owner.id, "billing")
    return {"Authorization": f"Bearer {value}"}


def test_invoices_payments_and_aging_over_the_api(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "BA-1")
        _, delivery = _delivered(s, acct, [line(p, "2", "10.00", tax="20")])
        delivery_id, acct_id = str(delivery.id), str(acct.id)
    made = client.post("/api/v1/invoices", headers=auth, json={"delivery_id": delivery_id})
    assert made.status_code == 201, made.get_json()
    invoice = made.get_json()
    assert (invoice["total"], invoice["open_amount"], invoice["status"]) == (
        "24.00", "24.00", "unpaid")
    assert invoice["taxes"] == [{"tax_rate": "20.0000", "base_amount": "20.00",
                                 "tax_amount": "4.00"}]
    again = client.post("/api/v1/invoices", headers=auth, json={"delivery_id": delivery_id})
    assert again.status_code == 200 and again.get_json()["id"] == invoice["id"]
    paid = client.post("/api/v1/payments", headers=auth, json={
        "account_id": acct_id, "amount": "30", "reference": "wire 42",
        "allocations": [{"invoice_id": invoice["id"], "amount": "24"}]})
    assert paid.status_code == 201, paid.get_json()
    payment = paid.get_json()
    assert (payment["allocated"], payment["unallocated"]) == ("24.00", "6.00")
    shown = client.get(f"/api/v1/invoices/{invoice['id']}", headers=auth).get_json()
    assert shown["status"] == "paid" and shown["allocations"][0]["amount"] == "24.00"
    aging = client.get("/api/v1/receivables/aging", headers=auth).get_json()
    (row,) = aging["rows"]
    assert (row["account_name"], row["total"], row["credit"], row["balance"]) == (
        "Acme Ltd", "0.00", "6.00", "-6.00")
    assert set(row["buckets"]) == {"current", "days_1_30", "days_31_60", "days_61_90",
                                   "days_90_plus"}
    refused = client.post("/api/v1/credit-notes", headers=auth,
                          json={"invoice_id": invoice["id"]})
    assert refused.status_code == 409
    bad = client.post("/api/v1/payments", headers=auth,
                      json={"account_id": acct_id, "amount": "1.001"})
    assert bad.status_code == 422


def test_credit_note_over_the_api(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    with as_tenant(t.ctx) as s:
        _, invoice = _invoice(s, account(s), [line(product(s, "BC-1"), "1", "9.99")])
        invoice_id = str(invoice.id)
    note = client.post("/api/v1/credit-notes", headers=auth,
                       json={"invoice_id": invoice_id, "reason": "returned"})
    assert note.status_code == 201, note.get_json()
    assert note.get_json()["total"] == "11.99"
    listed = client.get("/api/v1/credit-notes", headers=auth).get_json()["items"]
    assert [n["id"] for n in listed] == [note.get_json()["id"]]
    assert client.get(f"/api/v1/invoices/{invoice_id}", headers=auth).get_json()[
        "status"] == "void"


def test_billing_api_isolation(client, tenant_factory, as_tenant):
    a, b = tenant_factory(), tenant_factory()
    auth_b = _auth(as_tenant, b)
    with as_tenant(a.ctx) as s:
        acct, p = account(s), product(s, "BI-1")
        _, invoice = _invoice(s, acct, [line(p)])
        payment = billing.record_payment(s, account_id=acct.id, amount="1", currency="EUR")
        _, other = _invoice(s, acct, [line(p)])
        note = billing.issue_credit_note(s, other)
        ids = {"invoices": invoice.id, "payments": payment.id, "credit-notes": note.id}
        acct_id, delivery_id = acct.id, invoice.delivery_id
    for path, key in ids.items():
        assert client.get(f"/api/v1/{path}/{key}", headers=auth_b).status_code == 404
    for path in ("invoices", "payments", "credit-notes"):
        assert client.get(f"/api/v1/{path}", headers=auth_b).get_json()["items"] == []
    assert client.get("/api/v1/receivables/aging", headers=auth_b).get_json()["rows"] == []
    forged = client.post("/api/v1/payments", headers=auth_b, json={
        "account_id": str(acct_id), "amount": "5", "currency": "EUR"})
    assert forged.status_code == 422
    assert client.post("/api/v1/invoices", headers=auth_b,
                       json={"delivery_id": str(delivery_id)}).status_code == 422
    assert client.post("/api/v1/credit-notes", headers=auth_b,
                       json={"invoice_id": str(invoice.id)}).status_code == 422


def test_billing_api_permissions(client, tenant_factory, as_tenant):
    from tenants import services as tenancy

    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        tenancy.add_member(s, t.tenant, email="wh@example.com", roles=["warehouse"],
                           password="correct horse battery")
    with as_tenant(t.ctx) as s:
        from app.api import tokens
        from tenants.models import User

        user = s.scalar(select(User).where(User.email == "wh@example.com"))
        _, value = tokens.create_token(s, user.id, "wh")
    auth = {"Authorization": f"Bearer {value}"}
    assert client.get("/api/v1/invoices", headers=auth).status_code == 403
    assert client.post("/api/v1/payments", headers=auth,
                       json={"account_id": str(t.id), "amount": "1"}).status_code == 403


# --- portal --------------------------------------------------------------------------------


def test_invoice_payment_and_aging_pages(client, tenant_factory, as_tenant):
    from .conftest import csrf_from, login

    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "BP-1")
        _, first = _invoice(s, acct, [line(p, "1", "100.00", tax="0")])
        _, second = _invoice(s, acct, [line(p, "1", "50.00", tax="0")])
        acct_id, first_id, second_id = acct.id, first.id, second.id
    login(client, t.owner.email)
    base = f"/t/{t.slug}/billing"
    listing = client.get(f"{base}/invoices").get_data(as_text=True)
    assert first.number in listing and second.number in listing
    detail = client.get(f"{base}/invoices/{first_id}").get_data(as_text=True)
    assert "Issue credit note" in detail and "100.00 EUR" in detail
    form = client.get(f"{base}/payments/new?account_id={acct_id}").get_data(as_text=True)
    assert first.number in form and second.number in form
    token = csrf_from(form)
    bad = client.post(f"{base}/payments/new", data={
        "csrf_token": token, "account_id": str(acct_id), "amount": "500", "currency": "EUR",
        f"alloc-{first_id}": "120"})
    assert bad.status_code == 422
    assert "has only 100.00 EUR open" in bad.get_data(as_text=True)
    ok = client.post(f"{base}/payments/new", follow_redirects=True, data={
        "csrf_token": token, "account_id": str(acct_id), "amount": "130", "currency": "EUR",
        "reference": "wire", f"alloc-{first_id}": "100", f"alloc-{second_id}": "20"})
    assert "the rest is kept as the customer&#39;s credit" in ok.get_data(as_text=True)
    assert "Paid" in client.get(f"{base}/invoices/{first_id}").get_data(as_text=True)
    aging = client.get(f"{base}/receivables").get_data(as_text=True)
    assert "Acme Ltd" in aging and "30.00" in aging and "10.00" in aging
    credit = client.post(f"{base}/invoices/{second_id}/credit-note", follow_redirects=True,
                         data={"csrf_token": token, "reason": "x"})
    assert "has payments allocated" in credit.get_data(as_text=True)


def test_billing_pages_isolation(client, tenant_factory, as_tenant):
    from .conftest import login

    a, b = tenant_factory(), tenant_factory()
    with as_tenant(a.ctx) as s:
        acct = account(s)
        _, invoice = _invoice(s, acct, [line(product(s, "BX-1"))])
    login(client, b.owner.email)
    base = f"/t/{b.slug}/billing"
    assert client.get(f"{base}/invoices/{invoice.id}").status_code == 404
    assert client.get(f"{base}/payments/new?account_id={acct.id}").status_code == 404
    assert invoice.number not in client.get(f"{base}/invoices").get_data(as_text=True)
    assert "Nothing is owed" in client.get(f"{base}/receivables").get_data(as_text=True)
