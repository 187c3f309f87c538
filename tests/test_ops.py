"""Health, readiness, request ids and error bodies."""

from __future__ import annotations

import re

from app import ops
from app.db import db


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_readyz_at_head(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok", "migrations": "head"}


def test_readyz_reports_migrations_behind(client, monkeypatch):
    monkeypatch.setattr(ops, "_heads", {"9999_future"})
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["migrations"] == "behind" and body["expected"] == ["9999_future"]


def test_readyz_reports_unreachable_database(app, client, monkeypatch):
    from sqlalchemy import create_engine

    from app.db import db

    broken = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    engines = db._app_engines[app]
    monkeypatch.setitem(engines, None, broken)
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "unavailable", "database": "unreachable"}


def test_request_id_is_generated_or_kept(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    kept = client.get("/healthz", headers={"X-Request-ID": "trace-1234-abcd"})
    assert kept.headers["X-Request-ID"] == "trace-1234-abcd"
    hostile = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["X-Request-ID"])


def test_api_errors_are_json(client):
    resp = client.get("/api/v1/no-such-thing")
    assert resp.status_code == 404
    assert resp.is_json
    assert resp.get_json()["error"]["code"] == "not_found"
    assert set(resp.get_json()["error"]) == {"code", "message", "fields"}
    resp = client.post("/api/v1/")
    assert resp.status_code == 405 and resp.get_json()["error"]["code"] == "method_not_allowed"


def test_api_index(client):
    assert client.get("/api/v1/").get_json()["version"] == "v1"


def test_html_errors_are_styled_pages(client):
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert "<h1>Not found</h1>" in html and "app.css" in html
    assert resp.headers["X-Request-ID"] in html


def test_unhandled_error_gives_500_page_without_details(app, client):
    from app import create_app

    def boom():
        raise RuntimeError("secret internals")

    # routes cannot be added to an app that has served requests: use a fresh one
    other = create_app(app.config["ERP_SETTINGS"])
    other.add_url_rule("/boom", view_func=boom)
    other.add_url_rule("/api/boom", "api_boom", view_func=boom)
    c = other.test_client()
    page = c.get("/boom")
    assert page.status_code == 500 and "secret internals" not in page.get_data(as_text=True)
    assert "Something went wrong" in page.get_data(as_text=True)
    api = c.get("/api/boom")
    assert api.status_code == 500 and api.get_json()["error"]["code"] == "internal_error"
    assert "secret internals" not in api.get_data(as_text=True)
    with other.app_context():
        db.engine.dispose()


def test_security_headers(client):
    resp = client.get("/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in resp.headers  # served over plain http here


def test_json_logs_carry_request_id_and_tenant():
    import json
    import logging

    from app.logs import ContextFilter, JsonFormatter
    from tenants.context import set_request_id

    record = logging.LogRecord("erp.test", logging.INFO, __file__, 1, "hello %s", ("world",),
                               None)
    set_request_id("req-12345678")
    try:
        ContextFilter().filter(record)
    finally:
        set_request_id(None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["request_id"] == "req-12345678"
    assert line["tenant"] == "-"
    assert line["level"] == "INFO"
