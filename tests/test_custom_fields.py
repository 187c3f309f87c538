"""Custom fields: definitions, schema cache, validation of every type, filters (API and
portal), index use under RLS, and isolation between tenants."""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.api import tokens
from app.crm import custom_fields, services, tickets
from app.crm.custom_fields import CustomFieldError
from app.crm.models import Contact
from tenants import services as tenancy
from tenants.models import Tenant

from .conftest import PASSWORD, csrf_from, login

FIELDS = [
    {"entity": "account", "key": "tier", "label": "Tier", "field_type": "choice",
     "choices": ["gold", "silver"]},
    {"entity": "account", "key": "seats", "label": "Seats", "field_type": "number"},
    {"entity": "account", "key": "renewal", "label": "Renewal", "field_type": "date"},
    {"entity": "account", "key": "vip", "label": "VIP", "field_type": "boolean"},
    {"entity": "account", "key": "note", "label": "Note", "field_type": "text"},
    {"entity": "account", "key": "regions", "label": "Regions", "field_type": "multi_choice",
     "choices": ["emea", "apac", "amer"]},
    {"entity": "account", "key": "vat_id", "label": "VAT id", "field_type": "text",
     "required": True},
]


def _auth(as_tenant, t, user_id=None) -> dict[str, str]:
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, user_id or t.owner.id, "cf")
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def api(tenant_factory, as_tenant):
    t = tenant_factory()
    return t, _auth(as_tenant, t)


@pytest.fixture
def defined(client, api):
    t, auth = api
    for body in FIELDS:
        resp = client.post("/api/v1/custom-fields", headers=auth, json=body)
        assert resp.status_code == 201, resp.get_json()
    return t, auth


def _account(client, auth, custom, **fields):
    body = {"name": f"Acme {secrets.token_hex(3)}", "currency": "EUR", "custom": custom,
            **fields}
    return client.post("/api/v1/accounts", headers=auth, json=body)


GOOD = {"tier": "gold", "seats": 12, "renewal": "2027-01-31", "vip": True, "note": "hi",
        "regions": ["emea", "apac"], "vat_id": "DE123"}


# --- definitions --------------------------------------------------------------------------


def test_definitions_and_schema_in_tenant_settings(client, defined, db_session):
    t, auth = defined
    listed = client.get("/api/v1/custom-fields?entity=account", headers=auth).get_json()
    assert [d["key"] for d in listed["items"]] == [f["key"] for f in FIELDS]
    settings = db_session.scalar(sa.select(Tenant.settings).where(Tenant.id == t.id))
    cached = settings["custom_field_schemas"]["account"]
    assert cached["required"] == ["vat_id"] and cached["additionalProperties"] is False
    assert cached["properties"]["regions"]["items"] == {"enum": ["emea", "apac", "amer"]}
    served = client.get("/api/v1/custom-fields/schema/account", headers=auth).get_json()
    assert served == {"entity": "account", "schema": cached}
    assert client.get("/api/v1/custom-fields/schema/planet", headers=auth).status_code == 404

    seats = next(d for d in listed["items"] if d["key"] == "seats")
    patched = client.patch(f"/api/v1/custom-fields/{seats['id']}", headers=auth,
                           json={"label": "Licensed seats", "required": True})
    assert patched.status_code == 200 and patched.get_json()["label"] == "Licensed seats"
    settings = db_session.scalar(sa.select(Tenant.settings).where(Tenant.id == t.id))
    assert settings["custom_field_schemas"]["account"]["required"] == ["seats", "vat_id"]
    # key and type are fixed
    assert client.patch(f"/api/v1/custom-fields/{seats['id']}", headers=auth,
                        json={"field_type": "text"}).status_code == 422
    # soft delete: gone from the list and the schema; the key is never reused
    assert client.delete(f"/api/v1/custom-fields/{seats['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/custom-fields/{seats['id']}", headers=auth).status_code == 404
    settings = db_session.scalar(sa.select(Tenant.settings).where(Tenant.id == t.id))
    assert "seats" not in settings["custom_field_schemas"]["account"]["properties"]
    again = client.post("/api/v1/custom-fields", headers=auth, json=FIELDS[1])
    assert again.status_code == 422
    assert again.get_json()["error"]["fields"] == {
        "key": "this key belonged to a deleted field; choose another"}


