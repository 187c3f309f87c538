"""The broker, chosen by ``BROKER_URL``.

* ``amqp://`` RabbitMQ, with publisher confirms (a publish returns only once the
  broker has the message).
* ``redis://`` Redis.
* unset or ``postgres``: the PostgreSQL transport (dramatiq-postgres) on the app's
  own database, so a single machine needs no broker server. Its tables are created
  by migration 0400, not at run time.

Queue names carry ``ERP_QUEUE_PREFIX`` so several installations (or test runs) can
share one RabbitMQ or Redis without consuming each other's messages.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.broker import Broker

from app.settings import Settings, libpq_url

from .middleware import TenantMiddleware


def events_queue(settings: Settings) -> str:
    return f"{settings.queue_prefix}_events"


def make_broker(settings: Settings, app: Any) -> Broker:
    """Build the broker for ``settings`` with our middleware, and make it global."""
    url = settings.broker_url
    if url and url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker: Broker = RabbitmqBroker(url=url, confirm_delivery=True)
    elif url and url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url, namespace=f"{settings.queue_prefix}-dramatiq")
    else:
        from dramatiq_postgres import PostgresBroker

        target = url if url and url.startswith("postgresql") else settings.database_url
        broker = PostgresBroker(url=libpq_url(target or ""), results=False)
    broker.add_middleware(TenantMiddleware(app))
    dramatiq.set_broker(broker)
    return broker
