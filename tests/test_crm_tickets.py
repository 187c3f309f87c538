"""Support tickets: status rules, numbering, comments, API, portal, isolation."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from app.api import tokens
from app.crm import services as crm
from app.crm import tickets
from app.crm.tickets import TicketError
from tenants import services
from tenants.context import TenantContext
from tenants.permissions import permissions_for

from .conftest import PASSWORD, csrf_from, login


def _auth(as_tenant, t, user_id=None) -> dict[str, str]:
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, user_id or t.owner.id, "tickets")
    return {"Authorization": f"Bearer {value}"}


def _ctx(t, user, roles) -> TenantContext:
    return TenantContext(tenant_id=t.id, tenant_slug=t.slug, user_id=user.id,
                         roles=frozenset(roles), permissions=permissions_for(roles))


@pytest.fixture
def api(tenant_factory, as_tenant):
    t = tenant_factory()
    return t, _auth(as_tenant, t)


def _open(client, auth, **fields):
    return client.post("/api/v1/tickets", headers=auth,
                       json={"subject": "Printer on fire", **fields})


# --- rules in the service -----------------------------------------------------------------


def test_numbers_are_gapless_per_tenant(two_tenants, as_tenant):
    a, b = two_tenants
    with as_tenant(a.ctx) as s:
        first = [tickets.create_ticket(s, {"subject": f"A{i}"}).number for i in range(3)]
    with as_tenant(b.ctx) as s:
        other = tickets.create_ticket(s, {"subject": "B"}).number
    assert first == [1, 2, 3] and other == 1


def test_a_refused_ticket_gives_its_number_back(tenant_factory, as_tenant, db_session):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        tickets.create_ticket(s, {"subject": "one"})
    with as_tenant(t.ctx) as s:
        with pytest.raises(TicketError):
            with s.begin_nested():
                tickets.create_ticket(s, {"subject": "   "})
        assert tickets.create_ticket(s, {"subject": "two"}).number == 2


def test_status_transitions(tenant_factory, as_tenant, db_session):
    t = tenant_factory()
    _, agent, _ = services.add_member(db_session, t.tenant, email="agent@tix.example.com",
                                      roles=["sales"], password=PASSWORD)
    with as_tenant(_ctx(t, agent, ["sales"])) as s:
        ticket = tickets.create_ticket(s, {"subject": "Broken"})
        assert ticket.status == "open" and ticket.resolved_at is None
        tickets.change_status(s, ticket, "pending")
        tickets.change_status(s, ticket, "resolved")
        resolved_at = ticket.resolved_at
        assert resolved_at is not None and ticket.closed_at is None
        tickets.change_status(s, ticket, "open")  # the customer came back
        assert ticket.resolved_at is None
        tickets.change_status(s, ticket, "closed")  # straight from open
        assert ticket.resolved_at is not None and ticket.closed_at is not None
        with pytest.raises(TicketError, match="only by an administrator"):
            tickets.change_status(s, ticket, "open")
        with pytest.raises(TicketError, match="a closed ticket cannot be changed"):
            tickets.update_ticket(s, ticket, {"subject": "Still broken"})
        with pytest.raises(TicketError, match="no more comments"):
            tickets.add_comment(s, ticket, "hello?")
        tickets.update_ticket(s, ticket, {"subject": ticket.subject})  # no change: fine
        with pytest.raises(TicketError, match="status is one of"):
            tickets.change_status(s, ticket, "deleted")
        assert tickets.allowed_statuses(ticket) == []
    with as_tenant(t.ctx) as s:  # the owner may reopen
        ticket = tickets.get_ticket(s, ticket.id)
        assert tickets.allowed_statuses(ticket) == ["open"]
        tickets.change_status(s, ticket, "open")
        assert (ticket.status, ticket.resolved_at, ticket.closed_at) == ("open", None, None)
        tickets.change_status(s, ticket, "resolved")
        with pytest.raises(TicketError, match="a resolved ticket cannot become pending"):
            tickets.change_status(s, ticket, "pending")


def test_database_checks_values_and_timestamps(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ticket = tickets.create_ticket(s, {"subject": "x"})
    for statement in ("UPDATE crm.tickets SET status = 'deleted' WHERE id = :id",
                      "UPDATE crm.tickets SET priority = 'meh' WHERE id = :id",
                      "UPDATE crm.tickets SET status = 'closed' WHERE id = :id"):
        with as_tenant(t.ctx) as s:
            with pytest.raises(DBAPIError, match="check constraint"):
                with s.begin_nested():
                    s.execute(sa.text(statement), {"id": ticket.id})


def test_comments_are_append_only_and_stamp_first_response(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ticket = tickets.create_ticket(s, {"subject": "Slow"})
        tickets.add_comment(s, ticket, "looking into it with the team", internal=True)
        assert ticket.first_response_at is None  # an internal note is no response
        public = tickets.add_comment(s, ticket, "We are on it.")
        assert ticket.first_response_at == public.created_at
        tickets.add_comment(s, ticket, "Fixed.")
        assert ticket.first_response_at == public.created_at
        assert [c.body for c in tickets.list_comments(s, ticket)] == [
            "looking into it with the team", "We are on it.", "Fixed."]
        assert len(tickets.list_comments(s, ticket, include_internal=False)) == 2
        with pytest.raises(TicketError):
            tickets.add_comment(s, ticket, "  ")
    for statement in ("UPDATE crm.ticket_comments SET body = 'edited'",
                      "DELETE FROM crm.ticket_comments"):
        with as_tenant(t.ctx) as s:
            with pytest.raises(DBAPIError, match="permission denied"):
                with s.begin_nested():
                    s.execute(sa.text(statement))


def test_links_and_assignee_are_checked(tenant_factory, as_tenant, db_session):
    t = tenant_factory()
    other = tenant_factory()
    _, stranger, _ = services.add_member(db_session, other.tenant, email="s@other.example.com",
                                         roles=["sales"], password=PASSWORD)
    with as_tenant(other.ctx) as s:
        their_account = crm.create_account(s, {"name": "Theirs", "currency": "EUR"})
    with as_tenant(t.ctx) as s:
        acme = crm.create_account(s, {"name": "Acme", "currency": "EUR"})
        globex = crm.create_account(s, {"name": "Globex", "currency": "EUR"})
        ada = crm.create_contact(s, {"last_name": "Lovelace", "account_id": acme.id})
        ticket = tickets.create_ticket(s, {"subject": "x", "contact_id": ada.id,
                                           "assignee_id": t.owner.id})
        assert ticket.account_id == acme.id  # taken from the contact
        for bad, field in (({"account_id": their_account.id}, "account_id"),
                           ({"account_id": globex.id, "contact_id": ada.id}, "contact_id"),
                           ({"assignee_id": stranger.id}, "assignee_id")):
            with pytest.raises(TicketError) as refused:
                tickets.create_ticket(s, {"subject": "y", **bad})
            assert refused.value.field == field


def test_queue_order_is_priority_then_age(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        for subject, priority in (("old low", "low"), ("old normal", "normal"),
                                  ("urgent", "urgent"), ("new normal", "normal"),
                                  ("high", "high")):
            tickets.create_ticket(s, {"subject": subject, "priority": priority})
            s.execute(sa.text("SELECT pg_sleep(0.002)"))
            s.commit()
        page = tickets.list_tickets(s)
    assert [x.subject for x in page.items] == ["urgent", "high", "old normal", "new normal",
                                               "old low"]


# --- API ------------------------------------------------------------------------------------


def test_ticket_api_lifecycle(client, api):
    t, auth = api
    created = _open(client, auth, priority="high", description="Smoke",
                    assignee_id=str(t.owner.id))
    assert created.status_code == 201
    body = created.get_json()
    assert (body["number"], body["status"], body["priority"]) == (1, "open", "high")
    assert body["custom"] == {} and body["created_by_id"] == str(t.owner.id)
    ticket_url = f"/api/v1/tickets/{body['id']}"
    assert client.get(ticket_url, headers=auth).get_json() == body
    patched = client.patch(ticket_url, headers=auth, json={"status": "pending",
                                                           "subject": "Printer smoking"})
    assert patched.status_code == 200
    assert (patched.get_json()["status"], patched.get_json()["subject"]) == (
        "pending", "Printer smoking")
    comment = client.post(f"{ticket_url}/comments", headers=auth,
                          json={"body": "Unplug it", "internal": False})
    assert comment.status_code == 201 and comment.get_json()["author_id"] == str(t.owner.id)
    thread = client.get(f"{ticket_url}/comments", headers=auth).get_json()
    assert thread["total"] == 1 and thread["items"][0]["body"] == "Unplug it"
    assert client.get(ticket_url, headers=auth).get_json()["first_response_at"] is not None
    closed = client.patch(ticket_url, headers=auth, json={"status": "closed"})
    assert closed.get_json()["resolved_at"] is not None


def test_ticket_api_validation(client, api):
    _, auth = api
    for payload, field in (({"subject": ""}, "subject"),
                           ({"subject": "x", "priority": "asap"}, "priority"),
                           ({"subject": "x", "status": "closed"}, "status"),
                           ({"subject": "x", "assignee_id": "not-a-uuid"}, "assignee_id"),
                           ({"subject": "x", "assignee_id": "01a20000-0000-7000-8000-"
                                                            "000000000000"}, "assignee_id")):
        resp = client.post("/api/v1/tickets", headers=auth, json=payload)
        assert resp.status_code == 422, payload
        assert field in resp.get_json()["error"]["fields"], resp.get_json()
    ticket = _open(client, auth).get_json()
    client.patch(f"/api/v1/tickets/{ticket['id']}", headers=auth, json={"status": "resolved"})
    refused = client.patch(f"/api/v1/tickets/{ticket['id']}", headers=auth,
                           json={"status": "pending"})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"] == {
        "status": "a resolved ticket cannot become pending"}
    empty = client.post(f"/api/v1/tickets/{ticket['id']}/comments", headers=auth,
                        json={"body": ""})
    assert empty.status_code == 422 and "body" in empty.get_json()["error"]["fields"]
    assert client.get("/api/v1/tickets?status=gone", headers=auth).status_code == 422
    assert client.get("/api/v1/tickets?colour=red", headers=auth).status_code == 422


def test_idempotent_ticket_and_comment_posts(client, api):
    _, auth = api
    key = {**auth, "Idempotency-Key": "ticket-1"}
    first = client.post("/api/v1/tickets", headers=key, json={"subject": "Once"})
    again = client.post("/api/v1/tickets", headers=key, json={"subject": "Once"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/api/v1/tickets", headers=key, json={"subject": "Twice"})
    assert other.status_code == 422
    assert client.get("/api/v1/tickets", headers=auth).get_json()["total"] == 1
    url = f"/api/v1/tickets/{first.get_json()['id']}/comments"
    ckey = {**auth, "Idempotency-Key": "comment-1"}
    assert client.post(url, headers=ckey, json={"body": "hi"}).status_code == 201
    assert client.post(url, headers=ckey, json={"body": "hi"}).status_code == 201
    assert client.get(url, headers=auth).get_json()["total"] == 1


def test_list_filters_sort_and_pages(client, api, db_session, as_tenant):
    t, auth = api
    account = client.post("/api/v1/accounts", headers=auth,
                          json={"name": "Acme", "currency": "EUR"}).get_json()
    ids = {}
    for subject, priority, assignee, acct in (
            ("a", "low", None, None), ("b", "urgent", str(t.owner.id), account["id"]),
            ("c", "normal", str(t.owner.id), None), ("d", "urgent", None, None)):
        ids[subject] = _open(client, auth, subject=subject, priority=priority,
                             assignee_id=assignee, account_id=acct).get_json()["id"]
    client.patch(f"/api/v1/tickets/{ids['d']}", headers=auth, json={"status": "resolved"})

    def subjects(**params):
        resp = client.get(f"/api/v1/tickets?{urlencode(params)}", headers=auth)
        assert resp.status_code == 200, resp.get_json()
        return [i["subject"] for i in resp.get_json()["items"]], resp.get_json()["total"]

    assert subjects() == (["b", "d", "c", "a"], 4)
    assert subjects(status="active") == (["b", "c", "a"], 3)
    assert subjects(status="resolved") == (["d"], 1)
    assert subjects(priority="urgent") == (["b", "d"], 2)
    assert subjects(assignee_id=str(t.owner.id)) == (["b", "c"], 2)
    assert subjects(account_id=account["id"]) == (["b"], 1)
    assert subjects(sort="-number") == (["d", "c", "b", "a"], 4)
    assert subjects(sort="number", per_page=2, page=2) == (["c", "d"], 4)
    assert subjects(updated_since="2999-01-01T00:00:00+00:00") == ([], 0)


def test_another_tenants_tickets_are_404(client, api, tenant_factory, as_tenant):
    _, auth = api
    other = tenant_factory()
    other_auth = _auth(as_tenant, other)
    theirs = _open(client, other_auth).get_json()
    their_account = client.post("/api/v1/accounts", headers=other_auth,
                                json={"name": "Theirs", "currency": "EUR"}).get_json()
    base = f"/api/v1/tickets/{theirs['id']}"
    for method, path, body in (("get", base, None), ("patch", base, {"subject": "mine"}),
                               ("get", f"{base}/comments", None),
                               ("post", f"{base}/comments", {"body": "hello"}),
                               ("get", "/api/v1/tickets/not-a-uuid", None)):
        resp = getattr(client, method)(path, headers=auth, json=body)
        assert resp.status_code == 404, (method, path)
    forged = _open(client, auth, account_id=their_account["id"])
    assert forged.status_code == 422 and "account_id" in forged.get_json()["error"]["fields"]
    assert client.get("/api/v1/tickets", headers=auth).get_json()["total"] == 0
    assert client.get(base, headers=other_auth).get_json()["subject"] == "Printer on fire"


def test_ticket_permissions(client, api, db_session, as_tenant):
    t, auth = api
    ticket = _open(client, auth).get_json()
    _, viewer, _ = services.add_member(db_session, t.tenant, email="v@tix.example.com",
                                       roles=["viewer"], password=PASSWORD)
    _, hr, _ = services.add_member(db_session, t.tenant, email="h@tix.example.com",
                                   roles=["hr"], password=PASSWORD)
    _, sales, _ = services.add_member(db_session, t.tenant, email="s@tix.example.com",
                                      roles=["sales"], password=PASSWORD)
    viewer_auth, hr_auth = _auth(as_tenant, t, viewer.id), _auth(as_tenant, t, hr.id)
    sales_auth = _auth(as_tenant, t, sales.id)
    url = f"/api/v1/tickets/{ticket['id']}"
    assert client.get("/api/v1/tickets", headers=viewer_auth).status_code == 200
    assert _open(client, viewer_auth).status_code == 403
    assert client.post(f"{url}/comments", headers=viewer_auth,
                       json={"body": "x"}).status_code == 403
    assert client.get("/api/v1/tickets", headers=hr_auth).status_code == 403
    assert client.patch(url, headers=sales_auth, json={"status": "closed"}).status_code == 200
    reopen = client.patch(url, headers=sales_auth, json={"status": "open"})
    assert reopen.status_code == 422
    assert client.patch(url, headers=auth, json={"status": "open"}).status_code == 200


def test_every_route_documents_itself(app):
    routes = {r.endpoint for r in app.url_map.iter_rules()
              if r.rule.startswith(("/api/v1/tickets", "/api/v1/custom-fields"))}
    assert len(routes) == 12
    for endpoint in routes:
        spec = app.view_functions[endpoint].__api_doc__
        assert spec["summary"] and spec["status"] in (200, 201, 204), endpoint
        if endpoint != "api.delete_custom_field":
            assert spec["response"] is not None, endpoint


# --- portal ------------------------------------------------------------------------------------


def test_portal_ticket_flow(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        crm.create_account(s, {"name": "Acme", "currency": "EUR"})
    login(client, t.owner.email)
    base = f"/t/{t.slug}/crm/tickets"
    page = client.get(f"{base}/new")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    bad = client.post(f"{base}/new", data={"csrf_token": token, "subject": "",
                                           "priority": "normal"})
    assert bad.status_code == 422 and "field-error" in bad.get_data(as_text=True)
    created = client.post(f"{base}/new", data={
        "csrf_token": token, "subject": "VPN down", "priority": "urgent",
        "assignee_id": str(t.owner.id), "description": "Nobody can connect"})
    assert created.status_code == 302
    detail_url = created.headers["Location"]
    detail = client.get(detail_url).get_data(as_text=True)
    assert "#1 VPN down" in detail and "No comments yet." in detail
    ticket_path = detail_url.split("?")[0]
    assert client.post(f"{ticket_path}/comments", data={
        "csrf_token": token, "body": "Rebooting the gateway"}).status_code == 302
    assert client.post(f"{ticket_path}/comments", data={
        "csrf_token": token, "body": ""}).status_code == 422
    assert client.post(f"{ticket_path}/status", data={
        "csrf_token": token, "status": "resolved"}).status_code == 302
    refused = client.post(f"{ticket_path}/status", data={"csrf_token": token,
                                                         "status": "pending"})
    assert refused.status_code == 422
    assert "a resolved ticket cannot become pending" in refused.get_data(as_text=True)
    assert client.post(f"{ticket_path}/assign", data={
        "csrf_token": token, "assignee_id": ""}).status_code == 302
    detail = client.get(ticket_path).get_data(as_text=True)
    assert "Rebooting the gateway" in detail and 'id="ticket-assignee">Unassigned' in detail
    assert ">Resolved<" in detail


def test_portal_queue_filters(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        tickets.create_ticket(s, {"subject": "mine-low", "priority": "low",
                                  "assignee_id": t.owner.id})
        tickets.create_ticket(s, {"subject": "nobody-urgent", "priority": "urgent"})
        done = tickets.create_ticket(s, {"subject": "done-high", "priority": "high"})
        tickets.change_status(s, done, "resolved")
    login(client, t.owner.email)
    base = f"/t/{t.slug}/crm/tickets"

    def rows(query=""):
        html = client.get(f"{base}{query}").get_data(as_text=True)
        return re.findall(r">((?:mine|nobody|done)-\w+)</a>", html)

    assert rows() == ["nobody-urgent", "mine-low"]
    assert rows("?view=mine") == ["mine-low"]
    assert rows("?view=unassigned") == ["nobody-urgent"]
    assert rows("?status=all") == ["nobody-urgent", "done-high", "mine-low"]
    assert rows("?status=all&priority=high") == ["done-high"]


def test_portal_roles_and_isolation(client, tenant_factory, as_tenant, db_session):
    t = tenant_factory()
    other = tenant_factory()
    with as_tenant(other.ctx) as s:
        theirs = tickets.create_ticket(s, {"subject": "Theirs"})
    _, viewer, _ = services.add_member(db_session, t.tenant, email="v@tixp.example.com",
                                       roles=["viewer"], password=PASSWORD)
    _, hr, _ = services.add_member(db_session, t.tenant, email="h@tixp.example.com",
                                   roles=["hr"], password=PASSWORD)
    login(client, t.owner.email)
    assert client.get(f"/t/{t.slug}/crm/tickets/{theirs.id}").status_code == 404
    assert client.get(f"/t/{t.slug}/crm/tickets/{theirs.id}/edit").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_from(
        client.get(f"/t/{t.slug}/crm/tickets").get_data(as_text=True))})
    login(client, viewer.email)
    assert client.get(f"/t/{t.slug}/crm/tickets").status_code == 200
    assert client.get(f"/t/{t.slug}/crm/tickets/new").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(
        client.get(f"/t/{t.slug}/crm/tickets").get_data(as_text=True))})
    login(client, hr.email)
    assert client.get(f"/t/{t.slug}/crm/tickets").status_code == 403


def test_a_ticket_stays_workable_when_its_links_go_away(tenant_factory, as_tenant, db_session):
    t = tenant_factory()
    membership, agent, _ = services.add_member(db_session, t.tenant, email="gone@tix.example.com",
                                               roles=["sales"], password=PASSWORD)
    with as_tenant(t.ctx) as s:
        acme = crm.create_account(s, {"name": "Acme", "currency": "EUR"})
        ticket = tickets.create_ticket(s, {"subject": "x", "account_id": acme.id,
                                           "assignee_id": agent.id})
        crm.delete_account(s, acme)
    services.set_member_active(db_session, t.tenant, membership.id, False)
    with as_tenant(t.ctx) as s:
        ticket = tickets.get_ticket(s, ticket.id)
        tickets.update_ticket(s, ticket, {"status": "pending", "priority": "high",
                                          "assignee_id": agent.id, "account_id": acme.id})
        assert (ticket.status, ticket.priority) == ("pending", "high")
        tickets.update_ticket(s, ticket, {"assignee_id": t.owner.id})
        with pytest.raises(TicketError, match="active member"):  # but not again
            tickets.update_ticket(s, ticket, {"assignee_id": agent.id})
