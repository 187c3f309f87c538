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
from urllib.parse import quote

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
    """``deals`` deals in the big tenant (a tenth of that in each other one), spread
    over the open stages and over its accounts, updated over the last year."""
    started = time.perf_counter()
    stages: list[str] = []
    for index, t in enumerate(made):
        n = deals if index == 0 else max(deals // 10, 10)
        rows = conn.execute("SELECT id, name FROM crm.deal_stages WHERE tenant_id = %s"
                            " AND NOT is_won AND NOT is_lost ORDER BY position",
                            (t.id,)).fetchall()
        if index == 0:
            stages = [name for _, name in rows]
        conn.execute(
            """
            INSERT INTO crm.deals (tenant_id, name, account_id, stage_id, value, currency,
                                   updated_at)
            SELECT %(t)s, 'Deal ' || g, a.id, (%(stages)s::uuid[])[1 + g %% %(n_stages)s],
                   (g %% 500) * 100, 'EUR', now() - (g %% 365) * interval '1 day'
            FROM generate_series(1, %(n)s::int) g
            JOIN LATERAL (SELECT id FROM crm.accounts WHERE tenant_id = %(t)s
                          OFFSET g %% %(accounts)s LIMIT 1) a ON true
            """, {"t": t.id, "stages": [r[0] for r in rows], "n_stages": len(rows), "n": n,
                  "accounts": max(1, conn.execute(
                      "SELECT count(*) FROM crm.accounts WHERE tenant_id = %s",
                      (t.id,)).fetchone()[0])})
        _progress("deals", index + 1, len(made), started)
    print()
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM crm.deals WHERE tenant_id = %s ORDER BY random() LIMIT 2000",
        (made[0].id,))]
    return ids, stages


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
    with (workdir / f"{kind}.log").open("ab") as log:  # the child keeps its own handle
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
    "deals_list": (
        "SELECT count(*) FROM crm.deals WHERE tenant_id = %(t)s AND deleted_at IS NULL"
        " AND stage_id = (SELECT id FROM crm.deal_stages WHERE tenant_id = %(t)s"
        "  AND lower(name) = lower(%(stage)s));"
        "SELECT d.id, d.name, d.account_id, d.contact_id, d.stage_id, d.value, d.currency,"
        " d.expected_close, d.owner_id, d.lost_reason, d.closed_at, d.created_at, d.updated_at,"
        " s.name, s.probability FROM crm.deals d JOIN crm.deal_stages s"
        " ON s.tenant_id = d.tenant_id AND s.id = d.stage_id WHERE d.tenant_id = %(t)s"
        " AND d.deleted_at IS NULL AND lower(s.name) = lower(%(stage)s)"
        " ORDER BY d.updated_at DESC, d.id LIMIT 50"),
    "deals_get": (
        "SELECT d.id, d.name, d.account_id, d.contact_id, d.stage_id, d.value, d.currency,"
        " d.expected_close, d.owner_id, d.lost_reason, d.closed_at, d.created_at, d.updated_at,"
        " s.name, s.probability FROM crm.deals d JOIN crm.deal_stages s"
        " ON s.tenant_id = d.tenant_id AND s.id = d.stage_id WHERE d.tenant_id = %(t)s"
        " AND d.id = %(id)s AND d.deleted_at IS NULL"),
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
        cases = deal_cases(data, t)
        cases |= {
            "GET /contacts?sort=-updated_at (page of 50, with total)": (
                lambda i: f"/api/v1/contacts?sort=-updated_at&per_page=50&page={1 + i % 5}",
                lambda i: f"/q/contacts_list?t={t}&offset={50 * (i % 5)}"),
            "GET /contacts/{id}": (
                lambda i: f"/api/v1/contacts/{ids[i % len(ids)]}",
                lambda i: f"/q/contacts_get?t={t}&id={ids[i % len(ids)]}"),
        }
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
    """The two endpoints the CRM issue names, first."""
    if not data.deal_ids:
        return {}
    stages, ids = data.stages, data.deal_ids
    return {
        "GET /deals?stage=... (page of 50, with total)": (
            lambda i: f"/api/v1/deals?stage={quote(stages[i % len(stages)])}&per_page=50",
            lambda i: f"/q/deals_list?t={t}&stage={quote(stages[i % len(stages)])}"),
        "GET /deals/{id}": (
            lambda i: f"/api/v1/deals/{ids[i % len(ids)]}",
            lambda i: f"/q/deals_get?t={t}&id={ids[i % len(ids)]}"),
    }


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
