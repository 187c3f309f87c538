"""The exceptions queue in the portal: visible with context, retryable, tenant-fenced."""

from __future__ import annotations

from sqlalchemy import select

from app.events import services as events
from app.events.models import OutboxEvent
from tenants import services

from .conftest import PASSWORD, csrf_from, login


def _open_exception(session, t, reason="not enough stock for SKU X-1"):
    event = events.publish(session, "sales.order_confirmed", {"order": "SO-1"})
    item = events.record_exception(session, consumer="inventory.reserve", event=event,
                                   kind="attention", reason=reason,
                                   context={"sku": "X-1", "short": 3})
    session.commit()
    return event, item


def test_exceptions_page_shows_reason_and_context_and_retry_queues_again(
        client, tenant_factory, as_tenant, db_session):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        event, item = _open_exception(s, t)
    login(client, t.owner.email)
    page = client.get(f"/t/{t.slug}/exceptions/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "not enough stock for SKU X-1" in html and "inventory.reserve" in html
    assert "<dt>sku</dt><dd>X-1</dd>" in html and ">Retry</button>" in html
    assert '>Exceptions</a>' in html  # in the navigation
    resp = client.post(f"/t/{t.slug}/exceptions/{item.id}/retry",
                       data={"csrf_token": csrf_from(html)}, follow_redirects=True)
    assert "Queued again" in resp.get_data(as_text=True)
    with as_tenant(t.ctx) as s:
        redelivery = s.scalar(select(OutboxEvent).where(
            OutboxEvent.event_type == events.REDELIVER))
        assert redelivery.target_consumer == "inventory.reserve"
        assert redelivery.payload == {"event_id": str(event.id)}


def test_other_tenants_exception_is_404_and_viewer_cannot_retry(
        client, two_tenants, as_tenant, db_session):
    a, b = two_tenants
    with as_tenant(b.ctx) as s:
        _, b_item = _open_exception(s, b)
    _, viewer, _ = services.add_member(db_session, a.tenant, email="v@exc.example.com",
                                       roles=["viewer"], password=PASSWORD)
    db_session.commit()
    login(client, a.owner.email)
    html = client.get(f"/t/{a.slug}/exceptions/").get_data(as_text=True)
    assert "Nothing needs attention." in html
    resp = client.post(f"/t/{a.slug}/exceptions/{b_item.id}/retry",
                       data={"csrf_token": csrf_from(html)})
    assert resp.status_code == 404
    client.post("/logout", data={"csrf_token": csrf_from(html)})
    login(client, viewer.email)
    page = client.get(f"/t/{a.slug}/exceptions/").get_data(as_text=True)
    assert ">Retry</button>" not in page
    assert client.post(f"/t/{a.slug}/exceptions/{b_item.id}/retry",
                       data={"csrf_token": csrf_from(page)}).status_code == 403
