"""CRM pages: accounts and contacts through real forms."""

from __future__ import annotations

import re

from app.crm import services as crm
from tenants import services

from .conftest import PASSWORD, csrf_from, login


def _form_token(client, path):
    return csrf_from(client.get(path).get_data(as_text=True))


def test_create_view_edit_and_delete_an_account(client, tenant_factory):
    t = tenant_factory()
    login(client, t.owner.email)
    base = f"/t/{t.slug}/crm"
    token = _form_token(client, f"{base}/accounts/new")
    created = client.post(f"{base}/accounts/new", data={
        "csrf_token": token, "name": "Globex Corp", "website": "globex.example",
        "currency": "EUR", "payment_terms_days": "30", "credit_limit": "10000"})
    assert created.status_code == 302
    detail = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "<h1>Globex Corp</h1>" in detail and "10,000.00 EUR" in detail
    account_id = created.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    edit = client.post(f"{base}/accounts/{account_id}/edit", data={
        "csrf_token": token, "name": "Globex Corporation", "website": "globex.example",
        "currency": "USD", "payment_terms_days": "60", "credit_limit": ""})
    assert edit.status_code == 302
    assert "Globex Corporation" in client.get(f"{base}/accounts").get_data(as_text=True)
    confirm = client.get(f"{base}/accounts/{account_id}/delete").get_data(as_text=True)
    assert "Delete account Globex Corporation?" in confirm
    assert client.get(f"{base}/accounts/{account_id}").status_code == 200  # not yet
    client.post(f"{base}/accounts/{account_id}/delete", data={"csrf_token": csrf_from(confirm)})
    assert client.get(f"{base}/accounts/{account_id}").status_code == 404


def test_duplicate_account_form_links_to_the_existing_one(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        existing = crm.create_account(s, {"name": "Initech LLC", "website": "initech.example",
                                          "currency": "EUR"})
    login(client, t.owner.email)
    token = _form_token(client, f"/t/{t.slug}/crm/accounts/new")
    resp = client.post(f"/t/{t.slug}/crm/accounts/new", data={
        "csrf_token": token, "name": "INITECH", "website": "https://www.initech.example",
        "currency": "EUR", "payment_terms_days": "30"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f'href="/t/{t.slug}/crm/accounts/{existing.id}">Open the existing record' in html


def test_bad_form_input_gets_messages_and_writes_nothing(client, tenant_factory, as_tenant):
    t = tenant_factory()
    login(client, t.owner.email)
    token = _form_token(client, f"/t/{t.slug}/crm/accounts/new")
    resp = client.post(f"/t/{t.slug}/crm/accounts/new", data={
        "csrf_token": token, "name": "", "currency": "EUR", "payment_terms_days": "999",
        "credit_limit": "-5"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert html.count('class="field-error"') >= 3
    with as_tenant(t.ctx) as s:
        assert crm.list_accounts(s).total == 0


def test_accounts_list_searches_sorts_and_pages(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        for i in range(30):
            crm.create_account(s, {"name": f"Company {i:02d}", "currency": "EUR",
                                   "website": f"c{i}.example"})
    login(client, t.owner.email)
    base = f"/t/{t.slug}/crm/accounts"
    first = client.get(base).get_data(as_text=True)
    assert "30 in all · page 1 of 2" in first and "Company 00" in first
    assert "Company 25" not in first
    second = client.get(f"{base}?page=2").get_data(as_text=True)
    assert "Company 29" in second
    desc = client.get(f"{base}?sort=-name").get_data(as_text=True)
    assert desc.index("Company 29") < desc.index("Company 28")
    found = client.get(f"{base}?q=company%2007").get_data(as_text=True)
    assert "1 in all" in found and "Company 07" in found


def test_contacts_with_an_account(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        account = crm.create_account(s, {"name": "Umbrella", "currency": "EUR"})
    login(client, t.owner.email)
    page = client.get(f"/t/{t.slug}/crm/contacts/new?account_id={account.id}")
    html = page.get_data(as_text=True)
    assert re.search(rf'<option selected value="{account.id}">Umbrella</option>', html)
    resp = client.post(f"/t/{t.slug}/crm/contacts/new", data={
        "csrf_token": csrf_from(html), "first_name": "Alice", "last_name": "Abernathy",
        "email": "alice@umbrella.example", "account_id": str(account.id)})
    assert resp.status_code == 302
    account_page = client.get(f"/t/{t.slug}/crm/accounts/{account.id}").get_data(as_text=True)
    assert "Alice Abernathy" in account_page
    dup = client.post(f"/t/{t.slug}/crm/contacts/new", data={
        "csrf_token": csrf_from(html), "last_name": "Other", "email": "ALICE@umbrella.example",
        "account_id": ""})
    assert dup.status_code == 422 and "Open the existing record" in dup.get_data(as_text=True)


def test_crm_pages_are_fenced_and_permissioned(client, two_tenants, as_tenant, db_session):
    a, b = two_tenants
    with as_tenant(b.ctx) as s:
        theirs = crm.create_account(s, {"name": "Theirs", "currency": "EUR"})
    _, viewer, _ = services.add_member(db_session, a.tenant, email="v@crmp.example.com",
                                       roles=["viewer"], password=PASSWORD)
    _, hr, _ = services.add_member(db_session, a.tenant, email="h@crmp.example.com",
                                   roles=["hr"], password=PASSWORD)
    db_session.commit()
    login(client, a.owner.email)
    assert client.get(f"/t/{a.slug}/crm/accounts/{theirs.id}").status_code == 404
    assert client.get(f"/t/{a.slug}/crm/accounts/{theirs.id}/edit").status_code == 404
    token = _form_token(client, f"/t/{a.slug}/crm/accounts")
    assert client.post(f"/t/{a.slug}/crm/accounts/{theirs.id}/delete",
                       data={"csrf_token": token}).status_code == 404
    client.post("/logout", data={"csrf_token": token})
    login(client, viewer.email)
    listing = client.get(f"/t/{a.slug}/crm/accounts").get_data(as_text=True)
    assert "New account" not in listing
    assert client.get(f"/t/{a.slug}/crm/accounts/new").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(listing)})
    login(client, hr.email)
    assert client.get(f"/t/{a.slug}/crm/accounts").status_code == 403
    nav = client.get(f"/t/{a.slug}/").get_data(as_text=True)
    assert ">Accounts</a>" not in nav
