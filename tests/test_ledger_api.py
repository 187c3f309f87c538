"""The ledger over the API: entries, refusals that write nothing, reports, fencing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.api import tokens
from app.ledger.models import JournalEntry
from tenants import services

from .conftest import PASSWORD

TODAY = dt.date.today()


def _auth(as_tenant, t, user_id=None) -> dict[str, str]:
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, user_id or t.owner.id, "ledger")
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def api(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    accounts = client.get("/api/v1/ledger/accounts", headers=auth).get_json()["items"]
    by_role = {a["role"]: a["id"] for a in accounts if a["role"]}
    return t, auth, by_role


def _entry(client, auth, acc, amount="100.00", post=True, day=TODAY, key=None, **line):
    headers = {**auth, **({"Idempotency-Key": key} if key else {})}
    return client.post("/api/v1/ledger/entries", headers=headers, json={
        "entry_date": day.isoformat(), "description": "API entry", "post": post,
        "lines": [{"account_id": acc["cash"], "debit": amount, **line},
                  {"account_id": acc["sales"], "credit": amount}]})


def _count(as_tenant, t) -> int:
    with as_tenant(t.ctx) as s:
        return s.scalar(select(func.count()).select_from(JournalEntry))


def test_post_reverse_and_report(client, api):
    _, auth, acc = api
    posted = _entry(client, auth, acc, "250.5")
    assert posted.status_code == 201
    entry = posted.get_json()
    assert entry["status"] == "posted" and entry["number"].startswith(f"JE-{TODAY.year}-")
    assert (entry["total_debit"], entry["total_credit"]) == ("250.5", "250.5")
    assert [ln["debit"] for ln in entry["lines"]] == ["250.5", "0"]
    tb = client.get("/api/v1/ledger/reports/trial-balance", headers=auth).get_json()
    assert tb["balanced"] and tb["total_debit"] == "250.5"
    reversal = client.post(f"/api/v1/ledger/entries/{entry['id']}/reverse", headers=auth,
                           json={})
    assert reversal.status_code == 201 and reversal.get_json()["reverses_id"] == entry["id"]
    again = client.post(f"/api/v1/ledger/entries/{entry['id']}/reverse", headers=auth, json={})
    assert again.status_code == 422 and "already been reversed" in again.get_json()[
        "error"]["message"]
    pl = client.get(f"/api/v1/ledger/reports/profit-and-loss?start={TODAY}&end={TODAY}",
                    headers=auth).get_json()
    assert pl["net_profit"] == "0"
    bs = client.get("/api/v1/ledger/reports/balance-sheet", headers=auth).get_json()
    assert bs["balanced"] is True
    gl = client.get(f"/api/v1/ledger/accounts/{acc['cash']}/ledger?start={TODAY}&end={TODAY}",
                    headers=auth).get_json()
    assert [r["debit"] for r in gl["rows"]] == ["250.5", "0"] and gl["closing"] == "0"


def test_draft_then_post_and_delete(client, api):
    _, auth, acc = api
    draft = _entry(client, auth, acc, post=False).get_json()
    assert draft["status"] == "draft" and draft["number"] is None
    posted = client.post(f"/api/v1/ledger/entries/{draft['id']}/post", headers=auth)
    assert posted.status_code == 200 and posted.get_json()["status"] == "posted"
    refused = client.delete(f"/api/v1/ledger/entries/{draft['id']}", headers=auth)
    assert refused.status_code == 422
    other = _entry(client, auth, acc, post=False).get_json()
    assert client.delete(f"/api/v1/ledger/entries/{other['id']}", headers=auth
                         ).status_code == 204
    listed = client.get("/api/v1/ledger/entries?status=posted", headers=auth).get_json()
    assert listed["total"] == 1


def test_refusals_are_clear_and_write_nothing(client, api, as_tenant):
    t, auth, acc = api
    before = _count(as_tenant, t)
    unbalanced = client.post("/api/v1/ledger/entries", headers=auth, json={
        "entry_date": TODAY.isoformat(), "post": True,
        "lines": [{"account_id": acc["cash"], "debit": "100"},
                  {"account_id": acc["sales"], "credit": "99.99"}]})
    assert unbalanced.status_code == 422
    assert "does not balance" in unbalanced.get_json()["error"]["message"]
    wrong_currency = _entry(client, auth, acc, currency="XYZ")
    assert wrong_currency.status_code == 422
    assert "currency" in str(wrong_currency.get_json()["error"])
    both_sides = _entry(client, auth, acc, credit="5")
    assert both_sides.status_code == 422
    negative = _entry(client, auth, acc, amount="-5")
    assert negative.status_code == 422 and "lines.0.debit" in negative.get_json()[
        "error"]["fields"]
    last_month = (TODAY.replace(day=1) - dt.timedelta(days=1))
    closed = client.post(f"/api/v1/ledger/periods/{last_month:%Y-%m}/close", headers=auth)
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    into_closed = _entry(client, auth, acc, day=last_month)
    assert into_closed.status_code == 422
    assert "closed" in into_closed.get_json()["error"]["message"]
    assert _count(as_tenant, t) == before
    assert client.post("/api/v1/ledger/periods/2026-13/close", headers=auth).status_code == 404


def test_idempotent_posting(client, api, as_tenant):
    t, auth, acc = api
    first = _entry(client, auth, acc, key="je-1")
    second = _entry(client, auth, acc, key="je-1")
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] == second.get_json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _entry(client, auth, acc, "3", key="je-1").status_code == 422
    assert _count(as_tenant, t) == 1


def test_permissions_and_fencing(client, api, db_session, as_tenant, tenant_factory):
    t, auth, acc = api
    _, sales, _ = services.add_member(db_session, t.tenant, email="s@ledger.example.com",
                                      roles=["sales"], password=PASSWORD)
    _, finance, _ = services.add_member(db_session, t.tenant, email="f@ledger.example.com",
                                        roles=["finance"], password=PASSWORD)
    sales_auth, finance_auth = _auth(as_tenant, t, sales.id), _auth(as_tenant, t, finance.id)
    assert client.get("/api/v1/ledger/entries", headers=sales_auth).status_code == 403
    assert _entry(client, sales_auth, acc).status_code == 403
    entry = _entry(client, finance_auth, acc).get_json()
    other = tenant_factory()
    other_auth = _auth(as_tenant, other)
    for method, path in (("get", f"/api/v1/ledger/entries/{entry['id']}"),
                         ("post", f"/api/v1/ledger/entries/{entry['id']}/reverse"),
                         ("post", f"/api/v1/ledger/entries/{entry['id']}/post"),
                         ("patch", f"/api/v1/ledger/accounts/{acc['cash']}"),
                         ("get", f"/api/v1/ledger/accounts/{acc['cash']}/ledger"
                                 f"?start={TODAY}&end={TODAY}")):
        answer = getattr(client, method)(path, headers=other_auth, json={})
        assert answer.status_code == 404, (method, path, answer.get_json())
    # the other tenant's entry cannot be used as a line's account either
    theirs = client.get("/api/v1/ledger/accounts", headers=other_auth).get_json()["items"][0]
    forged = client.post("/api/v1/ledger/entries", headers=auth, json={
        "entry_date": TODAY.isoformat(), "post": True,
        "lines": [{"account_id": theirs["id"], "debit": "1"},
                  {"account_id": acc["sales"], "credit": "1"}]})
    assert forged.status_code == 422


def test_accounts_and_rates(client, api):
    _, auth, _ = api
    created = client.post("/api/v1/ledger/accounts", headers=auth, json={
        "code": "6950", "name": "Software subscriptions", "type": "expense"})
    assert created.status_code == 201
    duplicate = client.post("/api/v1/ledger/accounts", headers=auth, json={
        "code": "6950", "name": "Again", "type": "expense"})
    assert duplicate.status_code == 422 and "6950" in duplicate.get_json()["error"]["message"]
    bad_type = client.post("/api/v1/ledger/accounts", headers=auth, json={
        "code": "7000", "name": "X", "type": "income"})
    assert bad_type.status_code == 422 and "type" in bad_type.get_json()["error"]["fields"]
    rate = client.post("/api/v1/ledger/exchange-rates", headers=auth, json={
        "currency": "USD", "rate_date": TODAY.isoformat(), "rate": "0.92"})
    assert rate.status_code == 201 and rate.get_json()["rate"] == "0.92"
    assert client.post("/api/v1/ledger/exchange-rates", headers=auth, json={
        "currency": "ABC", "rate_date": TODAY.isoformat(), "rate": "1"}).status_code == 422