@pytest.mark.parametrize(("body", "field"), [
    ({"entity": "planet", "key": "x", "label": "X", "field_type": "text"}, "entity"),
    ({"entity": "account", "key": "Bad Key", "label": "X", "field_type": "text"}, "key"),
    ({"entity": "account", "key": "x", "label": "", "field_type": "text"}, "label"),
    ({"entity": "account", "key": "x", "label": "X", "field_type": "colour"}, "field_type"),
    ({"entity": "account", "key": "x", "label": "X", "field_type": "choice"}, "choices"),
    ({"entity": "account", "key": "x", "label": "X", "field_type": "choice",
      "choices": ["a", "a"]}, "choices"),
    ({"entity": "account", "key": "x", "label": "X", "field_type": "text",
      "choices": ["a"]}, "choices"),
])
def test_definition_validation(client, api, body, field):
    _, auth = api
    resp = client.post("/api/v1/custom-fields", headers=auth, json=body)
    assert resp.status_code == 422
    assert field in resp.get_json()["error"]["fields"], resp.get_json()


def test_duplicate_key_is_refused(client, api):
    _, auth = api
    assert client.post("/api/v1/custom-fields", headers=auth, json=FIELDS[0]).status_code == 201
    dup = client.post("/api/v1/custom-fields", headers=auth, json=FIELDS[0])
    assert dup.status_code == 422 and dup.get_json()["error"]["fields"] == {
        "key": "this key is in use"}
    # the same key on another entity is another field
    assert client.post("/api/v1/custom-fields", headers=auth,
                       json={**FIELDS[0], "entity": "contact"}).status_code == 201


def test_definition_permissions(client, api, db_session, as_tenant):
    t, auth = api
    _, sales, _ = tenancy.add_member(db_session, t.tenant, email="s@cf.example.com",
                                     roles=["sales"], password=PASSWORD)
    sales_auth = _auth(as_tenant, t, sales.id)
    created = client.post("/api/v1/custom-fields", headers=auth, json=FIELDS[0]).get_json()
    assert client.get("/api/v1/custom-fields", headers=sales_auth).status_code == 200
    assert client.post("/api/v1/custom-fields", headers=sales_auth,
                       json=FIELDS[1]).status_code == 403
    assert client.patch(f"/api/v1/custom-fields/{created['id']}", headers=sales_auth,
                        json={"label": "x"}).status_code == 403
    assert client.delete(f"/api/v1/custom-fields/{created['id']}",
                         headers=sales_auth).status_code == 403


def test_definitions_are_isolated_between_tenants(client, defined, tenant_factory, as_tenant):
    _, auth = defined
    other = tenant_factory()
    other_auth = _auth(as_tenant, other)
    mine = client.get("/api/v1/custom-fields", headers=auth).get_json()["items"][0]
    assert client.get("/api/v1/custom-fields", headers=other_auth).get_json()["total"] == 0
    url = f"/api/v1/custom-fields/{mine['id']}"
    assert client.get(url, headers=other_auth).status_code == 404
    assert client.patch(url, headers=other_auth, json={"label": "x"}).status_code == 404
    assert client.delete(url, headers=other_auth).status_code == 404
    # the other tenant has no custom fields: anything custom is unknown there, and its
    # own field with the same key has its own type
    assert _account(client, other_auth, {"tier": "gold"}).status_code == 422
    assert client.post("/api/v1/custom-fields", headers=other_auth, json={
        "entity": "account", "key": "tier", "label": "Tier", "field_type": "number"},
    ).status_code == 201
    assert _account(client, other_auth, {"tier": 3}).status_code == 201
    assert _account(client, auth, {**GOOD, "tier": 3}).status_code == 422


