"""Leads, deals and activities: state rules, conversion atomicity, the won event,
history, the database's own refusals, the API's validation and fencing."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select, text

from app.api import tokens
from app.crm import pipeline
from app.crm.models import Account, Contact, Deal, DealStageHistory
from app.events.models import OutboxEvent
from tenants import services

from .conftest import PASSWORD


def _auth(as_tenant, t, user_id=None) -> dict[str, str]:
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, user_id or t.owner.id, "pipeline")
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def api(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    account = client.post("/api/v1/accounts", headers=auth, json={
        "name": "Globex", "currency": "EUR", "website": "globex.example"}).get_json()
    return t, auth, account["id"]


def _deal(client, auth, account, **extra):
    return client.post("/api/v1/deals", headers=auth, json={
        "name": "Globex rollout", "account_id": account, "value": "12000", "currency": "EUR",
        **extra})


def test_tenant_gets_default_stages(client, api):
    _, auth, _ = api
    stages = client.get("/api/v1/deal-stages", headers=auth).get_json()["items"]
    assert [(s["name"], s["probability"], s["is_won"], s["is_lost"]) for s in stages] == [
        ("Discovery", 10, False, False), ("Proposal Sent", 30, False, False),
        ("Negotiation", 60, False, False), ("Won", 100, True, False), ("Lost", 0, False, True)]


def test_stages_history_and_the_won_event(client, api, as_tenant):
    t, auth, account = api
    deal = _deal(client, auth, account).get_json()
    assert (deal["stage"], deal["probability"], deal["status"]) == ("Discovery", 10, "open")
    moved = client.post(f"/api/v1/deals/{deal['id']}/stage", headers=auth,
                        json={"stage": "negotiation"})
    assert moved.status_code == 200 and moved.get_json()["probability"] == 60
    won = client.post(f"/api/v1/deals/{deal['id']}/stage", headers=auth, json={"stage": "Won"})
    assert won.get_json()["status"] == "won" and won.get_json()["closed_at"]
    again = client.post(f"/api/v1/deals/{deal['id']}/stage", headers=auth,
                        json={"stage": "Discovery"})
    assert again.status_code == 409 and "won" in again.get_json()["error"]["message"]
    edit = client.patch(f"/api/v1/deals/{deal['id']}", headers=auth, json={"value": "1"})
    assert edit.status_code == 409
    history = client.get(f"/api/v1/deals/{deal['id']}/history", headers=auth).get_json()
    assert [(h["from_stage"], h["to_stage"]) for h in history["items"]] == [
        (None, "Discovery"), ("Discovery", "Negotiation"), ("Negotiation", "Won")]
    assert all(h["changed_by"] == str(t.owner.id) for h in history["items"])
    with as_tenant(t.ctx) as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "crm.deal.won")
                           ).all()
        assert len(events) == 1
        assert events[0].payload["deal_id"] == deal["id"]
        assert events[0].payload["value"].startswith("12000")


def test_lost_needs_a_reason(client, api):
    _, auth, account = api
    deal = _deal(client, auth, account).get_json()
    no_reason = client.post(f"/api/v1/deals/{deal['id']}/stage", headers=auth,
                            json={"stage": "Lost"})
    assert no_reason.status_code == 422 and "lost_reason" in no_reason.get_json()["error"][
        "fields"]
    lost = client.post(f"/api/v1/deals/{deal['id']}/stage", headers=auth,
                       json={"stage": "Lost", "lost_reason": "Went with a competitor"})
    assert lost.get_json()["status"] == "lost"
    assert lost.get_json()["lost_reason"] == "Went with a competitor"
    unknown = client.post(f"/api/v1/deals/{deal['id']}/stage", headers=auth,
                          json={"stage": "Limbo"})
    assert unknown.status_code == 422


def test_the_database_refuses_leaving_a_terminal_stage(database, client, api, as_tenant):
    """Whatever code tries: an UPDATE by the app role out of Won fails."""
    t, auth, account = api
    deal = _deal(client, auth, account).get_json()
    client.post(f"/api/v1/deals/{deal['id']}/stage", headers=auth, json={"stage": "Won"})
    with as_tenant(t.ctx) as s:
        discovery = pipeline.stage_by_name(s, "Discovery").id
        with pytest.raises(Exception, match="closed"), s.begin_nested():
            s.execute(text("UPDATE crm.deals SET stage_id = :s WHERE id = :d"),
                      {"s": discovery, "d": deal["id"]})
        # history is append-only for the app role
        with pytest.raises(Exception, match="permission denied"), s.begin_nested():
            s.execute(text("UPDATE crm.deal_stage_history SET to_stage_id = :s"),
                      {"s": discovery})
        assert s.scalar(select(Deal.stage_id).where(Deal.id == deal["id"])) != discovery
    assert isinstance(psycopg.__version__, str)


def test_lead_conversion_is_all_or_nothing(client, api, as_tenant):
    t, auth, _ = api
    lead = client.post("/api/v1/leads", headers=auth, json={
        "name": "Jane Roe", "company": "Initech", "email": "jane@initech.example"}).get_json()
    assert lead["source"] == "Web Page Form" and lead["status"] == "new"
    early = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=auth, json={})
    assert early.status_code == 409 and "qualified" in early.get_json()["error"]["message"]
    client.patch(f"/api/v1/leads/{lead['id']}", headers=auth, json={"status": "qualified"})
    with as_tenant(t.ctx) as s:
        before = (s.scalar(select(func.count()).select_from(Account)),
                  s.scalar(select(func.count()).select_from(Contact)))
    bad = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=auth,
                      json={"currency": "ZZZ"})
    assert bad.status_code in (409, 422)
    with as_tenant(t.ctx) as s:
        after = (s.scalar(select(func.count()).select_from(Account)),
                 s.scalar(select(func.count()).select_from(Contact)))
        assert after == before  # the failing deal took the account and contact with it
    done = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=auth,
                       json={"value": "5000", "currency": "EUR"})
    assert done.status_code == 201
    body = done.get_json()
    assert body["lead"]["status"] == "converted" and body["deal"]["value"] == "5000"
    assert body["lead"]["converted_deal_id"] == body["deal"]["id"]
    assert body["reused_account"] is False
    twice = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=auth, json={})
    assert twice.status_code == 409
    relabel = client.patch(f"/api/v1/leads/{lead['id']}", headers=auth, json={"status": "new"})
    assert relabel.status_code == 422
    # a second lead from the same person reuses the contact and its account
    other = client.post("/api/v1/leads", headers=auth, json={
        "name": "Jane Roe", "email": "JANE@initech.example", "status": "qualified"}).get_json()
    reuse = client.post(f"/api/v1/leads/{other['id']}/convert", headers=auth, json={}).get_json()
    assert reuse["reused_contact"] and reuse["reused_account"]
    assert reuse["contact_id"] == body["contact_id"]


def test_activities_and_filters(client, api):
    _, auth, account = api
    deal = _deal(client, auth, account).get_json()
    call = client.post("/api/v1/activities", headers=auth, json={
        "kind": "call", "subject": "Intro call", "deal_id": deal["id"]})
    assert call.status_code == 201
    task = client.post("/api/v1/activities", headers=auth, json={
        "kind": "task", "subject": "Send proposal", "account_id": account,
        "due_at": "2026-12-01T09:00:00Z"}).get_json()
    loose = client.post("/api/v1/activities", headers=auth, json={
        "kind": "note", "subject": "Orphan"})
    assert loose.status_code == 422 and "deal_id" in loose.get_json()["error"]["fields"]
    open_tasks = client.get("/api/v1/activities?open_tasks=true", headers=auth).get_json()
    assert [a["subject"] for a in open_tasks["items"]] == ["Send proposal"]
    client.post(f"/api/v1/activities/{task['id']}/done", headers=auth, json={"done": True})
    assert client.get("/api/v1/activities?open_tasks=true", headers=auth).get_json()[
        "total"] == 0
    on_deal = client.get(f"/api/v1/activities?deal_id={deal['id']}", headers=auth).get_json()
    assert [a["subject"] for a in on_deal["items"]] == ["Intro call"]
    _deal(client, auth, account, name="Second", stage="Proposal Sent")
    listed = client.get("/api/v1/deals?stage=Proposal%20Sent", headers=auth).get_json()
    assert [d["name"] for d in listed["items"]] == ["Second"] and listed["total"] == 1
    opened = client.get("/api/v1/deals?status=open&sort=-value", headers=auth).get_json()
    assert opened["total"] == 2
    closed = _deal(client, auth, account, stage="Won")
    assert closed.status_code == 422  # a new deal starts open


def test_permissions_validation_and_fencing(client, api, db_session, as_tenant, tenant_factory):
    t, auth, account = api
    deal = _deal(client, auth, account).get_json()
    _, wh, _ = services.add_member(db_session, t.tenant, email="w@deals.example.com",
                                   roles=["warehouse"], password=PASSWORD)
    _, viewer, _ = services.add_member(db_session, t.tenant, email="v@deals.example.com",
                                       roles=["viewer"], password=PASSWORD)
    wh_auth, viewer_auth = _auth(as_tenant, t, wh.id), _auth(as_tenant, t, viewer.id)
    assert client.get("/api/v1/deals", headers=wh_auth).status_code == 403
    assert client.get("/api/v1/deals", headers=viewer_auth).status_code == 200
    assert client.post(f"/api/v1/deals/{deal['id']}/stage", headers=viewer_auth,
                       json={"stage": "Won"}).status_code == 403
    bad = _deal(client, auth, account, value="-1", currency="EURO")
    assert bad.status_code == 422 and {"value", "currency"} <= set(bad.get_json()["error"][
        "fields"])
    other_auth = _auth(as_tenant, tenant_factory())
    for method, path, body in (
            ("get", f"/api/v1/deals/{deal['id']}", None),
            ("patch", f"/api/v1/deals/{deal['id']}", {"name": "x"}),
            ("post", f"/api/v1/deals/{deal['id']}/stage", {"stage": "Won"}),
            ("get", f"/api/v1/deals/{deal['id']}/history", None),
            ("delete", f"/api/v1/deals/{deal['id']}", None)):
        answer = getattr(client, method)(path, headers=other_auth, json=body)
        assert answer.status_code == 404, (method, path)
    forged = _deal(client, other_auth, account)
    assert forged.status_code == 422  # not their account
    with as_tenant(t.ctx) as s:
        assert s.scalar(select(func.count()).select_from(DealStageHistory)) == 1
