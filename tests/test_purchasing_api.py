"""Purchasing over the API: the order workflow, receiving, bills, permissions, fencing."""

from __future__ import annotations

import datetime as dt

import pytest

from app.api import tokens
from tenants import services

from .conftest import PASSWORD

TODAY = dt.date.today()


def _auth(as_tenant, t, user_id=None) -> dict[str, str]:
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, user_id or t.owner.id, "purchasing")
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def api(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    main = client.get("/api/v1/warehouses", headers=auth).get_json()["items"][0]["id"]
    product = client.post("/api/v1/products", headers=auth,
                          json={"sku": "BOLT", "name": "Bolt"}).get_json()["id"]
    supplier = client.post("/api/v1/suppliers", headers=auth,
                           json={"name": "Acme Supply", "email": "sales@acme.example.com"})
    assert supplier.status_code == 201
    return t, auth, main, product, supplier.get_json()["id"]


def _po(client, auth, supplier, main, product, qty="10", cost="2.5"):
    return client.post("/api/v1/purchase-orders", headers=auth, json={
        "supplier_id": supplier, "warehouse_id": main,
        "lines": [{"product_id": product, "quantity": qty, "unit_cost": cost}]})


def test_order_receive_and_bill(client, api):
    _, auth, main, product, supplier = api
    created = _po(client, auth, supplier, main, product)
    assert created.status_code == 201
    po = created.get_json()
    assert po["status"] == "pending" and po["total"] == "25" and po["number"].startswith("PO-")
    changed = client.put(f"/api/v1/purchase-orders/{po['id']}", headers=auth, json={
        "supplier_id": supplier, "warehouse_id": main,
        "lines": [{"product_id": product, "quantity": "12", "unit_cost": "2.5"}]})
    assert changed.status_code == 200 and changed.get_json()["total"] == "30"
    early = client.post(f"/api/v1/purchase-orders/{po['id']}/receipts", headers=auth, json={
        "lines": [{"po_line_id": po["lines"][0]["id"], "quantity": "1"}]})
    assert early.status_code == 422 and "pending" in early.get_json()["error"]["message"]
    approved = client.post(f"/api/v1/purchase-orders/{po['id']}/approve", headers=auth)
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    frozen = client.put(f"/api/v1/purchase-orders/{po['id']}", headers=auth, json={
        "supplier_id": supplier, "warehouse_id": main,
        "lines": [{"product_id": product, "quantity": "1", "unit_cost": "0.01"}]})
    assert frozen.status_code == 422
    line = changed.get_json()["lines"][0]["id"]  # replacing the lines gave new ids
    part = client.post(f"/api/v1/purchase-orders/{po['id']}/receipts", headers=auth,
                       json={"lines": [{"po_line_id": line, "quantity": "5"}]})
    assert part.status_code == 201, part.get_json()
    assert part.get_json()["lines"][0]["quantity"] == "5"
    state = client.get(f"/api/v1/purchase-orders/{po['id']}", headers=auth).get_json()
    assert state["status"] == "partially_received"
    too_many = client.post(f"/api/v1/purchase-orders/{po['id']}/receipts", headers=auth,
                           json={"lines": [{"po_line_id": line, "quantity": "8"}]})
    assert too_many.status_code == 422
    stock = client.get(f"/api/v1/stock-levels?product_id={product}&warehouse_id={main}",
                       headers=auth).get_json()
    assert stock["on_hand"] == "5" and stock["value"] == "12.5"
    open_lines = client.get(f"/api/v1/suppliers/{supplier}/open-receipt-lines",
                            headers=auth).get_json()["items"]
    assert [ol["quantity_open"] for ol in open_lines] == ["5"]
    bill = client.post("/api/v1/supplier-bills", headers=auth, json={
        "supplier_id": supplier, "supplier_ref": "INV-77", "bill_date": TODAY.isoformat(),
        "lines": [{"receipt_line_id": open_lines[0]["receipt_line_id"], "quantity": "5"}]})
    assert bill.status_code == 201, bill.get_json()
    assert client.get(f"/api/v1/supplier-bills/{bill.get_json()['id']}",
                      headers=auth).status_code == 200
    cancel = client.post(f"/api/v1/purchase-orders/{po['id']}/cancel", headers=auth)
    assert cancel.status_code == 409
    listed = client.get("/api/v1/purchase-orders?status=partially_received",
                        headers=auth).get_json()
    assert listed["total"] == 1 and listed["items"][0]["supplier_name"] == "Acme Supply"


def test_invalid_orders_are_refused(client, api):
    _, auth, main, product, supplier = api
    wrong_currency = client.post("/api/v1/purchase-orders", headers=auth, json={
        "supplier_id": supplier, "warehouse_id": main, "currency": "EUX",
        "lines": [{"product_id": product, "quantity": "1", "unit_cost": "1"}]})
    assert wrong_currency.status_code == 422
    assert "currency" in wrong_currency.get_json()["error"]["fields"]
    no_lines = client.post("/api/v1/purchase-orders", headers=auth, json={
        "supplier_id": supplier, "warehouse_id": main, "lines": []})
    assert no_lines.status_code == 422
    ghost = _po(client, auth, supplier, main, "01a20000-0000-7000-8000-000000000000")
    assert ghost.status_code == 422
    duplicate = client.post("/api/v1/suppliers", headers=auth, json={"name": "ACME supply"})
    assert duplicate.status_code == 422 and "exists" in duplicate.get_json()["error"]["message"]
    assert client.get("/api/v1/purchase-orders", headers=auth).get_json()["total"] == 0


def test_approval_needs_the_permission_and_fencing(client, api, db_session, as_tenant,
                                                    tenant_factory):
    t, _, main, product, supplier = api
    _, clerk, _ = services.add_member(db_session, t.tenant, email="w@po.example.com",
                                      roles=["warehouse"], password=PASSWORD)
    clerk_auth = _auth(as_tenant, t, clerk.id)
    po = _po(client, clerk_auth, supplier, main, product).get_json()
    refused = client.post(f"/api/v1/purchase-orders/{po['id']}/approve", headers=clerk_auth)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "insufficient_permission"
    other = tenant_factory()
    other_auth = _auth(as_tenant, other)
    for method, path in (("get", f"/api/v1/purchase-orders/{po['id']}"),
                         ("post", f"/api/v1/purchase-orders/{po['id']}/approve"),
                         ("post", f"/api/v1/purchase-orders/{po['id']}/cancel"),
                         ("get", f"/api/v1/suppliers/{supplier}"),
                         ("patch", f"/api/v1/suppliers/{supplier}")):
        answer = getattr(client, method)(path, headers=other_auth, json={})
        assert answer.status_code == 404, (method, path)