# --- validation of values -----------------------------------------------------------------


@pytest.mark.parametrize(("custom", "field", "message"), [
    ({**GOOD, "tier": "bronze"}, "tier", "must be one of: gold, silver"),
    ({**GOOD, "seats": "twelve"}, "seats", "must be a number"),
    ({**GOOD, "seats": True}, "seats", "must be a number"),
    ({**GOOD, "renewal": "31/01/2027"}, "renewal", "must be a date written YYYY-MM-DD"),
    ({**GOOD, "renewal": "2027-02-30"}, "renewal", "must be a date written YYYY-MM-DD"),
    ({**GOOD, "vip": "yes"}, "vip", "must be true or false"),
    ({**GOOD, "note": 5}, "note", "must be text"),
    ({**GOOD, "note": "x" * 501}, "note", "at most 500 characters"),
    ({**GOOD, "regions": "emea"}, "regions", "must be a list of choices from: emea, apac, amer"),
    ({**GOOD, "regions": ["emea", "mars"]}, "regions",
     "must be a list of choices from: emea, apac, amer"),
    ({**GOOD, "regions": ["emea", "emea"]}, "regions", "lists a choice more than once"),
    ({k: v for k, v in GOOD.items() if k != "vat_id"}, "vat_id", "is required"),
    ({**GOOD, "vat_id": ""}, "vat_id", "is required"),
    ({**GOOD, "colour": "red"}, "colour", "unknown custom field"),
])
def test_each_type_is_validated_with_a_message_naming_the_field(client, defined, custom, field,
                                                                 message):
    _, auth = defined
    resp = _account(client, auth, custom)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {f"custom.{field}": message}


def test_several_errors_are_reported_together(client, defined):
    _, auth = defined
    resp = _account(client, auth, {"tier": 1, "seats": "x", "nope": 1})
    assert set(resp.get_json()["error"]["fields"]) == {
        "custom.tier", "custom.seats", "custom.nope", "custom.vat_id"}


def test_values_round_trip_and_patch_merges(client, defined):
    _, auth = defined
    created = _account(client, auth, GOOD)
    assert created.status_code == 201 and created.get_json()["custom"] == GOOD
    url = f"/api/v1/accounts/{created.get_json()['id']}"
    patched = client.patch(url, headers=auth, json={"custom": {"seats": 15, "note": None}})
    assert patched.status_code == 200
    expected = {**{k: v for k, v in GOOD.items() if k != "note"}, "seats": 15}
    assert patched.get_json()["custom"] == expected
    removed = client.patch(url, headers=auth, json={"custom": {"vat_id": None}})
    assert removed.status_code == 422
    assert removed.get_json()["error"]["fields"] == {"custom.vat_id": "is required"}
    # a patch without custom leaves the values alone
    assert client.patch(url, headers=auth, json={"industry": "Toys"}).get_json()[
        "custom"] == expected
    assert client.get(url, headers=auth).get_json()["custom"] == expected


def test_contacts_and_tickets_validate_too(client, defined):
    _, auth = defined
    for body in ({"entity": "contact", "key": "linkedin", "label": "LinkedIn",
                  "field_type": "text"},
                 {"entity": "ticket", "key": "severity", "label": "Severity",
                  "field_type": "choice", "choices": ["s1", "s2"], "required": True}):
        assert client.post("/api/v1/custom-fields", headers=auth, json=body).status_code == 201
    contact = client.post("/api/v1/contacts", headers=auth,
                          json={"last_name": "Lovelace", "custom": {"linkedin": "ada"}})
    assert contact.status_code == 201 and contact.get_json()["custom"] == {"linkedin": "ada"}
    bad = client.post("/api/v1/contacts", headers=auth,
                      json={"last_name": "Hopper", "custom": {"linkedin": 1}})
    assert bad.get_json()["error"]["fields"] == {"custom.linkedin": "must be text"}
    ticket = client.post("/api/v1/tickets", headers=auth, json={"subject": "x"})
    assert ticket.status_code == 422
    assert ticket.get_json()["error"]["fields"] == {"custom.severity": "is required"}
    ticket = client.post("/api/v1/tickets", headers=auth,
                         json={"subject": "x", "custom": {"severity": "s1"}})
    assert ticket.status_code == 201 and ticket.get_json()["custom"] == {"severity": "s1"}
    patch = client.patch(f"/api/v1/tickets/{ticket.get_json()['id']}", headers=auth,
                         json={"custom": {"severity": "s9"}})
    assert patch.get_json()["error"]["fields"] == {"custom.severity": "must be one of: s1, s2"}


