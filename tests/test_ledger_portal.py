"""Ledger pages: chart of accounts, the journal entry form, reports, periods."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from app.ledger import services as ledger
from app.ledger.models import JournalEntry
from tenants import services

from .conftest import PASSWORD, csrf_from, login

TODAY = dt.date.today()


def _ids(as_tenant, t):
    with as_tenant(t.ctx) as s:
        return {role: str(ledger.account_for(s, role).id) for role in ("cash", "sales", "wages")}


def _lines(token, acc, rows, day=TODAY, action="post"):
    data = {"csrf_token": token, "entry_date": day.isoformat(), "description": "Till",
            "action": action}
    for i, (account, debit, credit) in enumerate(rows):
        data |= {f"account_id-{i}": acc[account], f"debit-{i}": debit, f"credit-{i}": credit}
    return data


def test_journal_form_posts_and_refuses_unbalanced_input(client, tenant_factory, as_tenant):
    t = tenant_factory()
    acc = _ids(as_tenant, t)
    login(client, t.owner.email)
    base = f"/t/{t.slug}/ledger"
    form = client.get(f"{base}/entries/new")
    assert form.status_code == 200 and "New journal entry" in form.get_data(as_text=True)
    token = csrf_from(form.get_data(as_text=True))
    refused = client.post(f"{base}/entries/new", data=_lines(
        token, acc, [("cash", "100.00", ""), ("sales", "", "99.99")]))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "does not balance" in html and "difference 0.01" in html
    assert 'value="99.99"' in html  # what was typed is kept
    with as_tenant(t.ctx) as s:
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == 0
    bad_number = client.post(f"{base}/entries/new", data=_lines(
        token, acc, [("cash", "ten", ""), ("sales", "", "10")]))
    assert bad_number.status_code == 422 and "amounts and rates are numbers" in \
        bad_number.get_data(as_text=True)
    posted = client.post(f"{base}/entries/new", data=_lines(
        token, acc, [("cash", "100.00", ""), ("sales", "", "100.00")]))
    assert posted.status_code == 302
    entry_page = client.get(posted.headers["Location"]).get_data(as_text=True)
    assert f"JE-{TODAY.year}-000001" in entry_page and "posted" in entry_page
    entry_id = posted.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    reversed_ = client.post(f"{base}/entries/{entry_id}/reverse",
                            data={"csrf_token": token, "on_date": TODAY.isoformat()})
    assert reversed_.status_code == 302
    listing = client.get(f"{base}/entries").get_data(as_text=True)
    assert f"JE-{TODAY.year}-000002" in listing
    reports = client.get(f"{base}/reports").get_data(as_text=True)
    assert "Debits equal credits." in reports and "Trial balance" in reports


def test_closed_period_refuses_postings_from_the_form(client, tenant_factory, as_tenant):
    t = tenant_factory()
    acc = _ids(as_tenant, t)
    login(client, t.owner.email)
    base = f"/t/{t.slug}/ledger"
    token = csrf_from(client.get(f"{base}/reports").get_data(as_text=True))
    last = TODAY.replace(day=1) - dt.timedelta(days=1)
    closed = client.post(f"{base}/periods/{last.year}/{last.month}/close",
                         data={"csrf_token": token})
    assert closed.status_code == 302
    refused = client.post(f"{base}/entries/new", data=_lines(
        token, acc, [("wages", "10", ""), ("cash", "", "10")], day=last))
    assert refused.status_code == 422 and "closed" in refused.get_data(as_text=True)


def test_chart_of_accounts_and_permissions(client, tenant_factory, db_session, as_tenant):
    t = tenant_factory()
    login(client, t.owner.email)
    base = f"/t/{t.slug}/ledger"
    page = client.get(f"{base}/accounts")
    assert page.status_code == 200 and "Accounts receivable" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    added = client.post(f"{base}/accounts", data={"csrf_token": token, "code": "6950",
                                                  "name": "Software", "type": "expense"})
    assert added.status_code == 302
    again = client.post(f"{base}/accounts", data={"csrf_token": token, "code": "6950",
                                                  "name": "Again", "type": "expense"})
    assert again.status_code == 422 and "6950" in again.get_data(as_text=True)
    services.add_member(db_session, t.tenant, email="w@ledger-portal.example.com",
                        roles=["warehouse"], password=PASSWORD)
    services.add_member(db_session, t.tenant, email="v@ledger-portal.example.com",
                        roles=["viewer"], password=PASSWORD)
    client.post("/logout", data={"csrf_token": token})
    login(client, "w@ledger-portal.example.com")
    assert client.get(f"{base}/entries").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client.get(f"/t/{t.slug}/").get_data(
        as_text=True))})
    login(client, "v@ledger-portal.example.com")
    assert client.get(f"{base}/entries").status_code == 200
    assert client.get(f"{base}/entries/new").status_code == 403


def test_another_tenants_entry_is_404(client, tenant_factory, as_tenant):
    t, other = tenant_factory(), tenant_factory()
    with as_tenant(other.ctx) as s:
        theirs = ledger.post_entry(s, entry_date=TODAY, description="x", lines=[
            ledger.LineInput(ledger.account_for(s, "cash").id, debit=1),
            ledger.LineInput(ledger.account_for(s, "sales").id, credit=1)])
    login(client, t.owner.email)
    assert client.get(f"/t/{t.slug}/ledger/entries/{theirs.id}").status_code == 404
    assert client.get(f"/t/{t.slug}/ledger/entries/not-a-uuid").status_code == 404
