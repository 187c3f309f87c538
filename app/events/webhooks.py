"""Outbound webhooks: every event a tenant subscribes to, signed, retried, logged.

Two consumers, both on the ordinary event path (so inbox, poison guard and the
exceptions queue apply):

* ``webhooks.fanout`` (all event types) creates one delivery row per matching active
  endpoint, and an outbox event ``webhooks.attempt`` for each, in one transaction.
* ``webhooks.sender`` (``webhooks.attempt``) makes one HTTP POST. On failure it
  records the attempt and publishes the next ``webhooks.attempt`` with
  ``deliver_after`` set by exponential backoff; after ``MAX_ATTEMPTS`` the delivery
  is failed and an exception is opened for a person ("endpoint failing").

Each request carries ``Webhook-Id`` (the event id: stable across retries, so the
receiver can de-duplicate), ``Webhook-Timestamp`` and ``Webhook-Signature: v1=`` the
hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under the endpoint's secret. The POST
happens inside the sender's transaction, which holds one delivery row for at most
the request timeout.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
import uuid
from urllib.parse import urlsplit

import httpx
from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import crypto
from app.db import utcnow
from tenants.context import require_context
from workers.dispatch import consumer

from . import services
from .models import OutboxEvent, WebhookDelivery, WebhookEndpoint, WorkException

ATTEMPT_EVENT = "webhooks.attempt"
MAX_ATTEMPTS = 8
BASE_BACKOFF_S = 10
MAX_BACKOFF_S = 3600
TIMEOUT_S = 5.0
PURPOSE = "webhook"


class WebhookError(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- configuration ----------------------------------------------------------------------


def _secret_key() -> str:
    return current_app.config["ERP_SETTINGS"].secret_key


def _allow_private() -> bool:
    return current_app.config["ERP_SETTINGS"].webhooks_allow_private


def check_url(url: str, *, allow_private: bool) -> str:
    """Refuse URLs that would make the server call itself or its private network."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("the URL must start with https:// (or http://) and name a host",
                           "url")
    if parts.username or parts.password:
        raise WebhookError("credentials in the URL are not allowed; use the signature",
                           "url")
    if allow_private:
        return parts.geturl()
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise WebhookError(f"the host {parts.hostname!r} does not resolve", "url") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise WebhookError(f"{parts.hostname} resolves to a private or local address "
                               f"({address}); webhooks go to public endpoints only", "url")
    return parts.geturl()


def validate_event_types(patterns: list[str]) -> list[str]:
    clean = sorted({p.strip() for p in patterns if p.strip()})
    if not clean:
        raise WebhookError("subscribe to at least one event type (e.g. crm.* or *)",
                           "event_types")
    for p in clean:
        if not all(ch.isalnum() or ch in "._*" for ch in p):
            raise WebhookError(f"{p!r} is not an event type pattern", "event_types")
    return clean


def create_endpoint(session: Session, *, url: str, event_types: list[str],
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; return it and its signing secret (shown once)."""
    require_context()
    clean_url = check_url(url, allow_private=_allow_private())
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(url=clean_url, description=(description or "").strip()[:200],
                               event_types=validate_event_types(event_types),
                               secret_encrypted=crypto.encrypt(_secret_key(), PURPOSE, secret))
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def get_endpoint(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    return session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


def set_active(session: Session, endpoint_id: uuid.UUID, active: bool) -> WebhookEndpoint:
    endpoint = get_endpoint(session, endpoint_id)
    if endpoint is None:
        raise WebhookError("no such endpoint")
    endpoint.is_active = active
    session.flush()
    return endpoint


def replay_delivery(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a delivery again now, whatever its state (a receiver lost it, say)."""
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                              .with_for_update())
    if delivery is None:
        raise WebhookError("no such delivery")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, utcnow()
    services.publish(session, ATTEMPT_EVENT, {"delivery_id": str(delivery.id)})
    return delivery


def matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def backoff_seconds(attempts: int) -> int:
    """10 s, 20 s, 40 s ... capped at an hour: about 21 minutes over 8 attempts."""
    return min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** max(0, attempts - 1))