def test_validate_custom_partial_and_non_finite(defined, as_tenant):
    t, _ = defined
    with as_tenant(t.ctx) as s:
        assert custom_fields.validate_custom(s, "account", {"seats": 3}, partial=True) == {
            "seats": 3}
        with pytest.raises(CustomFieldError) as refused:
            custom_fields.validate_custom(s, "account", {"seats": 3})
        assert refused.value.fields == {"custom.vat_id": "is required"}
        with pytest.raises(CustomFieldError) as refused:
            custom_fields.validate_custom(s, "account", {"seats": float("nan")}, partial=True)
        assert refused.value.fields == {"custom.seats": "must be a finite number"}
        with pytest.raises(CustomFieldError):
            custom_fields.validate_custom(s, "account", ["not", "an", "object"])
        with pytest.raises(CustomFieldError):
            custom_fields.validate_custom(s, "planet", {})


# --- filters ------------------------------------------------------------------------------


def test_api_filters_by_custom_fields(client, defined):
    _, auth = defined
    names = {}
    for name, custom in (("gold-emea", {**GOOD}),
                         ("silver-apac", {**GOOD, "tier": "silver", "regions": ["apac"],
                                          "seats": 5.0, "vip": False}),
                         ("gold-none", {**GOOD, "regions": [], "seats": 5})):
        names[name] = _account(client, auth, custom, name=name).get_json()["id"]

    def listed(**params):
        resp = client.get(f"/api/v1/accounts?{urlencode(params)}", headers=auth)
        assert resp.status_code == 200, resp.get_json()
        return sorted(i["name"] for i in resp.get_json()["items"])

    assert listed(**{"custom.tier": "gold"}) == ["gold-emea", "gold-none"]
    assert listed(**{"custom.regions": "apac"}) == ["gold-emea", "silver-apac"]
    assert listed(**{"custom.seats": "5"}) == ["gold-none", "silver-apac"]
    assert listed(**{"custom.seats": "5.00"}) == ["gold-none", "silver-apac"]
    assert listed(**{"custom.vip": "false"}) == ["silver-apac"]
    assert listed(**{"custom.renewal": "2027-01-31"}) == sorted(names)
    assert listed(**{"custom.tier": "gold", "custom.seats": "12"}) == ["gold-emea"]
    assert listed(**{"custom.tier": "gold", "sort": "-name"}) == ["gold-emea", "gold-none"]
    for params, field in (({"custom.colour": "red"}, "custom.colour"),
                          ({"custom.seats": "many"}, "custom.seats"),
                          ({"custom.tier": "bronze"}, "custom.tier"),
                          ({"custom.vip": "maybe"}, "custom.vip")):
        resp = client.get(f"/api/v1/accounts?{urlencode(params)}", headers=auth)
        assert resp.status_code == 422 and field in resp.get_json()["error"]["fields"]
    # after a change the index follows the record
    client.patch(f"/api/v1/accounts/{names['gold-none']}", headers=auth,
                 json={"custom": {"tier": "silver"}})
    assert listed(**{"custom.tier": "gold"}) == ["gold-emea"]


