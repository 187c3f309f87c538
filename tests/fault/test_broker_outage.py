"""Fault injection: the broker goes away while business keeps committing events.

Workers reach RabbitMQ through a proxy this test owns. The proxy is cut while
events keep being written (the outbox needs only the database, so the app keeps
answering); when it is restored the backlog drains and every event has exactly one
effect.
"""

from __future__ import annotations

import os
import secrets
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import db
from app.events import services as events
from app.events.models import OutboxEvent
from tenants.context import tenant_scope
from tenants.models import DocumentCounter

from ..conftest import make_tenant
from .procs import delete_queues, spawn_worker, stop_workers
from .proxy import TcpProxy


def _effects(engine, t) -> int:
    with tenant_scope(t.ctx), Session(engine) as session:
        return session.scalar(select(func.count()).select_from(DocumentCounter).where(
            DocumentCounter.doc_type.like("fx-%")))


def test_backlog_drains_after_the_broker_returns(app, database, tmp_path):
    proxy = TcpProxy("127.0.0.1", 5672)
    prefix = f"o{secrets.token_hex(4)}"
    env = {**os.environ, "DATABASE_URL": database.app_url,
           "DATABASE_OWNER_URL": database.owner_url,
           "BROKER_URL": f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
           "ERP_QUEUE_PREFIX": prefix, "SECRET_KEY": "o" * 40, "LOG_LEVEL": "ERROR",
           "ERP_DATA_DIR": str(tmp_path)}
    with app.app_context():
        engine = db.engine
    with Session(engine, expire_on_commit=False) as session:
        t = make_tenant(session, f"outage-{secrets.token_hex(3)}")
        session.commit()
    log = (tmp_path / "worker.log").open("ab")

    def publish(n: int) -> None:
        with tenant_scope(t.ctx), Session(engine) as session:
            for _ in range(n):
                events.publish(session, "fault.ping", {})
            session.commit()

    worker = spawn_worker(env, log)
    try:
        publish(50)
        deadline = time.monotonic() + 60
        while _effects(engine, t) < 50:
            assert time.monotonic() < deadline, "workers never started consuming"
            time.sleep(0.2)

        proxy.cut()  # the broker is gone
        started = time.monotonic()
        publish(150)  # business goes on: the writes commit without a broker
        write_seconds = time.monotonic() - started
        time.sleep(2)
        assert _effects(engine, t) == 50, "nothing can be processed while the broker is away"
        with tenant_scope(t.ctx), Session(engine) as session:
            backlog = session.execute(select(func.count()).select_from(OutboxEvent)
                                      .where(OutboxEvent.published_at.is_(None))
                                      ).scalar()
        assert backlog >= 150

        proxy.restore()
        deadline = time.monotonic() + 120
        while _effects(engine, t) < 200:
            assert time.monotonic() < deadline, f"backlog not drained: {_effects(engine, t)}"
            time.sleep(0.25)
        time.sleep(1)
        assert _effects(engine, t) == 200
        print(f"\nbroker outage: 150 events written in {write_seconds:.2f}s while the broker "
              "was away; after it returned all 200 were processed once, 0 lost")
    finally:
        stop_workers([worker])
        log.close()
        proxy.close()
        delete_queues(prefix)
