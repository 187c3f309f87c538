"""Leads, deals and the board through the portal's forms."""

from __future__ import annotations

from app.crm import pipeline
from app.crm import services as crm
from tenants import services

from .conftest import PASSWORD, csrf_from, login


def test_lead_to_deal_to_won_on_the_board(client, tenant_factory, as_tenant):
    t = tenant_factory()
    login(client, t.owner.email)
    base = f"/t/{t.slug}/crm"
    page = client.get(f"{base}/leads")
    token = csrf_from(page.get_data(as_text=True))
    missing = client.post(f"{base}/leads", data={"csrf_token": token, "name": "",
                                                 "status": "new"})
    assert missing.status_code == 422 and "needs a name" in missing.get_data(as_text=True)
    added = client.post(f"{base}/leads", data={
        "csrf_token": token, "name": "Jane Roe", "company": "Initech",
        "email": "jane@initech.example", "source": "Trade fair", "status": "new"})
    assert added.status_code == 302
    lead_url = added.headers["Location"]
    early = client.post(lead_url, data={"csrf_token": token, "action": "convert", "value": "1"})
    assert early.status_code == 422 and "qualified" in early.get_data(as_text=True)
    client.post(lead_url, data={"csrf_token": token, "action": "status", "status": "qualified"})
    converted = client.post(lead_url, data={"csrf_token": token, "action": "convert",
                                            "value": "9000"})
    assert converted.status_code == 302 and "/crm/deals/" in converted.headers["Location"]
    deal_page = client.get(converted.headers["Location"]).get_data(as_text=True)
    assert "Initech" in deal_page and "Discovery · 10%" in deal_page
    board = client.get(f"{base}/board").get_data(as_text=True)
    assert 'data-stage="Discovery"' in board and "9,000.00" in board
    with as_tenant(t.ctx) as s:
        deal = pipeline.list_deals(s).items[0]
        won = pipeline.stage_by_name(s, "Won")
        lost = pipeline.stage_by_name(s, "Lost")
    no_reason = client.post(f"{base}/deals/{deal.id}/stage",
                            data={"csrf_token": token, "stage_id": str(lost.id)})
    assert no_reason.status_code == 422 and "why the deal was lost" in no_reason.get_data(
        as_text=True)
    moved = client.post(f"{base}/deals/{deal.id}/stage", data={
        "csrf_token": token, "stage_id": str(won.id), "from": "board"})
    assert moved.status_code == 302 and moved.headers["Location"].endswith("/crm/board")
    after = client.get(f"/t/{t.slug}/crm/deals/{deal.id}").get_data(as_text=True)
    assert "Won · 100%" in after and "Discovery → Won" in after
    logged = client.post(f"{base}/deals/{deal.id}/activities", data={
        "csrf_token": token, "kind": "call", "subject": "Thank-you call"})
    assert logged.status_code == 302
    assert "Thank-you call" in client.get(f"{base}/deals/{deal.id}").get_data(as_text=True)


def test_deal_pages_need_deals_permission_and_are_fenced(client, tenant_factory, as_tenant,
                                                         db_session):
    t, other = tenant_factory(), tenant_factory()
    with as_tenant(other.ctx) as s:
        account = crm.create_account(s, {"name": "Theirs", "currency": "EUR"})
        theirs = pipeline.create_deal(s, {"name": "Their deal", "account_id": account.id,
                                          "currency": "EUR"})
    services.add_member(db_session, t.tenant, email="wh@pipeline.example.com",
                        roles=["warehouse"], password=PASSWORD)
    login(client, t.owner.email)
    assert client.get(f"/t/{t.slug}/crm/deals/{theirs.id}").status_code == 404
    token = csrf_from(client.get(f"/t/{t.slug}/crm/deals").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    login(client, "wh@pipeline.example.com")
    for path in ("deals", "board", "leads"):
        assert client.get(f"/t/{t.slug}/crm/{path}").status_code == 403
