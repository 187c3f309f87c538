"""Sales: quote totals and rounding, gapless numbers, status rules, orders with
credit check and all-or-nothing reservations, deliveries with COGS."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.events.models import OutboxEvent
from app.inventory import services as inv
from app.inventory.models import Reservation
from app.sales import services as sales
from app.sales.models import SalesOrder, SalesOrderLine

from .q2c_support import account, balance, line, product, quote

D = Decimal


def _events(s, event_type):
    return list(s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type)))


def _accepted_order(s, acct, lines):
    q = quote(s, acct, lines)
    sales.accept_quote(s, q)
    return q, sales.create_order_from_quote(s, q)


# --- amounts -----------------------------------------------------------------------------


def test_line_amounts_round_half_up_per_line_then_sum():
    # 3 x 0.335 = 1.005 -> 1.01 (half up, not banker's 1.00); tax 20% of 1.01 = 0.202 -> 0.20
    assert sales.line_amounts(D(3), D("0.335"), D(0), D(20), "EUR") == (D("1.01"), D("0.20"))
    # 10% discount on 19.99 = 17.991 -> 17.99; 7% tax = 1.2593 -> 1.26
    assert sales.line_amounts(D(1), D("19.99"), D(10), D(7), "EUR") == (D("17.99"), D("1.26"))
    # yen has no minor unit; dinar three
    assert sales.line_amounts(D(3), D("33.5"), D(0), D(10), "JPY") == (D(101), D(10))
    assert sales.line_amounts(D(1), D("1.0005"), D(0), D(0), "KWD") == (D("1.001"), D(0))


def test_quote_totals_are_sums_of_rounded_lines(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "W-1")
        # three lines of 0.335 each: per-line rounding gives 3 x 0.34 = 1.02, not 1.01
        q = quote(s, acct, [line(p, "1", "0.335", tax="20")] * 3)
        assert (q.subtotal, q.tax_total, q.total) == (D("1.02"), D("0.21"), D("1.23"))
        lines = sales.quote_lines(s, q.id)
        assert [ln.line_no for ln in lines] == [1, 2, 3]
        assert all((ln.net_amount, ln.tax_amount) == (D("0.34"), D("0.07")) for ln in lines)
        assert q.currency == "EUR" and q.valid_until == q.quote_date + dt.timedelta(days=30)


def test_quote_price_defaults_to_the_products_sale_price(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "P-1", price="12.50")
        q = quote(s, acct, [{"product_id": p.id, "quantity": "2"}])
        assert q.total == D("25.00")
        with pytest.raises(sales.SalesError, match="give a unit price for P-1 in USD"):
            quote(s, acct, [{"product_id": p.id, "quantity": "2"}], currency="USD")


@pytest.mark.parametrize(("bad", "message"), [
    ({"quantity": "0"}, "quantity must be greater than zero"),
    ({"quantity": 1.5}, "not a floating point"),
    ({"discount_pct": "101"}, "cannot be more than 100"),
    ({"tax_rate": "-1"}, "cannot be less than 0"),
    ({"unit_price": "abc"}, "is not a number"),
    ({"product_id": "nope"}, "choose a product"),
])
def test_quote_lines_are_validated(tenant_factory, as_tenant, bad, message):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "V-1", stock=None)
        with pytest.raises(sales.SalesError, match=message) as caught:
            quote(s, acct, [{**line(p), **bad}])
        assert caught.value.field == "lines" and "line 1" in str(caught.value)


def test_quote_numbers_are_gapless_per_tenant(tenant_factory, as_tenant, db_session):
    a, b = tenant_factory(), tenant_factory()
    year = str(dt.date.today().year)
    with as_tenant(a.ctx) as s:
        acct, p = account(s), product(s, "N-1", stock=None)
        first = quote(s, acct, [line(p)]).number
        savepoint = s.begin_nested()
        quote(s, acct, [line(p)])  # rolled back: its number comes back
        savepoint.rollback()
        second = quote(s, acct, [line(p)]).number
    with as_tenant(b.ctx) as s:
        other = quote(s, account(s), [line(product(s, "N-1", stock=None))]).number
    assert (first, second) == (f"QT-{year}-000001", f"QT-{year}-000002")
    assert other == f"QT-{year}-000001"


def test_quote_status_rules(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "S-1", stock=None)
        q = quote(s, acct, [line(p)])
        sales.update_quote(s, q, {"lines": [line(p, "2")]})
        assert q.total == D("24.00")
        sales.send_quote(s, q)
        with pytest.raises(sales.SalesError, match="only drafts can be changed"):
            sales.update_quote(s, q, {"lines": [line(p, "3")]})
        with pytest.raises(sales.SalesError, match="already sent"):
            sales.send_quote(s, q)
        assert _events(s, sales.QUOTE_ACCEPTED) == []
        sales.accept_quote(s, q)
        (event,) = _events(s, sales.QUOTE_ACCEPTED)  # published in the same transaction
        assert event.payload["quote_id"] == str(q.id)
        for action in (sales.accept_quote, sales.reject_quote):
            with pytest.raises(sales.SalesError, match="accepted: it cannot be"):
                action(s, q)
        late = quote(s, acct, [line(p)], quote_date="2026-01-01", valid_until="2026-01-31")
        with pytest.raises(sales.SalesError, match="expired on 2026-01-31"):
            sales.accept_quote(s, late, on=dt.date(2026, 2, 1))
        assert late.status == "expired"
        with pytest.raises(sales.SalesError, match="cannot expire before its date"):
            quote(s, acct, [line(p)], quote_date="2026-02-01", valid_until="2026-01-31")
        stale = quote(s, acct, [line(p)], quote_date="2020-01-01", valid_until="2020-01-31")
        assert sales.expire_quotes(s, dt.date.today()) == 1 and stale.status == "expired"


# --- orders --------------------------------------------------------------------------------


def test_order_from_quote_reserves_every_line_and_publishes(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p1, p2 = account(s), product(s, "R-1", stock="10"), product(s, "R-2", stock="5")
        q, order = _accepted_order(s, acct, [line(p1, "4"), line(p2, "5")])
        assert (order.status, order.total, order.source_quote_id) == ("draft", q.total, q.id)
        with pytest.raises(sales.SalesError, match="already has an order"):
            sales.create_order_from_quote(s, q)
        outcome = sales.confirm_order(s, order)
        assert outcome.confirmed and order.status == "confirmed"
        lines = sales.order_lines(s, order.id)
        assert all(ln.reservation_id for ln in lines)
        assert inv.product_totals(s, p1.id).reserved == D(4)
        assert inv.product_totals(s, p2.id).reserved == D(5)
        (event,) = _events(s, sales.ORDER_CONFIRMED)
        assert event.payload["order_id"] == str(order.id)
        # confirming again changes nothing
        assert sales.confirm_order(s, order).status == "confirmed"
        assert s.scalar(select(func.count()).select_from(Reservation)) == 2


def test_insufficient_stock_leaves_nothing_half_written(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, plenty, scarce = account(s), product(s, "OK-1", stock="50"), product(
            s, "LOW-1", stock="2")
        _, order = _accepted_order(s, acct, [line(plenty, "10"), line(scarce, "3")])
        outcome = sales.confirm_order(s, order)
        assert outcome.status == "waiting_for_stock" and outcome.sku == "LOW-1"
        assert "not enough stock of LOW-1 in MAIN: 2 available, 3 requested" in order.hold_reason
        # the first line's reservation was rolled back with the attempt
        assert s.scalar(select(func.count()).select_from(Reservation)) == 0
        assert inv.product_totals(s, plenty.id).reserved == 0
        assert all(ln.reservation_id is None for ln in sales.order_lines(s, order.id))
        assert _events(s, sales.ORDER_CONFIRMED) == []
        # goods arrive; the retry completes it
        inv.receive(s, [inv.MoveLine(scarce.id, inv.list_warehouses(s)[0].id, D(5), D(1))])
        assert sales.confirm_order(s, order).confirmed
        assert inv.product_totals(s, scarce.id).reserved == D(3)


def test_credit_limit_puts_the_order_on_hold(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s, credit_limit="100"), product(s, "C-1")
        _, order = _accepted_order(s, acct, [line(p, "10", "10.00", tax="0")])  # 100.00: fits
        assert sales.confirm_order(s, order).confirmed
        delivery = sales.deliver(s, order, sales.order_lines(s, order.id)[0].warehouse_id)
        from app.billing import services as billing

        billing.issue_invoice(s, delivery)  # 100.00 now owed
        _, second = _accepted_order(s, acct, [line(p, "1", "0.01", tax="0")])
        outcome = sales.confirm_order(s, second)
        assert outcome.status == "on_hold" and second.status == "on_hold"
        assert second.hold_reason == (
            "credit limit exceeded for Acme Ltd: open receivables 100.00 EUR + this order "
            "0.01 EUR is more than the limit 100.00 EUR")
        assert s.scalar(select(func.count()).select_from(Reservation)
                        .where(Reservation.source_id == second.id)) == 0
        acct.credit_limit = D("1000")
        assert sales.confirm_order(s, second).confirmed and second.hold_reason == ""


def test_unique_order_per_quote_and_per_deal_in_the_database(tenant_factory, as_tenant):
    import uuid

    from sqlalchemy.exc import IntegrityError

    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "U-1")
        deal = uuid.uuid4()
        q = quote(s, acct, [line(p)], source_deal_id=deal)
        sales.accept_quote(s, q)
        order = sales.create_order_from_quote(s, q)
        assert order.source_deal_id == deal
        savepoint = s.begin_nested()
        with pytest.raises(IntegrityError):
            s.add(SalesOrder(number="X-1", account_id=acct.id, source_deal_id=deal,
                             currency="EUR", order_date=dt.date.today(), subtotal=0,
                             tax_total=0, total=0))
            s.flush()
        savepoint.rollback()


# --- deliveries ----------------------------------------------------------------------------


def test_partial_delivery_moves_stock_posts_cogs_and_publishes(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "D-1", stock="10", cost="4.00")
        _, order = _accepted_order(s, acct, [line(p, "6")])
        sales.confirm_order(s, order)
        (ol,) = sales.order_lines(s, order.id)
        picks = sales.pick_list(s, ol.warehouse_id)
        assert [(pk.order.number, pk.sku, pk.line.open_quantity) for pk in picks] == [
            (order.number, "D-1", D(6))]
        with pytest.raises(sales.SalesError, match="only 6 left to deliver"):
            sales.deliver(s, order, ol.warehouse_id, {ol.id: "7"})
        first = sales.deliver(s, order, ol.warehouse_id, {ol.id: "2"})
        assert order.status == "partially_delivered" and ol.delivered_qty == D(2)
        assert inv.product_totals(s, p.id).on_hand == D(8)
        assert inv.product_totals(s, p.id).reserved == D(4)
        assert balance(s, "cogs") == D("8.00") and first.entry_id is not None
        sales.deliver(s, order, ol.warehouse_id)  # the rest
        assert order.status == "delivered" and ol.open_quantity == 0
        assert inv.product_totals(s, p.id).reserved == 0
        assert balance(s, "cogs") == D("24.00")
        assert len(_events(s, sales.DELIVERY_DONE)) == 2
        assert sales.pick_list(s, ol.warehouse_id) == []
        with pytest.raises(sales.SalesError, match="only confirmed orders"):
            sales.deliver(s, order, ol.warehouse_id)


def test_cancel_releases_reservations(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "X-1", stock="10")
        _, order = _accepted_order(s, acct, [line(p, "6")])
        sales.confirm_order(s, order)
        sales.cancel_order(s, order)
        assert order.status == "cancelled" and inv.product_totals(s, p.id).reserved == 0
        with pytest.raises(sales.SalesError, match="cannot be cancelled"):
            sales.cancel_order(s, order)
        assert s.scalar(select(func.count()).select_from(SalesOrderLine)) == 1


# --- API -----------------------------------------------------------------------------------


def _auth(as_tenant, t):
    from app.api import tokens

    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, t.owner.id, "q2c")
    return {"Authorization": f"Bearer {value}"}


def test_quote_to_delivery_over_the_api(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "API-1", stock="10")
        acct_id, p_id = str(acct.id), str(p.id)
    body = {"account_id": acct_id, "lines": [
        {"product_id": p_id, "quantity": "3", "unit_price": 0.335, "tax_rate": "20"}]}
    created = client.post("/api/v1/quotes", headers={**auth, "Idempotency-Key": "q-1"},
                          json=body)
    assert created.status_code == 201, created.get_json()
    q = created.get_json()
    assert (q["subtotal"], q["tax_total"], q["total"], q["status"]) == (
        "1.01", "0.20", "1.21", "draft")
    assert q["lines"][0]["unit_price"] == "0.335000"
    again = client.post("/api/v1/quotes", headers={**auth, "Idempotency-Key": "q-1"}, json=body)
    assert again.get_json()["id"] == q["id"]  # replayed, not a second quote
    patched = client.patch(f"/api/v1/quotes/{q['id']}", headers=auth, json={"notes": "rush"})
    assert patched.get_json()["notes"] == "rush"
    assert client.post(f"/api/v1/quotes/{q['id']}/send", headers=auth).status_code == 200
    accepted = client.post(f"/api/v1/quotes/{q['id']}/accept", headers=auth)
    assert accepted.get_json()["status"] == "accepted"
    conflict = client.post(f"/api/v1/quotes/{q['id']}/reject", headers=auth)
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "conflict"
    order = client.post("/api/v1/sales-orders", headers=auth, json={"quote_id": q["id"]})
    assert order.status_code == 201, order.get_json()
    o = order.get_json()
    assert o["status"] == "confirmed" and o["lines"][0]["reservation_id"]
    assert [step["step"] for step in o["chain"]][:3] == [
        "Order", "Credit check and reservation", "Delivery"]
    listed = client.get("/api/v1/sales-orders?status=confirmed", headers=auth).get_json()
    assert [i["id"] for i in listed["items"]] == [o["id"]]
    delivered = client.post("/api/v1/deliveries", headers=auth, json={
        "order_id": o["id"], "warehouse_id": o["lines"][0]["warehouse_id"],
        "lines": [{"order_line_id": o["lines"][0]["id"], "quantity": "1"}]})
    assert delivered.status_code == 201, delivered.get_json()
    d = delivered.get_json()
    assert d["lines"][0]["quantity"] == "1.0000" and d["cogs_entry_id"]
    assert client.get(f"/api/v1/sales-orders/{o['id']}", headers=auth).get_json()[
        "status"] == "partially_delivered"
    too_much = client.post("/api/v1/deliveries", headers=auth, json={
        "order_id": o["id"], "warehouse_id": o["lines"][0]["warehouse_id"],
        "lines": [{"order_line_id": o["lines"][0]["id"], "quantity": "5"}]})
    assert too_much.status_code == 422
    assert "only 2 left to deliver" in too_much.get_json()["error"]["message"]


def test_quote_api_validation(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    with as_tenant(t.ctx) as s:
        acct_id = str(account(s).id)
    bad = client.post("/api/v1/quotes", headers=auth, json={"account_id": acct_id, "lines": []})
    assert bad.status_code == 422 and "lines" in bad.get_json()["error"]["fields"]
    unknown = client.post("/api/v1/quotes", headers=auth, json={
        "account_id": acct_id, "lines": [{"product_id": acct_id, "quantity": "1"}]})
    assert unknown.status_code == 422
    assert unknown.get_json()["error"]["fields"] == {"lines": "line 1: no such product"}


def test_sales_api_isolation_and_permissions(client, tenant_factory, as_tenant):
    a, b = tenant_factory(), tenant_factory()
    auth_b = _auth(as_tenant, b)
    with as_tenant(a.ctx) as s:
        acct, p = account(s), product(s, "ISO-1")
        q, order = _accepted_order(s, acct, [line(p)])
        sales.confirm_order(s, order)
        delivery = sales.deliver(s, order, sales.order_lines(s, order.id)[0].warehouse_id)
        ids = {"quotes": q.id, "sales-orders": order.id, "deliveries": delivery.id}
    for path, key in ids.items():
        assert client.get(f"/api/v1/{path}/{key}", headers=auth_b).status_code == 404
    for action in ("send", "accept", "reject"):
        assert client.post(f"/api/v1/quotes/{q.id}/{action}",
                           headers=auth_b).status_code == 404
    for action in ("confirm", "cancel"):
        assert client.post(f"/api/v1/sales-orders/{order.id}/{action}",
                           headers=auth_b).status_code == 404
    assert client.patch(f"/api/v1/quotes/{q.id}", headers=auth_b,
                        json={"notes": "x"}).status_code == 404
    assert client.post("/api/v1/sales-orders", headers=auth_b,
                       json={"quote_id": str(q.id)}).status_code == 422
    # b's own lists do not show a's documents
    assert client.get("/api/v1/quotes", headers=auth_b).get_json()["items"] == []
    assert client.get("/api/v1/deliveries", headers=auth_b).get_json()["items"] == []


def test_every_q2c_route_documents_itself(app):
    from pydantic import BaseModel

    paths = ("/api/v1/quotes", "/api/v1/sales-orders", "/api/v1/deliveries",
             "/api/v1/invoices", "/api/v1/credit-notes", "/api/v1/payments",
             "/api/v1/receivables")
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith(paths)]
    assert len(rules) >= 20
    for rule in rules:
        spec = app.view_functions[rule.endpoint].__api_doc__
        assert spec["summary"] and issubclass(spec["response"], BaseModel), rule.rule
        if "POST" in rule.methods and spec["body"] is None:
            assert rule.rule.endswith(("/send", "/accept", "/reject", "/confirm", "/cancel"))


# --- portal --------------------------------------------------------------------------------


def _portal(client, t):
    from .conftest import csrf_from, login

    login(client, t.owner.email)
    return f"/t/{t.slug}/sales", csrf_from


def test_quote_pages_create_send_accept_and_print(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "PO-1", stock="10")
        acct_id, p_id = str(acct.id), str(p.id)
    base, csrf_from = _portal(client, t)
    form = client.get(f"{base}/quotes/new").get_data(as_text=True)
    token = csrf_from(form)
    data = {"csrf_token": token, "account_id": acct_id, "currency": "EUR", "line_count": "2",
            "line-0-product_id": p_id, "line-0-quantity": "3", "line-0-unit_price": "0.335",
            "line-0-tax_rate": "20"}
    bad = client.post(f"{base}/quotes/new", data={**data, "line-0-quantity": "-1"})
    assert bad.status_code == 422
    assert "line 1: quantity must be greater than zero" in bad.get_data(as_text=True)
    created = client.post(f"{base}/quotes/new", data=data)
    assert created.status_code == 302, created.get_data(as_text=True)
    detail_url = created.headers["Location"]
    detail = client.get(detail_url).get_data(as_text=True)
    assert "1.21 EUR" in detail and "Draft" in detail
    quote_id = detail_url.rstrip("/").rsplit("/", 1)[1]
    edited = client.post(f"{base}/quotes/{quote_id}/edit", data={**data, "line-0-quantity": "6"})
    assert edited.status_code == 302
    assert "2.41 EUR" in client.get(detail_url).get_data(as_text=True)
    for action in ("send", "accept"):
        assert client.post(f"{base}/quotes/{quote_id}/{action}",
                           data={"csrf_token": token}).status_code == 302
    page = client.get(detail_url).get_data(as_text=True)
    assert "Accepted" in page and "being made by the quote-to-cash chain" in page
    again = client.post(f"{base}/quotes/{quote_id}/reject", data={"csrf_token": token},
                        follow_redirects=True)
    assert "accepted: it cannot be rejected" in again.get_data(as_text=True)
    printed = client.get(f"{base}/quotes/{quote_id}/print").get_data(as_text=True)
    assert "@media print" in printed and "Tax 20% on 2.01" in printed
    listing = client.get(f"{base}/quotes?status=accepted").get_data(as_text=True)
    assert "Acme Ltd" in listing


def test_order_page_pick_list_and_delivery(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "PK-1", stock="2")
        _, order = _accepted_order(s, acct, [line(p, "3")])
        sales.confirm_order(s, order)
        order_id, number = order.id, order.number
    base, csrf_from = _portal(client, t)
    page = client.get(f"{base}/orders/{order_id}").get_data(as_text=True)
    assert "Waiting for stock" in page and "not enough stock of PK-1" in page
    token = csrf_from(page)
    with as_tenant(t.ctx) as s:
        inv.receive(s, [inv.MoveLine(p.id, inv.list_warehouses(s)[0].id, D(5), D(1))])
    client.post(f"{base}/orders/{order_id}/confirm", data={"csrf_token": token})
    page = client.get(f"{base}/orders/{order_id}").get_data(as_text=True)
    assert "Confirmed" in page and "every line reserved" in page
    picks = client.get(f"{base}/deliveries").get_data(as_text=True)
    assert f"pick-{number}" in picks and "PK-1" in picks
    with as_tenant(t.ctx) as s:
        (ol,) = sales.order_lines(s, order_id)
        line_id, warehouse_id = ol.id, ol.warehouse_id
    too_many = client.post(f"{base}/deliveries/confirm", follow_redirects=True, data={
        "csrf_token": token, "order_id": str(order_id), "warehouse_id": str(warehouse_id),
        f"qty-{line_id}": "4"})
    assert "only 3 left to deliver" in too_many.get_data(as_text=True)
    done = client.post(f"{base}/deliveries/confirm", follow_redirects=True, data={
        "csrf_token": token, "order_id": str(order_id), "warehouse_id": str(warehouse_id),
        f"qty-{line_id}": "1"})
    assert "confirmed; the invoice follows" in done.get_data(as_text=True)
    assert "Partially delivered" in client.get(f"{base}/orders/{order_id}").get_data(
        as_text=True)
    toggled = client.post(f"{base}/deliveries/automatic", follow_redirects=True,
                          data={"csrf_token": token, "enabled": "1"})
    assert "delivered automatically" in toggled.get_data(as_text=True)


def test_sales_pages_isolation_and_permissions(client, tenant_factory, as_tenant):
    from tenants import services as tenancy

    from .conftest import login

    a, b = tenant_factory(), tenant_factory()
    with as_tenant(a.ctx) as s:
        acct, p = account(s), product(s, "PI-1")
        q, order = _accepted_order(s, acct, [line(p)])
    base_b, _ = _portal(client, b)
    for path in (f"quotes/{q.id}", f"quotes/{q.id}/print", f"quotes/{q.id}/edit",
                 f"orders/{order.id}", "quotes/not-a-uuid"):
        assert client.get(f"{base_b}/{path}").status_code == 404, path
    with as_tenant(b.ctx) as s:
        tenancy.add_member(s, b.tenant, email="picker@b.example", roles=["warehouse"],
                           password="correct horse battery")
    picker = client.application.test_client()
    login(picker, "picker@b.example")
    assert picker.get(f"{base_b}/deliveries").status_code == 200
    assert picker.get(f"{base_b}/quotes/new").status_code == 403


def test_a_waiting_line_can_ship_from_another_warehouse(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        acct, p = account(s), product(s, "WH-1", stock="1")
        north = inv.save_warehouse(s, {"code": "NORTH", "name": "North"})
        inv.receive(s, [inv.MoveLine(p.id, north.id, D(10), D(4))])
        _, order = _accepted_order(s, acct, [line(p, "5")])
        assert sales.confirm_order(s, order).status == "waiting_for_stock"
        (ol,) = sales.order_lines(s, order.id)
        sales.set_line_warehouse(s, order, ol.id, north.id)
        assert sales.confirm_order(s, order).confirmed
        assert [pk.order.id for pk in sales.pick_list(s, north.id)] == [order.id]
        with pytest.raises(sales.SalesError, match="only change before the order is confirmed"):
            sales.set_line_warehouse(s, order, ol.id, inv.list_warehouses(s)[0].id)
