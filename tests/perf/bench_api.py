"""Benchmark: the REST API against a minimal Flask + psycopg endpoint, same run.

    .venv/bin/python -m tests.perf.bench_api [--contacts 100000 --deals 50000
        --tenants 20 --clients 8 --seconds 10]

One big tenant holds the contacts and deals, among ``--tenants`` tenants with a few
hundred rows each. For each endpoint the same SQL is served twice, each by its own
waitress process with the same thread count, and driven by ``--clients`` concurrent
keep-alive clients for ``--seconds``:

* **ours**: the real app (bearer token look-up, tenant context, RLS, ORM, pydantic
  and JSON serialisation);
* **minimal**: Flask + a psycopg connection pool as the database owner's superuser,
  the same SQL text with the tenant id as a parameter, rows dumped with ``json.dumps``
  and no auth, no RLS, no models.

Prints p50/p99 latency and requests/s of each, and ours / minimal. Target of the CRM
issue: ours >= 60% of minimal's requests/s and p99 < 50 ms at 8 clients.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.dbsetup import TestDatabase, scratch_database

HERE = Path(__file__).resolve()


# --- data ------------------------------------------------------------------------------


def _progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    print(f"\r  {label}: {done:,}/{total:,} ({rate:,.0f}/s)", end="", flush=True)


@dataclass
class Loaded:
    tenant_id: uuid.UUID
    token: str
    contact_ids: list[uuid.UUID]
    deal_ids: list[uuid.UUID]
    stages: list[str]


def load(db: TestDatabase, *, contacts: int, deals: int, tenants: int) -> Loaded:
    """Tenants through the real services, bulk rows with SQL as the superuser.

    Triggers stay on (audit, RLS checks do not apply to the superuser), so the rows
    look exactly like rows the app wrote.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from app.api import tokens
    from app.db import ENGINE_OPTIONS, install_engine_hooks
    from app.settings import sqlalchemy_url
    from tenants.context import tenant_scope
    from tenants.orm import install_session_guard
    from tests.conftest import make_tenant

    engine = create_engine(sqlalchemy_url(db.owner_url), **ENGINE_OPTIONS)
    install_engine_hooks(engine)
    install_session_guard()
    made = []
    with Session(engine, expire_on_commit=False) as s:
        for i in range(tenants):
            made.append(make_tenant(s, f"bench-{i:02d}-{uuid.uuid4().hex[:4]}"))
        s.commit()
        big = made[0]
        with tenant_scope(big.ctx):
            from tenants import services

            services.bind_session_context(s, big.ctx)
            _, token = tokens.create_token(s, big.owner.id, "bench")
            s.commit()
    engine.dispose()
    with db.admin_connect() as conn:
        started = time.perf_counter()
        per_other = 300
        plan = [(t, contacts if t is made[0] else per_other) for t in made]
        total = sum(n for _, n in plan)
        done = 0
        for t, n in plan:
            for lo in range(0, n, 20_000):
                hi = min(n, lo + 20_000)
                conn.execute(
                    "INSERT INTO crm.accounts (tenant_id, name, normalized_name, currency,"
                    " domain) SELECT %s, 'Company ' || g, 'company ' || g, 'EUR',"
                    " 'c' || g || '.example' FROM generate_series(%s::int, %s::int) g"
                    " WHERE g %% 2 = 0",
                    (t.id, lo, hi - 1))
                conn.execute(
                    "INSERT INTO crm.contacts (tenant_id, first_name, last_name, email, phone,"
                    " title) SELECT %s, 'First' || g, 'Last' || g, 'p' || g || '@c' || g ||"
                    " '.example', '+1 555 ' || g, 'Buyer' FROM generate_series(%s::int, %s::int) g",
                    (t.id, lo, hi - 1))
                done += hi - lo
                _progress("contacts", done, total, started)
        print()
        deal_ids, stages = load_deals(conn, made, deals)
        conn.execute("ANALYZE")
        contact_ids = [r[0] for r in conn.execute(
            "SELECT id FROM crm.contacts WHERE tenant_id = %s ORDER BY random() LIMIT 2000",
            (made[0].id,))]
    return Loaded(made[0].id, token, contact_ids, deal_ids, stages)


def load_deals(conn: psycopg.Connection, made: list, deals: int
               ) -> tuple[list[uuid.UUID], list[str]]:
    """Deals arrive with the CRM pipeline; until its table exists there are none."""
    exists = conn.execute("SELECT to_regclass('crm.deals')").fetchone()[0]
    if exists is None or deals == 0:
        return [], []
    return _load_deals(conn, made, deals)


def _load_deals(conn: psycopg.Connection, made: list, deals: int
                ) -> tuple[list[uuid.UUID], list[str]]:
    raise NotImplementedError  # replaced once crm.deals exists (see load_deals)


# --- servers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kind: str, db: TestDatabase, threads: int, workdir: Path
                 ) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "BENCH_KIND": kind, "BENCH_PORT": str(port),
           "BENCH_THREADS": str(threads), "DATABASE_URL": db.app_url,
           "DATABASE_OWNER_URL": db.owner_url, "BENCH_ADMIN_URL": _admin_db_url(db),
           "SECRET_KEY": "b" * 40, "LOG_LEVEL": "WARNING", "ERP_DATA_DIR": str(workdir),
           "PYTHONPATH": str(HERE.parents[2])}
    log = (workdir / f"{kind}.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "tests.perf.bench_api", "--serve"],
                            env=env, stdout=log, stderr=log, cwd=HERE.parents[2])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{kind} server exited; see {workdir / (kind + '.log')}") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def _admin_db_url(db: TestDatabase) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(db.admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db.name, parts.query, ""))


