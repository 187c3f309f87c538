"""Outbound webhooks: SSRF guard, signing, retries with backoff, failure to the
exceptions queue, replay, and the portal pages."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import db
from app.events import services as events
from app.events import webhooks
from app.events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint, WorkException
from tenants.context import tenant_scope
from workers.dispatch import dispatch

from .conftest import TenantFixture, csrf_from, login, make_tenant


class Receiver:
    """A local HTTP endpoint that records requests and answers a chosen status."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def private_ok(app, monkeypatch):
    """Allow loopback endpoints (the test receiver) for this test only."""
    settings = dataclasses.replace(app.config["ERP_SETTINGS"], webhooks_allow_private=True)
    monkeypatch.setitem(app.config, "ERP_SETTINGS", settings)


@pytest.fixture
def committed(app):
    with app.app_context():
        engine = db.engine

        def factory() -> Session:
            return Session(engine, expire_on_commit=False)

        yield factory


@pytest.fixture
def tenant(committed) -> TenantFixture:
    with committed() as session:
        t = make_tenant(session, f"wh-{secrets.token_hex(4)}")
        session.commit()
    return t


def _endpoint(app, committed, t, url, types=("*",)):
    with app.app_context(), tenant_scope(t.ctx), committed() as session:
        endpoint, secret = webhooks.create_endpoint(session, url=url, event_types=list(types))
        session.commit()
    return endpoint, secret


def _attempt_events(committed, t, after=None) -> list[OutboxEvent]:
    with tenant_scope(t.ctx), committed() as session:
        query = select(OutboxEvent).where(OutboxEvent.event_type == webhooks.ATTEMPT_EVENT)
        if after is not None:
            query = query.where(OutboxEvent.id > after)
        return list(session.scalars(query.order_by(OutboxEvent.id)))


def _run(app, committed, t, event_id):
    with app.app_context(), tenant_scope(t.ctx):
        return dispatch(committed, event_id)


# --- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/", "http://10.0.0.5/x",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/",
])
def test_private_and_local_targets_are_refused(url):
    with pytest.raises(webhooks.WebhookError, match="private or local address"):
        webhooks.check_url(url, allow_private=False)


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/x", "must start with https://"),
    ("https://user:pw@93.184.216.34/", "credentials in the URL"),
    ("not a url", "must start with https://"),
])
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(webhooks.WebhookError, match=message):
        webhooks.check_url(url, allow_private=False)


def test_public_address_is_accepted():
    assert webhooks.check_url("https://93.184.216.34/hook", allow_private=False) \
        == "https://93.184.216.34/hook"


def test_event_type_patterns():
    assert webhooks.validate_event_types([" crm.* ", "sales.order_confirmed", ""]) == [
        "crm.*", "sales.order_confirmed"]
    with pytest.raises(webhooks.WebhookError, match="at least one"):
        webhooks.validate_event_types([" "])
    with pytest.raises(webhooks.WebhookError, match="not an event type pattern"):
        webhooks.validate_event_types(["crm/deals"])
    assert webhooks.matches(["crm.*"], "crm.deal_won")
    assert not webhooks.matches(["crm.*"], "sales.order_confirmed")
    assert webhooks.matches(["*"], "anything.at_all")


def test_backoff_is_exponential_and_capped():
    assert [webhooks.backoff_seconds(n) for n in range(1, 5)] == [10, 20, 40, 80]
    assert webhooks.backoff_seconds(20) == 3600


def test_secret_is_shown_once_and_stored_encrypted(app, private_ok, committed, tenant,
                                                   receiver):
    endpoint, secret = _endpoint(app, committed, tenant, receiver.url)
    assert secret.startswith("whsec_") and len(secret) > 30
    assert secret.encode() not in bytes(endpoint.secret_encrypted)


# --- delivery ----------------------------------------------------------------------------


def test_event_is_delivered_signed_once(app, private_ok, committed, tenant, receiver):
    _, secret = _endpoint(app, committed, tenant, receiver.url, ["crm.*"])
    with tenant_scope(tenant.ctx), committed() as session:
        won = events.publish(session, "crm.deal_won", {"deal": "D-1", "value": "1200.00"})
        ignored = events.publish(session, "sales.order_confirmed", {"order": "SO-1"})
        session.commit()
    assert _run(app, committed, tenant, won.id)["webhooks.fanout"] == "done"
    _run(app, committed, tenant, ignored.id)
    (attempt,) = _attempt_events(committed, tenant)
    assert _run(app, committed, tenant, attempt.id)["webhooks.sender"] == "done"
    # a redelivered attempt message does not post twice
    assert _run(app, committed, tenant, attempt.id)["webhooks.sender"] == "duplicate"

    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    assert headers["Webhook-Id"] == str(won.id)
    expected = hmac.new(secret.encode(), f"{headers['Webhook-Timestamp']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert headers["Webhook-Signature"] == f"v1={expected}"
    payload = json.loads(body)
    assert payload["type"] == "crm.deal_won" and payload["tenant"] == tenant.slug
    assert payload["data"] == {"deal": "D-1", "value": "1200.00"}
    with tenant_scope(tenant.ctx), committed() as session:
        (delivery,) = session.scalars(select(WebhookDelivery)).all()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "succeeded", 1, 200)


