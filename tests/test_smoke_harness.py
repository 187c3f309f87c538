def test_harness(client, two_tenants):
    a, b = two_tenants
    assert a.id != b.id
    assert client.get("/healthz").status_code == 200


def test_as_tenant_sets_database_context(two_tenants, as_tenant):
    from sqlalchemy import text

    a, b = two_tenants
    with as_tenant(a.ctx) as s:
        assert s.scalar(text("SELECT app.current_tenant_id()")) == a.id
    with as_tenant(b.ctx) as s:
        assert s.scalar(text("SELECT app.current_tenant_id()")) == b.id