# --- consumers ----------------------------------------------------------------------------


def _has_endpoints(session: Session, event: OutboxEvent) -> bool:
    if event.event_type.startswith(("webhooks.", "events.", "audit.")):
        return False  # the machinery's own events are not published to tenants
    return session.execute(select(WebhookEndpoint.id).where(WebhookEndpoint.is_active)
                           .limit(1)).first() is not None


@consumer("webhooks.fanout", "*", applies=_has_endpoints)
def fan_out(session: Session, event: OutboxEvent) -> None:
    endpoints = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.is_active))
    for endpoint in endpoints:
        if not matches(endpoint.event_types, event.event_type):
            continue
        delivery_id = session.execute(
            insert(WebhookDelivery)
            .values(tenant_id=event.tenant_id, endpoint_id=endpoint.id, event_id=event.id,
                    event_type=event.event_type, next_attempt_at=utcnow())
            .on_conflict_do_nothing(index_elements=["tenant_id", "endpoint_id", "event_id"])
            .returning(WebhookDelivery.id)
        ).scalar_one_or_none()
        if delivery_id is not None:
            services.publish(session, ATTEMPT_EVENT, {"delivery_id": str(delivery_id)},
                             correlation_id=event.correlation_id, causation_id=event.id)


@consumer("webhooks.sender", ATTEMPT_EVENT)
def send(session: Session, event: OutboxEvent) -> None:
    delivery = session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == uuid.UUID(event.payload["delivery_id"]))
        .with_for_update()
    )
    if delivery is None or delivery.status == "succeeded":
        return
    endpoint = session.scalar(select(WebhookEndpoint)
                              .where(WebhookEndpoint.id == delivery.endpoint_id))
    source = session.scalar(select(OutboxEvent).where(OutboxEvent.id == delivery.event_id))
    if endpoint is None or source is None or not endpoint.is_active:
        delivery.status, delivery.last_error = "failed", "endpoint disabled"
        return
    body = json.dumps({
        "id": str(source.id), "type": source.event_type,
        "created_at": source.created_at.isoformat(), "tenant": require_context().tenant_slug,
        "data": source.payload,
    }, separators=(",", ":"), sort_keys=True).encode()
    secret = crypto.decrypt(_secret_key(), PURPOSE, endpoint.secret_encrypted)
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "erp-webhooks/1",
               "Webhook-Id": str(source.id), "Webhook-Timestamp": str(timestamp),
               "Webhook-Signature": signature(secret, timestamp, body)}
    delivery.attempts += 1
    started = time.perf_counter()
    error = None
    try:
        check_url(endpoint.url, allow_private=_allow_private())  # DNS may have changed
        response = httpx.post(endpoint.url, content=body, headers=headers, timeout=TIMEOUT_S,
                              follow_redirects=False)
        delivery.last_status_code = response.status_code
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code}"
    except (httpx.HTTPError, WebhookError) as exc:
        delivery.last_status_code = None
        error = f"{type(exc).__name__}: {exc}"[:500]
    delivery.last_duration_ms = int((time.perf_counter() - started) * 1000)
    delivery.last_error = error
    if error is None:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            "succeeded", utcnow(), None)
        services.resolve_exception(session, "webhooks.sender", source.id)
        return
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = "failed", None
        services.record_exception(
            session, consumer="webhooks.sender", event=source, kind="failed",
            reason=f"webhook endpoint failing: {error} after {delivery.attempts} attempts",
            context={"endpoint": endpoint.url, "delivery_id": str(delivery.id)})
        return
    wait = backoff_seconds(delivery.attempts)
    delivery.next_attempt_at = utcnow() + dt.timedelta(seconds=wait)
    retry = services.publish(session, ATTEMPT_EVENT, {"delivery_id": str(delivery.id)},
                             correlation_id=event.correlation_id, causation_id=event.id)
    retry.deliver_after = delivery.next_attempt_at


def _retry_failed_delivery(session: Session, item: WorkException) -> None:
    replay_delivery(session, uuid.UUID(item.context["delivery_id"]))


services.RETRY_HANDLERS["webhooks.sender"] = _retry_failed_delivery