def test_contacts_and_tickets_filter_by_custom_field(client, defined):
    _, auth = defined
    for body in ({"entity": "contact", "key": "lang", "label": "Language",
                  "field_type": "text"},
                 {"entity": "ticket", "key": "channel", "label": "Channel",
                  "field_type": "choice", "choices": ["mail", "phone"]}):
        client.post("/api/v1/custom-fields", headers=auth, json=body)
    for name, lang in (("Curie", "fr"), ("Noether", "de")):
        client.post("/api/v1/contacts", headers=auth,
                    json={"last_name": name, "custom": {"lang": lang}})
    for subject, channel in (("by mail", "mail"), ("by phone", "phone")):
        client.post("/api/v1/tickets", headers=auth,
                    json={"subject": subject, "custom": {"channel": channel}})
    contacts = client.get("/api/v1/contacts?custom.lang=de", headers=auth).get_json()
    assert [c["last_name"] for c in contacts["items"]] == ["Noether"]
    found = client.get("/api/v1/tickets?custom.channel=phone", headers=auth).get_json()
    assert [x["subject"] for x in found["items"]] == ["by phone"] and found["total"] == 1


def test_filters_see_only_the_tenants_own_values(client, defined, tenant_factory, as_tenant):
    _, auth = defined
    other = tenant_factory()
    other_auth = _auth(as_tenant, other)
    client.post("/api/v1/custom-fields", headers=other_auth, json=FIELDS[0])
    assert _account(client, other_auth, {"tier": "gold"}).status_code == 201
    assert client.get("/api/v1/accounts?custom.tier=gold",
                      headers=auth).get_json()["total"] == 0


# --- index use under RLS ------------------------------------------------------------------


def _plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


def _explain(conn, sql: str) -> list[dict]:
    rows = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").fetchone()[0]
    return _plan_nodes(rows[0]["Plan"] if isinstance(rows, list) else json.loads(rows)[0]["Plan"])


def test_custom_filter_uses_an_index_under_rls(database):
    """As the app role, in a tenant's context, with 2 x 10,000 contacts analysed: the
    filter ``custom_filter`` builds is an index condition on crm.custom_values, while
    ``custom @> ...`` cannot use the GIN index (jsonb_contains is not leakproof)."""
    tenant_ids = []
    with database.app_connect() as conn:
        for _ in range(2):
            slug = f"explain-{secrets.token_hex(4)}"
            tenant_id = conn.execute(
                "INSERT INTO core.tenants (slug, name, base_currency) VALUES (%s, %s, 'EUR')"
                " RETURNING id", (slug, slug)).fetchone()[0]
            conn.commit()
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
            conn.execute(
                "INSERT INTO crm.contacts (tenant_id, last_name, custom)"
                " SELECT %s, 'n' || i, jsonb_build_object('tier', 't' || (i %% 500),"
                " 'tags', jsonb_build_array('a' || (i %% 7), 'b' || (i %% 11)))"
                " FROM generate_series(1, 10000) AS i", (tenant_id,))
            conn.commit()
            tenant_ids.append(tenant_id)
    with database.owner_connect() as owner:
        owner.execute("ANALYZE crm.contacts")
        owner.execute("ANALYZE crm.custom_values")

    query = sa.select(Contact.id).where(
        Contact.tenant_id == tenant_ids[0], Contact.deleted_at.is_(None),
        custom_fields.custom_filter(Contact, {"tier": "t7"}))
    sql = str(query.compile(dialect=postgresql.dialect(),
                            compile_kwargs={"literal_binds": True}))
    containment = (f"SELECT id FROM crm.contacts WHERE tenant_id = '{tenant_ids[0]}'"
                   " AND custom @> '{\"tier\": \"t7\"}'")
    with database.app_connect() as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == database.app_role
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_ids[0]),))
        nodes = _explain(conn, sql)
        value_scans = [n for n in nodes
                       if n.get("Index Name") == "ix_custom_values_tenant_id_entity_key_value"]
        assert value_scans, json.dumps(nodes, indent=1)[:3000]
        assert "value" in value_scans[0]["Index Cond"]
        assert value_scans[0]["Actual Rows"] == 20  # 10,000 / 500, this tenant only
        result_rows = conn.execute(sql).fetchall()
        assert len(result_rows) == 20
        assert not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "contacts"
                       for n in nodes)
        # the finding that made the side table necessary
        gin_nodes = _explain(conn, containment)
        assert not any(n.get("Index Name") == "ix_contacts_custom" for n in gin_nodes)
        conn.rollback()
    with database.admin_connect() as admin:  # a superuser bypasses RLS: GIN is usable
        assert any(n.get("Index Name") == "ix_contacts_custom"
                   for n in _explain(admin, containment))


