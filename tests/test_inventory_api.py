"""Inventory over the API: products with stock, operations, refusals, fencing."""

from __future__ import annotations

import pytest

from app.api import tokens
from app.inventory import services as inv
from app.inventory.services import MoveLine
from tenants import services

from .conftest import PASSWORD


def _auth(as_tenant, t, user_id=None) -> dict[str, str]:
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, user_id or t.owner.id, "inventory")
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def api(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    main = client.get("/api/v1/warehouses", headers=auth).get_json()["items"][0]["id"]
    return t, auth, main


def _product(client, auth, sku="BOLT-10", **extra):
    return client.post("/api/v1/products", headers=auth, json={
        "sku": sku, "name": f"Product {sku}", "reorder_level": "5", **extra})


def _stock(as_tenant, t, product_id, warehouse_id, qty="10", cost="2.50"):
    import uuid
    from decimal import Decimal

    with as_tenant(t.ctx) as s:
        inv.receive(s, [MoveLine(uuid.UUID(product_id), uuid.UUID(warehouse_id), Decimal(qty),
                                 Decimal(cost))])


def test_products_with_levels_and_low_stock_filter(client, api, as_tenant):
    t, auth, main = api
    bolt = _product(client, auth).get_json()
    nut = _product(client, auth, "NUT-10").get_json()
    assert bolt["on_hand"] == "0" and bolt["low_stock"] is True
    _stock(as_tenant, t, bolt["id"], main, "10")
    got = client.get(f"/api/v1/products/{bolt['id']}", headers=auth).get_json()
    assert (got["on_hand"], got["available"], got["low_stock"]) == ("10", "10", False)
    assert [lv["on_hand"] for lv in got["levels"]] == ["10"]
    low = client.get("/api/v1/products?low_stock=true", headers=auth).get_json()
    assert [p["sku"] for p in low["items"]] == [nut["sku"]] and low["total"] == 1
    level = client.get(f"/api/v1/stock-levels?sku=BOLT-10&warehouse_id={main}",
                       headers=auth).get_json()
    assert (level["on_hand"], level["value"]) == ("10", "25")
    assert client.get(f"/api/v1/stock-levels?sku=NOPE&warehouse_id={main}",
                      headers=auth).status_code == 404
    duplicate = _product(client, auth)
    assert duplicate.status_code == 422 and "BOLT-10" in duplicate.get_json()["error"]["message"]
    assert client.delete(f"/api/v1/products/{nut['id']}", headers=auth).status_code == 204
    assert client.get("/api/v1/products", headers=auth).get_json()["total"] == 1


def test_operations_and_their_refusals(client, api, as_tenant):
    t, auth, main = api
    bolt = _product(client, auth, reorder_level="8").get_json()
    _stock(as_tenant, t, bolt["id"], main, "10")
    second = client.post("/api/v1/warehouses", headers=auth,
                         json={"code": "EAST", "name": "East"}).get_json()["id"]
    shelf = client.post(f"/api/v1/warehouses/{second}/bins", headers=auth, json={"code": "a-1"})
    assert shelf.status_code == 201 and shelf.get_json()["code"] == "A-1"
    assert client.post(f"/api/v1/warehouses/{second}/bins", headers=auth,
                       json={"code": "A-1"}).status_code == 422
    assert [b["code"] for b in client.get(f"/api/v1/warehouses/{second}/bins",
                                          headers=auth).get_json()["items"]] == ["A-1"]
    moved = client.post("/api/v1/stock-transfers", headers=auth, json={
        "sku": "BOLT-10", "from_warehouse_id": main, "to_warehouse_id": second,
        "quantity": "4"})
    assert moved.status_code == 201 and [m["quantity"] for m in moved.get_json()["moves"]] == [
        "-4", "4"]
    oversell = client.post("/api/v1/stock-transfers", headers=auth, json={
        "sku": "BOLT-10", "from_warehouse_id": main, "to_warehouse_id": second,
        "quantity": "7"})
    assert oversell.status_code == 409
    damaged = client.post("/api/v1/stock-adjustments", headers=auth, json={
        "sku": "BOLT-10", "warehouse_id": main, "reason": "damaged", "delta": "-1"})
    assert damaged.status_code == 201 and damaged.get_json()["entry_id"]
    counted = client.post("/api/v1/stock-adjustments", headers=auth, json={
        "product_id": bolt["id"], "warehouse_id": main, "reason": "count", "counted": "3"})
    assert counted.status_code == 201 and counted.get_json()["moves"][0]["quantity"] == "-2"
    negative = client.post("/api/v1/stock-adjustments", headers=auth, json={
        "sku": "BOLT-10", "warehouse_id": main, "reason": "lost", "delta": "-50"})
    assert negative.status_code == 409
    unknown = client.post("/api/v1/stock-adjustments", headers=auth, json={
        "sku": "GHOST", "warehouse_id": main, "reason": "found", "delta": "1"})
    assert unknown.status_code == 422 and unknown.get_json()["error"]["fields"] == {
        "sku": "unknown SKU 'GHOST'"}
    bad_reason = client.post("/api/v1/stock-adjustments", headers=auth, json={
        "sku": "BOLT-10", "warehouse_id": main, "reason": "whim", "delta": "1"})
    assert bad_reason.status_code == 422 and "reason" in bad_reason.get_json()["error"]["fields"]
    reserved = client.post("/api/v1/reservations", headers=auth, json={
        "sku": "BOLT-10", "warehouse_id": main, "quantity": "2"})
    assert reserved.status_code == 201
    too_much = client.post("/api/v1/reservations", headers=auth, json={
        "sku": "BOLT-10", "warehouse_id": main, "quantity": "2"})
    assert too_much.status_code == 409
    assert client.delete(f"/api/v1/reservations/{reserved.get_json()['id']}",
                         headers=auth).status_code == 204
    history = client.get(f"/api/v1/stock-moves?product_id={bolt['id']}&warehouse_id={main}",
                         headers=auth).get_json()
    assert [m["kind"] for m in history["items"]] == ["adjustment", "adjustment", "transfer",
                                                     "receipt"]
    valuation = client.get("/api/v1/stock-valuation", headers=auth).get_json()
    assert valuation["total"] == "17.5" and valuation["rows"][0]["quantity"] == "7"
    suggestions = client.get("/api/v1/reorder-suggestions", headers=auth).get_json()["items"]
    assert [s["sku"] for s in suggestions] == ["BOLT-10"]


def test_refused_operation_writes_nothing(client, api):
    _, auth, main = api
    bolt = _product(client, auth).get_json()
    before = client.get(f"/api/v1/stock-moves?product_id={bolt['id']}", headers=auth
                        ).get_json()["items"]
    answer = client.post("/api/v1/stock-adjustments", headers=auth, json={
        "sku": "BOLT-10", "warehouse_id": main, "reason": "lost", "delta": "-1"})
    assert answer.status_code == 409
    after = client.get(f"/api/v1/stock-moves?product_id={bolt['id']}", headers=auth
                       ).get_json()["items"]
    assert before == after == []


def test_permissions_and_fencing(client, api, db_session, as_tenant, tenant_factory):
    t, auth, _ = api
    bolt = _product(client, auth).get_json()
    _, sales, _ = services.add_member(db_session, t.tenant, email="s@inv.example.com",
                                      roles=["sales"], password=PASSWORD)
    _, hr, _ = services.add_member(db_session, t.tenant, email="h@inv.example.com",
                                   roles=["hr"], password=PASSWORD)
    sales_auth, hr_auth = _auth(as_tenant, t, sales.id), _auth(as_tenant, t, hr.id)
    assert client.get("/api/v1/products", headers=sales_auth).status_code == 200
    assert _product(client, sales_auth, "X-1").status_code == 403
    assert client.get("/api/v1/products", headers=hr_auth).status_code == 403
    other = tenant_factory()
    other_auth = _auth(as_tenant, other)
    assert client.get(f"/api/v1/products/{bolt['id']}", headers=other_auth).status_code == 404
    assert client.patch(f"/api/v1/products/{bolt['id']}", headers=other_auth,
                        json={"name": "Stolen"}).status_code == 404
    assert client.delete(f"/api/v1/products/{bolt['id']}", headers=other_auth
                         ).status_code == 404
    theirs = client.get("/api/v1/warehouses", headers=other_auth).get_json()["items"][0]["id"]
    assert client.get(f"/api/v1/stock-levels?product_id={bolt['id']}&warehouse_id={theirs}",
                      headers=auth).status_code == 404
    forged = client.post("/api/v1/stock-adjustments", headers=other_auth, json={
        "product_id": bolt["id"], "warehouse_id": theirs, "reason": "found", "delta": "1",
        "unit_cost": "1"})
    assert forged.status_code == 422  # their tenant has no such product