def test_failures_back_off_then_open_an_exception_and_retry_recovers(
        app, private_ok, committed, tenant, receiver):
    _endpoint(app, committed, tenant, receiver.url)
    receiver.status = 500
    with tenant_scope(tenant.ctx), committed() as session:
        source = events.publish(session, "crm.deal_won", {"deal": "D-2"})
        session.commit()
    _run(app, committed, tenant, source.id)
    last = None
    for attempt_no in range(1, webhooks.MAX_ATTEMPTS + 1):
        (attempt,) = _attempt_events(committed, tenant, after=last)
        last = attempt.id
        if attempt_no > 1:
            assert attempt.deliver_after is not None  # backoff reaches the relay
        _run(app, committed, tenant, attempt.id)
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS
    assert _attempt_events(committed, tenant, after=last) == []  # no more automatic tries
    with tenant_scope(tenant.ctx), committed() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.status, delivery.last_error) == ("failed", "HTTP 500")
        item = session.scalar(select(WorkException))
        assert item.kind == "failed" and "webhook endpoint failing: HTTP 500" in item.reason
        receiver.status = 204  # the receiver is repaired; a person presses Retry
        events.retry_exception(session, item.id)
        session.commit()
    (again,) = _attempt_events(committed, tenant, after=last)
    _run(app, committed, tenant, again.id)
    with tenant_scope(tenant.ctx), committed() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.status, delivery.attempts) == ("succeeded", 1)
        assert session.scalar(select(WorkException)).status == "resolved"


def test_relay_passes_the_backoff_delay_to_the_broker(app, private_ok, committed, tenant,
                                                      receiver):
    from workers.relay import Relay

    from .test_events import RecordingBroker

    _endpoint(app, committed, tenant, receiver.url)
    receiver.status = 503
    Relay(app, RecordingBroker(), "q").run_once()
    with tenant_scope(tenant.ctx), committed() as session:
        source = events.publish(session, "crm.deal_won", {})
        session.commit()
    _run(app, committed, tenant, source.id)
    (first,) = _attempt_events(committed, tenant)
    _run(app, committed, tenant, first.id)
    recorder = RecordingBroker()
    Relay(app, recorder, "q").run_once()
    delays = dict(zip([m.kwargs["event_id"] for m in recorder.sent], recorder.delays,
                      strict=True))
    (second,) = _attempt_events(committed, tenant, after=first.id)
    assert 8_000 <= delays[str(second.id)] <= 10_000


def test_disabled_endpoint_gets_nothing(app, private_ok, committed, tenant, receiver):
    endpoint, _ = _endpoint(app, committed, tenant, receiver.url)
    with app.app_context(), tenant_scope(tenant.ctx), committed() as session:
        webhooks.set_active(session, endpoint.id, False)
        source = events.publish(session, "crm.deal_won", {})
        session.commit()
    _run(app, committed, tenant, source.id)
    assert _attempt_events(committed, tenant) == []


# --- portal -------------------------------------------------------------------------------


def test_portal_creates_endpoint_showing_secret_once_and_replays(
        app, private_ok, client, tenant_factory, as_tenant, receiver):
    t = tenant_factory()
    login(client, t.owner.email)
    page = client.get(f"/t/{t.slug}/webhooks/")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    bad = client.post(f"/t/{t.slug}/webhooks/", data={"csrf_token": token, "url": "ftp://x",
                                                      "event_types": "*"})
    assert bad.status_code == 422
    created = client.post(f"/t/{t.slug}/webhooks/", data={
        "csrf_token": token, "url": receiver.url, "event_types": "crm.*, sales.*",
        "description": "ERP to warehouse"})
    html = created.get_data(as_text=True)
    assert created.status_code == 200 and "whsec_" in html
    assert "whsec_" not in client.get(f"/t/{t.slug}/webhooks/").get_data(as_text=True)
    with as_tenant(t.ctx) as s:
        endpoint = s.scalar(select(WebhookEndpoint))
        assert endpoint.event_types == ["crm.*", "sales.*"]
        source = events.publish(s, "crm.deal_won", {})
        s.flush()
        delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=source.id,
                                   event_type="crm.deal_won", status="failed", attempts=8)
        s.add(delivery)
    detail = client.get(f"/t/{t.slug}/webhooks/{endpoint.id}").get_data(as_text=True)
    assert f'id="delivery-{delivery.id.hex}"' in detail and "failed" in detail
    resp = client.post(f"/t/{t.slug}/webhooks/deliveries/{delivery.id}/replay",
                       data={"csrf_token": token}, follow_redirects=True)
    assert "Delivery queued again." in resp.get_data(as_text=True)
    with as_tenant(t.ctx) as s:
        s.expire_all()
        assert s.get(WebhookDelivery, (t.id, delivery.id)).status == "pending"


def test_portal_webhooks_are_fenced_and_need_the_permission(client, two_tenants, as_tenant,
                                                            db_session, app, private_ok):
    from tenants import services

    from .conftest import PASSWORD

    a, b = two_tenants
    with app.app_context(), as_tenant(b.ctx) as s:
        endpoint, _ = webhooks.create_endpoint(s, url="http://127.0.0.1:9/x",
                                               event_types=["*"])
    login(client, a.owner.email)
    assert client.get(f"/t/{a.slug}/webhooks/{endpoint.id}").status_code == 404
    _, sales, _ = services.add_member(db_session, a.tenant, email="s@wh.example.com",
                                      roles=["sales"], password=PASSWORD)
    db_session.commit()
    client.post("/logout", data={"csrf_token": csrf_from(
        client.get(f"/t/{a.slug}/").get_data(as_text=True))})
    login(client, sales.email)
    assert client.get(f"/t/{a.slug}/webhooks/").status_code == 403