# --- portal -------------------------------------------------------------------------------


def _define(as_tenant, t, *bodies):
    with as_tenant(t.ctx) as s:
        for body in bodies:
            custom_fields.create_definition(s, body)


def test_portal_forms_render_and_validate_custom_fields(client, tenant_factory, as_tenant):
    t = tenant_factory()
    _define(as_tenant, t, FIELDS[0], FIELDS[1], FIELDS[3], FIELDS[5], FIELDS[6])
    login(client, t.owner.email)
    base = f"/t/{t.slug}/crm"
    page = client.get(f"{base}/accounts/new").get_data(as_text=True)
    for name in ("cf_tier", "cf_seats", "cf_vip", "cf_regions", "cf_vat_id"):
        assert f'name="{name}"' in page
    token = csrf_from(page)
    form = {"csrf_token": token, "name": "Initech", "currency": "EUR",
            "payment_terms_days": "30", "cf_tier": "gold", "cf_seats": "12.5",
            "cf_regions": ["emea", "amer"]}
    missing = client.post(f"{base}/accounts/new", data=form)
    assert missing.status_code == 422
    html = missing.get_data(as_text=True)
    assert re.search(r'name="cf_vat_id"[^>]*>\s*<p class="field-error">is required</p>', html)
    created = client.post(f"{base}/accounts/new", data={**form, "cf_vat_id": "FR1",
                                                        "cf_vip": "y"})
    assert created.status_code == 302
    with as_tenant(t.ctx) as s:
        account = services.list_accounts(s).items[0]
        assert account.custom == {"tier": "gold", "seats": 12.5, "vip": True,
                                  "regions": ["emea", "amer"], "vat_id": "FR1"}
    detail = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "emea, amer" in detail and "FR1" in detail
    edit = client.get(f"{base}/accounts/{account.id}/edit").get_data(as_text=True)
    assert 'value="FR1"' in edit and 'value="12.5"' in edit


def test_portal_list_filters_by_custom_field(client, tenant_factory, as_tenant):
    t = tenant_factory()
    _define(as_tenant, t, FIELDS[0],
            {"entity": "contact", "key": "lang", "label": "Language", "field_type": "text"},
            {"entity": "ticket", "key": "channel", "label": "Channel", "field_type": "text"})
    with as_tenant(t.ctx) as s:
        services.create_account(s, {"name": "Goldco", "currency": "EUR",
                                    "custom": {"tier": "gold"}})
        services.create_account(s, {"name": "Silverco", "currency": "EUR",
                                    "custom": {"tier": "silver"}})
        services.create_contact(s, {"last_name": "Curie", "custom": {"lang": "fr"}})
        services.create_contact(s, {"last_name": "Noether", "custom": {"lang": "de"}})
        tickets.create_ticket(s, {"subject": "via-mail", "custom": {"channel": "mail"}})
        tickets.create_ticket(s, {"subject": "via-phone", "custom": {"channel": "phone"}})
    login(client, t.owner.email)
    base = f"/t/{t.slug}/crm"
    html = client.get(f"{base}/accounts?cf=tier&cv=gold").get_data(as_text=True)
    assert "Goldco" in html and "Silverco" not in html
    assert "cf=tier" in html  # carried in sort links
    html = client.get(f"{base}/contacts?cf=lang&cv=de").get_data(as_text=True)
    assert "Noether" in html and "Curie" not in html
    html = client.get(f"{base}/tickets?cf=channel&cv=phone").get_data(as_text=True)
    assert "via-phone" in html and "via-mail" not in html
    bad = client.get(f"{base}/accounts?cf=tier&cv=bronze")
    assert bad.status_code == 422
    assert "tier: must be one of: gold, silver" in bad.get_data(as_text=True)


