"""Inventory and purchasing pages: products with stock, operations, the PO workflow,
the receiving screen, bills, reorder suggestions, permissions and fencing."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from app.inventory import services as inv
from app.inventory.services import MoveLine
from app.purchasing import services as purchasing
from tenants import services

from .conftest import PASSWORD, csrf_from, login


def _setup(as_tenant, t):
    with as_tenant(t.ctx) as s:
        main = inv.list_warehouses(s)[0]
        east = inv.save_warehouse(s, {"code": "EAST", "name": "East"})
        bolt = inv.create_product(s, {"sku": "BOLT", "name": "Bolt", "reorder_level": "5",
                                      "reorder_qty": "50"})
        nut = inv.create_product(s, {"sku": "NUT", "name": "Nut", "reorder_level": "5"})
        inv.receive(s, [MoveLine(bolt.id, main.id, Decimal(8), Decimal(2)),
                        MoveLine(bolt.id, east.id, Decimal(3), Decimal(2))])
        supplier = purchasing.create_supplier(s, {"name": "Acme Supply"})
        return main.id, east.id, bolt.id, nut.id, supplier.id


def test_products_page_shows_stock_per_warehouse_and_filters_low_stock(
        client, tenant_factory, as_tenant):
    t = tenant_factory()
    _setup(as_tenant, t)
    login(client, t.owner.email)
    page = client.get(f"/t/{t.slug}/inventory/products").get_data(as_text=True)
    assert "BOLT" in page and "NUT" in page and "EAST" in page
    assert '<td class="num">8</td>' in page and '<td class="num">3</td>' in page
    low = client.get(f"/t/{t.slug}/inventory/products?low=1").get_data(as_text=True)
    assert "NUT" in low and "BOLT" not in low


def test_adjust_count_and_move_from_the_product_page(client, tenant_factory, as_tenant):
    t = tenant_factory()
    main, east, bolt, _, _ = _setup(as_tenant, t)
    login(client, t.owner.email)
    url = f"/t/{t.slug}/inventory/products/{bolt}"
    token = csrf_from(client.get(url).get_data(as_text=True))
    oversell = client.post(url, data={"csrf_token": token, "operation": "adjust",
                                      "warehouse_id": main, "reason": "lost",
                                      "quantity": "-20"})
    assert oversell.status_code == 422 and "on hand" in oversell.get_data(as_text=True)
    moved = client.post(url, data={"csrf_token": token, "operation": "transfer",
                                   "warehouse_id": main, "to_warehouse_id": east,
                                   "quantity": "2"})
    assert moved.status_code == 302
    counted = client.post(url, data={"csrf_token": token, "operation": "count",
                                     "warehouse_id": main, "quantity": "5"})
    assert counted.status_code == 302
    with as_tenant(t.ctx) as s:
        assert inv.stock_level(s, bolt, main).on_hand == 5
        assert inv.stock_level(s, bolt, east).on_hand == 5
    history = client.get(f"/t/{t.slug}/inventory/moves?sku=BOLT").get_data(as_text=True)
    assert history.count("<tr>") >= 5 and "adjustment (count)" in history
    unknown = client.get(f"/t/{t.slug}/inventory/moves?sku=GHOST").get_data(as_text=True)
    assert "No product has the SKU GHOST" in unknown
    bad = client.post(url, data={"csrf_token": token, "operation": "adjust",
                                 "warehouse_id": main, "reason": "found", "quantity": "lots"})
    assert bad.status_code == 422 and "numbers" in bad.get_data(as_text=True)


def test_purchase_order_workflow_and_receiving_screen(client, tenant_factory, as_tenant,
                                                       db_session):
    t = tenant_factory()
    main, _, bolt, _, supplier = _setup(as_tenant, t)
    services.add_member(db_session, t.tenant, email="clerk@stock.example.com",
                        roles=["warehouse"], password=PASSWORD)
    login(client, "clerk@stock.example.com")
    base = f"/t/{t.slug}/purchasing"
    token = csrf_from(client.get(f"{base}/orders/new").get_data(as_text=True))
    created = client.post(f"{base}/orders/new", data={
        "csrf_token": token, "supplier_id": supplier, "warehouse_id": main,
        "product_id-0": bolt, "quantity-0": "10", "unit_cost-0": "2.50"})
    assert created.status_code == 302
    order_url = created.headers["Location"]
    po_id = order_url.rstrip("/").rsplit("/", 1)[1]
    page = client.get(order_url).get_data(as_text=True)
    assert "Pending" in page and "Approve" not in page  # warehouse cannot approve
    assert client.post(f"{base}/orders/{po_id}/approve",
                       data={"csrf_token": token}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    login(client, t.owner.email)
    token = csrf_from(client.get(order_url).get_data(as_text=True))
    client.post(f"{base}/orders/{po_id}/approve", data={"csrf_token": token})
    with as_tenant(t.ctx) as s:
        line = purchasing.po_lines(s, uuid.UUID(po_id))
    key = f"qty-{line[0].id}"
    too_many = client.post(f"{base}/orders/{po_id}/receive", data={
        "csrf_token": token, key: "11", "received_on": dt.date.today().isoformat()})
    assert too_many.status_code == 422
    assert 'value="11"' in too_many.get_data(as_text=True)
    part = client.post(f"{base}/orders/{po_id}/receive", data={
        "csrf_token": token, key: "4", "received_on": dt.date.today().isoformat()})
    assert part.status_code == 302
    assert "Partially received" in client.get(order_url).get_data(as_text=True)
    bill_page = client.get(f"{base}/bills/new/{supplier}")
    assert bill_page.status_code == 200 and "Not yet billed" in bill_page.get_data(as_text=True)
    with as_tenant(t.ctx) as s:
        open_line = purchasing.open_receipt_lines(s, supplier)[0].line.id
    billed = client.post(f"{base}/bills/new/{supplier}", data={
        "csrf_token": token, "supplier_ref": "INV-9", "bill_date": dt.date.today().isoformat(),
        "tax": "0", f"qty-{open_line}": "4"})
    assert billed.status_code == 302
    assert "INV-9" in client.get(f"{base}/bills").get_data(as_text=True)


def test_reorder_suggestion_becomes_a_draft_order(client, tenant_factory, as_tenant):
    t = tenant_factory()
    main, _, bolt, _, supplier = _setup(as_tenant, t)
    with as_tenant(t.ctx) as s:
        inv.update_product(s, inv.get_product(s, bolt), {"preferred_supplier_id": supplier})
        inv.deliver(s, [MoveLine(bolt, main, Decimal(7))])
    login(client, t.owner.email)
    page = client.get(f"/t/{t.slug}/inventory/reorder").get_data(as_text=True)
    assert "BOLT" in page and "Draft purchase order" in page
    with as_tenant(t.ctx) as s:
        event = inv.list_reorder_events(s)[0][0]
    drafted = client.post(f"/t/{t.slug}/purchasing/reorder/{event.id}",
                          data={"csrf_token": csrf_from(page)})
    assert drafted.status_code == 302 and "/purchasing/orders/" in drafted.headers["Location"]
    assert "Nothing to reorder." in client.get(f"/t/{t.slug}/inventory/reorder").get_data(
        as_text=True)


def test_permissions_and_fencing(client, tenant_factory, as_tenant, db_session):
    t, other = tenant_factory(), tenant_factory()
    _, _, bolt, _, _ = _setup(as_tenant, t)
    _, _, their_bolt, _, _ = _setup(as_tenant, other)
    services.add_member(db_session, t.tenant, email="hr@stock.example.com", roles=["hr"],
                        password=PASSWORD)
    login(client, t.owner.email)
    assert client.get(f"/t/{t.slug}/inventory/products/{their_bolt}").status_code == 404
    assert client.get(f"/t/{t.slug}/inventory/products/nope").status_code == 404
    token = csrf_from(client.get(f"/t/{t.slug}/inventory/products").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    login(client, "hr@stock.example.com")
    assert client.get(f"/t/{t.slug}/inventory/products").status_code == 403
    assert client.get(f"/t/{t.slug}/purchasing/orders").status_code == 403
    assert client.get(f"/t/{t.slug}/inventory/products/{bolt}").status_code == 403