# The SQL both servers run, by endpoint. "ours" reaches it through the ORM; the minimal
# server runs this text (checked to be the same plan shape: an index scan on the
# tenant-leading index, then the page).
MINIMAL_SQL = {
    "contacts_list": (
        "SELECT count(*) FROM crm.contacts WHERE tenant_id = %(t)s AND deleted_at IS NULL;"
        "SELECT tenant_id, id, account_id, first_name, last_name, email, phone, title,"
        " owner_id, created_at, updated_at FROM crm.contacts WHERE tenant_id = %(t)s AND"
        " deleted_at IS NULL ORDER BY updated_at DESC, id LIMIT 50 OFFSET %(offset)s"),
    "contacts_get": (
        "SELECT tenant_id, id, account_id, first_name, last_name, email, phone, title,"
        " owner_id, created_at, updated_at FROM crm.contacts WHERE tenant_id = %(t)s AND"
        " id = %(id)s AND deleted_at IS NULL"),
}


def serve() -> None:
    """Entry point of the server subprocesses."""
    from waitress import serve as waitress_serve

    kind = os.environ["BENCH_KIND"]
    port = int(os.environ["BENCH_PORT"])
    threads = int(os.environ["BENCH_THREADS"])
    if kind == "ours":
        from app import create_app
        from app.settings import load_settings

        app = create_app(load_settings())
    else:
        app = _minimal_app(os.environ["BENCH_ADMIN_URL"], threads)
    waitress_serve(app, host="127.0.0.1", port=port, threads=threads, ident="bench",
                   _quiet=True)


def _minimal_app(url: str, threads: int):
    from flask import Flask, Response, request
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(url, min_size=threads, max_size=threads, open=True)
    app = Flask("minimal")

    @app.get("/q/<name>")
    def query(name: str) -> Response:
        params = {"offset": 0, **request.args}
        rows = []
        with pool.connection() as conn:
            for statement in MINIMAL_SQL[name].split(";"):
                rows.append(conn.execute(statement, params).fetchall())
        return Response(json.dumps(rows, default=str), mimetype="application/json")

    return app


# --- load ------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def drive(port: int, paths: Callable[[int], str], headers: dict[str, str], clients: int,
          seconds: float, name: str) -> Result:
    """``clients`` threads, each one keep-alive connection, for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = [0.0]
    warm = threading.Barrier(clients + 1, action=lambda: stop.__setitem__(
        0, time.perf_counter() + seconds))

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(20):  # warm-up: connections, pools, caches
            conn.request("GET", paths(i * clients + k), headers=headers)
            conn.getresponse().read()
        warm.wait()
        i = 0
        while time.perf_counter() < stop[0]:
            began = time.perf_counter()
            conn.request("GET", paths(i * clients + k), headers=headers)
            response = conn.getresponse()
            response.read()
            latencies[k].append(time.perf_counter() - began)
            if response.status != 200:
                errors[k] += 1
            i += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    warm.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    flat = sorted(x for per in latencies for x in per)
    p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))] if flat else 0.0
    return Result(name, len(flat), elapsed, statistics.median(flat) * 1000 if flat else 0,
                  p99 * 1000, sum(errors))


def run(*, contacts: int, deals: int, tenants: int, clients: int, seconds: float,
        threads: int = 8) -> dict[str, tuple[Result, Result]]:
    with tempfile.TemporaryDirectory() as tmp, \
            scratch_database(Path(tmp), prefix="bench_api") as db:
        workdir = Path(tmp)
        print(f"loading: {tenants} tenants, {contacts:,} contacts and {deals:,} deals in the"
              " big one")
        data = load(db, contacts=contacts, deals=deals, tenants=tenants)
        ours, ours_port = start_server("ours", db, threads, workdir)
        minimal, min_port = start_server("minimal", db, threads, workdir)
        auth = {"Authorization": f"Bearer {data.token}"}
        t = str(data.tenant_id)
        ids = data.contact_ids
        cases = {
            "GET /contacts?sort=-updated_at (page of 50, with total)": (
                lambda i: f"/api/v1/contacts?sort=-updated_at&per_page=50&page={1 + i % 5}",
                lambda i: f"/q/contacts_list?t={t}&offset={50 * (i % 5)}"),
            "GET /contacts/{id}": (
                lambda i: f"/api/v1/contacts/{ids[i % len(ids)]}",
                lambda i: f"/q/contacts_get?t={t}&id={ids[i % len(ids)]}"),
        }
        cases.update(deal_cases(data, t))
        results: dict[str, tuple[Result, Result]] = {}
        try:
            for name, (ours_path, min_path) in cases.items():
                print(f"{name}: {clients} clients x {seconds:g} s each side")
                mine = drive(ours_port, ours_path, auth, clients, seconds, "ours")
                base = drive(min_port, min_path, {}, clients, seconds, "minimal")
                results[name] = (mine, base)
                for r in (mine, base):
                    print(f"  {r.name:8} {r.rps:8,.0f} req/s  p50 {r.p50_ms:6.1f} ms  "
                          f"p99 {r.p99_ms:6.1f} ms  errors {r.errors}")
                print(f"  ratio ours / minimal: {mine.rps / base.rps:.2f}")
        finally:
            for proc in (ours, minimal):
                proc.terminate()
                proc.wait(timeout=10)
        return results


def deal_cases(data: Loaded, t: str) -> dict[str, tuple[Callable[[int], str],
                                                       Callable[[int], str]]]:
    """Filled in when the deals endpoints exist."""
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--deals", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    run(contacts=args.contacts, deals=args.deals, tenants=args.tenants,
        clients=args.clients, seconds=args.seconds)


if __name__ == "__main__":
    main()
