"""Fault injection on the job layer: SIGKILLed workers lose nothing and double nothing.

Two real worker processes (consumers + relay) run against real RabbitMQ and the
test database while this test publishes events for three tenants and SIGKILLs a
random worker several times, restarting it each time. At the end every event must
have exactly one effect: the per-tenant counter equals the number of events and
each event has exactly one effect row.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import time

import pika
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.db import db
from app.events import services as events
from tenants.context import tenant_scope
from tenants.models import DocumentCounter

from ..conftest import make_tenant
from .procs import RABBIT, delete_queues, spawn_worker, stop_workers

EVENTS = int(os.environ.get("FAULT_EVENTS", "600"))
KILLS = int(os.environ.get("FAULT_KILLS", "4"))




def test_sigkilled_workers_lose_and_double_nothing(app, database, tmp_path):
    prefix = f"f{secrets.token_hex(4)}"
    env = {**os.environ, "DATABASE_URL": database.app_url,
           "DATABASE_OWNER_URL": database.owner_url, "BROKER_URL": RABBIT,
           "ERP_QUEUE_PREFIX": prefix, "SECRET_KEY": "f" * 40, "LOG_LEVEL": "WARNING",
           "ERP_DATA_DIR": str(tmp_path), "FAULT_CONSUMER_SLOW_MS": "2"}
    with app.app_context():
        engine = db.engine
    tenants = []
    with Session(engine, expire_on_commit=False) as session:
        for i in range(3):
            tenants.append(make_tenant(session, f"fault-{i}-{secrets.token_hex(3)}"))
        session.commit()

    log_path = tmp_path / "workers.log"
    log = log_path.open("ab")
    rng = random.Random(2026)
    kills = 0
    published = {t.slug: 0 for t in tenants}
    workers: list[subprocess.Popen] = []
    try:
        workers += [spawn_worker(env, log) for _ in range(2)]
        batches = 30
        per_batch = EVENTS // batches
        kill_at = set(rng.sample(range(2, batches), KILLS))
        for b in range(batches):
            t = tenants[b % 3]
            with tenant_scope(t.ctx), Session(engine) as session:
                for _ in range(per_batch):
                    events.publish(session, "fault.ping", {"batch": b})
                session.commit()
            published[t.slug] += per_batch
            if b in kill_at:
                victim = rng.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                kills += 1
                workers[victim] = spawn_worker(env, log)
            time.sleep(0.1)

        deadline = time.monotonic() + 240
        while True:
            done = {t.slug: _effects(engine, t) for t in tenants}
            if done == published:
                break
            assert time.monotonic() < deadline, (
                f"not drained: {done} of {published}\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
    finally:
        stop_workers(workers)
        log.close()
        delete_queues(prefix)

    total = sum(published.values())
    for t in tenants:
        with tenant_scope(t.ctx), Session(engine) as session:
            counter = session.scalar(select(DocumentCounter.last_value).where(
                DocumentCounter.doc_type == "fault"))
            effect_rows = _effects(engine, t)
            inbox = session.execute(text("SELECT count(*) FROM events.inbox"
                                         " WHERE consumer = 'fault.counter'")).scalar()
        assert counter == published[t.slug] == effect_rows == inbox, t.slug
    print(f"\nfault injection: {total} events over 3 tenants, {kills} SIGKILLs of 2 worker "
          f"processes: {total} effects, 0 lost, 0 duplicated")
    assert kills == KILLS


def _effects(engine, t) -> int:
    with tenant_scope(t.ctx), Session(engine) as session:
        return session.scalar(select(func.count()).select_from(DocumentCounter).where(
            DocumentCounter.doc_type.like("fx-%")))



@pytest.fixture(autouse=True)
def _rabbit_available():
    try:
        pika.BlockingConnection(pika.URLParameters(RABBIT)).close()
    except pika.exceptions.AMQPError as exc:
        pytest.fail(f"RabbitMQ must run at {RABBIT} for fault-injection tests: {exc}")