def test_portal_settings_page(client, tenant_factory, db_session):
    t = tenant_factory()
    _, sales, _ = tenancy.add_member(db_session, t.tenant, email="s@cfp.example.com",
                                     roles=["sales"], password=PASSWORD)
    login(client, t.owner.email)
    url = f"/t/{t.slug}/settings/custom-fields"
    page = client.get(url)
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    bad = client.post(url, data={"csrf_token": token, "entity": "ticket", "key": "sev",
                                 "label": "Severity", "field_type": "choice", "choices": ""})
    assert bad.status_code == 422 and "a choice field needs" in bad.get_data(as_text=True)
    made = client.post(url, data={"csrf_token": token, "entity": "ticket", "key": "sev",
                                  "label": "Severity", "field_type": "choice",
                                  "choices": "s1\ns2\n", "required": "y"})
    assert made.status_code == 302
    listing = client.get(url).get_data(as_text=True)
    assert "Severity" in listing and "s1, s2" in listing
    form = client.get(f"/t/{t.slug}/crm/tickets/new").get_data(as_text=True)
    assert 'name="cf_sev"' in form
    client.post("/logout", data={"csrf_token": token})
    login(client, sales.email)
    assert client.get(url).status_code == 403


def test_portal_settings_are_fenced(client, tenant_factory, as_tenant):
    t = tenant_factory()
    other = tenant_factory()
    with as_tenant(other.ctx) as s:
        theirs = custom_fields.create_definition(s, FIELDS[0])
    login(client, t.owner.email)
    base = f"/t/{t.slug}/settings/custom-fields"
    assert client.get(f"{base}/{theirs.id}").status_code == 404
    assert client.get(f"{base}/{theirs.id}/delete").status_code == 404
    assert client.get(f"{base}/not-a-uuid").status_code == 404
    assert "Tier" not in client.get(base).get_data(as_text=True)


def test_concurrent_definition_changes_keep_the_cached_schema_complete(app):
    """The tenant row is locked before a definition changes, so the second writer
    rebuilds the schema after the first committed and includes its field."""
    import threading
    import time

    from sqlalchemy.orm import Session

    from app.db import db
    from tenants.context import TenantContext, tenant_scope
    from tenants.permissions import permissions_for

    with app.app_context():
        engine = db.engine
    slug = f"cf-{secrets.token_hex(4)}"
    with Session(engine) as s:
        made = tenancy.create_tenant(s, slug=slug, name=slug, base_currency="EUR",
                                     admin_email=f"o@{slug}.example.com",
                                     admin_password=PASSWORD)
        s.commit()
        tenant_id, owner_id = made.tenant.id, made.admin.id
    ctx = TenantContext(tenant_id=tenant_id, tenant_slug=slug, user_id=owner_id,
                        roles=frozenset({"owner"}), permissions=permissions_for(["owner"]))
    first_locked = threading.Event()
    errors: list[BaseException] = []

    def define(key: str, hold: float, signal: threading.Event | None,
               wait: threading.Event | None) -> None:
        try:
            if wait is not None:
                wait.wait(5)
            with Session(engine) as s, tenant_scope(ctx):
                custom_fields.create_definition(s, {"entity": "lead", "key": key,
                                                    "label": key, "field_type": "text"})
                if signal is not None:
                    signal.set()
                time.sleep(hold)
                s.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=define, args=("first", 0.5, first_locked, None)),
               threading.Thread(target=define, args=("second", 0, None, first_locked))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors, errors
    with Session(engine) as s:
        settings = s.scalar(sa.select(Tenant.settings).where(Tenant.id == tenant_id))
        s.rollback()
    assert set(settings["custom_field_schemas"]["lead"]["properties"]) == {"first", "second"}
