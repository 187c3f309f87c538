"""Idempotency-Key on API POSTs: one effect per key, replayed answers, refusals."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from flask import jsonify, request

from app import create_app
from app.api import tokens
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.db import db
from tenants import services

from .conftest import make_tenant


@pytest.fixture(scope="module")
def api_app(database):
    """A fresh app with one POST route that takes a gapless number (a real effect)."""
    application = create_app(database.settings)

    @api_auth("tenant:read")
    @idempotent
    def take_number():
        if request.headers.get("X-Slow"):
            time.sleep(0.6)
        body = request.get_json(silent=True) or {}
        n = services.next_number(db.session, body.get("series", "test"))
        return jsonify(number=n, series=body.get("series", "test")), 201

    from app.security import csrf

    csrf.exempt(take_number)  # as every view on the API blueprint is
    application.add_url_rule("/api/v1/test-numbers", view_func=take_number, methods=["POST"])
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def tenant_token(api_app):
    with api_app.app_context():
        t = make_tenant(db.session, f"idem-{secrets.token_hex(3)}")
        db.session.commit()
        from tenants.context import tenant_scope

        with tenant_scope(t.ctx):
            _, value = tokens.create_token(db.session, t.owner.id, "idem")
            db.session.commit()
        db.session.remove()
    return t, {"Authorization": f"Bearer {value}"}


def _post(client, headers, key=None, body=None, **extra):
    h = dict(headers, **extra)
    if key is not None:
        h["Idempotency-Key"] = key
    return client.post("/api/v1/test-numbers", json=body or {"series": "a"}, headers=h)


def test_without_a_key_every_post_has_its_effect(api_app, tenant_token):
    _, headers = tenant_token
    client = api_app.test_client()
    assert [_post(client, headers).get_json()["number"] for _ in range(3)] == [1, 2, 3]


def test_same_key_same_body_replays_the_first_answer(api_app, tenant_token):
    _, headers = tenant_token
    client = api_app.test_client()
    first = _post(client, headers, "k-1")
    again = _post(client, headers, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() == {"number": 1, "series": "a"}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _post(client, headers).get_json()["number"] == 2  # only one effect so far


def test_same_key_other_body_is_refused(api_app, tenant_token):
    _, headers = tenant_token
    client = api_app.test_client()
    _post(client, headers, "k-2", {"series": "a"})
    resp = _post(client, headers, "k-2", {"series": "b"})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "idempotency_key_reused"


def test_bad_key_is_a_400(api_app, tenant_token):
    _, headers = tenant_token
    resp = _post(api_app.test_client(), headers, "x" * 201)
    assert resp.status_code == 400 and "Idempotency-Key" in resp.get_json()["error"]["message"]


def test_keys_belong_to_one_tenant(api_app, tenant_token):
    _, headers_a = tenant_token
    with api_app.app_context():
        b = make_tenant(db.session, f"idem-{secrets.token_hex(3)}")
        db.session.commit()
        from tenants.context import tenant_scope

        with tenant_scope(b.ctx):
            _, value_b = tokens.create_token(db.session, b.owner.id, "idem")
            db.session.commit()
        db.session.remove()
    client = api_app.test_client()
    assert _post(client, headers_a, "shared").get_json()["number"] == 1
    other = _post(client, {"Authorization": f"Bearer {value_b}"}, "shared")
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers


def test_concurrent_duplicates_wait_and_replay(api_app, tenant_token):
    _, headers = tenant_token
    results: list = []

    def send(slow: bool) -> None:
        extra = {"X-Slow": "1"} if slow else {}
        results.append(_post(api_app.test_client(), headers, "race", **extra))

    first = threading.Thread(target=send, args=(True,))
    first.start()
    time.sleep(0.2)  # the first holds the key, uncommitted
    second = threading.Thread(target=send, args=(False,))
    second.start()
    first.join(10)
    second.join(10)
    assert sorted(r.status_code for r in results) == [201, 201]
    assert {r.get_json()["number"] for r in results} == {1}
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 1
