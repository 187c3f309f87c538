"""Benchmark: events through the whole job layer vs. the bare effect, same run.

    .venv/bin/python -m tests.perf.bench_events [--events 4000] [--broker postgres|rabbitmq]

* **baseline**: the consumer's effect alone, one transaction per event, raw psycopg
  (increment a counter, insert an effect row): what a hand-written integration does.
* **job layer**: the same effect behind the full machinery: outbox insert in the
  business transaction, relay, broker, two worker processes (4 threads each), tenant
  middleware, attempt counter, inbox, effect, commit.

Both run against the same database in the same run, so the ratio is meaningful on
a noisy machine. Prints progress, both rates, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.db import ENGINE_OPTIONS, install_engine_hooks
from app.events import services as events
from app.settings import sqlalchemy_url
from tenants.context import tenant_scope
from tenants.models import DocumentCounter
from tenants.orm import install_session_guard
from tests.conftest import make_tenant
from tests.dbsetup import scratch_database
from tests.fault.procs import RABBIT, delete_queues, spawn_worker, stop_workers


def _progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    print(f"\r  {label}: {done}/{total} ({rate:,.0f}/s)", end="", flush=True)


def baseline(app_url: str, tenant_id: uuid.UUID, n: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(app_url) as conn:
        for i in range(n):
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
                number = conn.execute(
                    "INSERT INTO core.document_counters (tenant_id, doc_type, period,"
                    " last_value) VALUES (%s, 'base', '', 1) ON CONFLICT (tenant_id, doc_type,"
                    " period) DO UPDATE SET last_value = core.document_counters.last_value + 1"
                    " RETURNING last_value", (tenant_id,)).fetchone()[0]
                conn.execute("INSERT INTO core.document_counters (tenant_id, doc_type, period,"
                             " last_value) VALUES (%s, %s, '', %s)",
                             (tenant_id, f"bx-{uuid.uuid4().hex}", number))
            if i % 200 == 0:
                _progress("baseline", i, n, started)
    elapsed = time.perf_counter() - started
    _progress("baseline", n, n, started)
    print()
    return n / elapsed


def job_layer(db, engine, t, n: int, broker: str, workdir: Path) -> float:
    prefix = f"b{secrets.token_hex(4)}"
    env = {**os.environ, "DATABASE_URL": db.app_url, "DATABASE_OWNER_URL": db.owner_url,
           "ERP_QUEUE_PREFIX": prefix, "SECRET_KEY": "b" * 40, "LOG_LEVEL": "WARNING",
           "ERP_DATA_DIR": str(workdir), "FAULT_CONSUMER_SLOW_MS": "0"}
    if broker == "rabbitmq":
        env["BROKER_URL"] = RABBIT
    log = (workdir / "workers.log").open("ab")
    workers = []
    try:
        workers = [spawn_worker(env, log) for _ in range(2)]
        time.sleep(3)  # let both processes connect before the clock starts
        started = time.perf_counter()
        batch = 50
        for i in range(0, n, batch):
            with tenant_scope(t.ctx), Session(engine) as session:
                for _ in range(min(batch, n - i)):
                    events.publish(session, "fault.ping", {})
                session.commit()
        done = 0
        while done < n:
            time.sleep(0.2)
            with tenant_scope(t.ctx), Session(engine) as session:
                done = session.scalar(select(func.count()).select_from(DocumentCounter).where(
                    DocumentCounter.doc_type.like("fx-%")))
            _progress(f"job layer ({broker})", done, n, started)
            if time.perf_counter() - started > 600:
                raise SystemExit(f"\njob layer did not finish: {done}/{n}")
        elapsed = time.perf_counter() - started
        print()
        return n / elapsed
    finally:
        stop_workers(workers)
        log.close()
        if broker == "rabbitmq":
            delete_queues(prefix)


def run(n: int, broker: str) -> dict[str, float]:
    install_session_guard()
    with tempfile.TemporaryDirectory() as tmp, scratch_database(Path(tmp), "erp_b") as db:
        engine = create_engine(sqlalchemy_url(db.app_url), **ENGINE_OPTIONS)
        install_engine_hooks(engine)
        with Session(engine, expire_on_commit=False) as session:
            t = make_tenant(session, f"bench-{secrets.token_hex(3)}")
            session.commit()
        print(f"events benchmark: {n} events, 1 tenant, broker {broker}, 2 worker processes")
        base = baseline(db.app_url, t.id, n)
        full = job_layer(db, engine, t, n, broker, Path(tmp))
        engine.dispose()
    ratio = full / base
    print(f"baseline (effect only, raw psycopg, 1 connection): {base:,.0f} events/s")
    print(f"job layer (outbox -> relay -> {broker} -> 2 workers -> inbox + effect): "
          f"{full:,.0f} events/s")
    print(f"ratio job layer / baseline: {ratio:.2f}")
    return {"baseline": base, "job_layer": full, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--broker", choices=("postgres", "rabbitmq"), default="postgres")
    args = parser.parse_args()
    run(args.events, args.broker)


if __name__ == "__main__":
    main()
