def test_harness(client, two_tenants):
    a, b = two_tenants
    assert a.id != b.id
    assert client.get("/healthz").status_code == 200
