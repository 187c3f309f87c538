"""Prometheus text exposition of the job layer's health.

Gauges come from the database (any process can serve them); counters are this
process's own (``workers.dispatch.STATS``), so scrape every worker process
(``erp worker --metrics-port``) as well as the web app, which also runs consumers
under ``erp up``.

Row-level security means no role sees all tenants at once: the outbox backlog is
counted only for tenants marked pending, and open exceptions tenant by tenant.
That is one small query per tenant, cached for ``CACHE_SECONDS``, which is fine
for thousands of tenants; beyond that, keep a per-tenant counter table.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import text

from tenants.context import TenantContext, tenant_scope

from .dispatch import STATS

CACHE_SECONDS = 15.0
_cache: dict[str, Any] = {"at": 0.0, "gauges": None}
_lock = threading.Lock()


def database_gauges(session_factory: Any) -> dict[str, float]:
    with _lock:
        if _cache["gauges"] is not None and time.monotonic() - _cache["at"] < CACHE_SECONDS:
            return _cache["gauges"]
    gauges = {"erp_outbox_pending_tenants": 0.0, "erp_outbox_oldest_pending_seconds": 0.0,
              "erp_outbox_backlog": 0.0, "erp_exceptions_open": 0.0}
    with session_factory() as session:
        pending = session.execute(text(
            "SELECT p.tenant_id, t.slug, extract(epoch FROM now() - p.pending_since)"
            " FROM events.pending_tenants p JOIN core.tenants t ON t.id = p.tenant_id")).all()
        tenants = session.execute(text(
            "SELECT id, slug FROM core.tenants WHERE status = 'active'")).all()
        session.rollback()
    gauges["erp_outbox_pending_tenants"] = float(len(pending))
    gauges["erp_outbox_oldest_pending_seconds"] = max((float(r[2]) for r in pending),
                                                      default=0.0)
    for tenant_id, slug, _age in pending:
        gauges["erp_outbox_backlog"] += _count(session_factory, tenant_id, slug,
                                               "SELECT count(*) FROM events.outbox"
                                               " WHERE published_at IS NULL")
    for tenant_id, slug in tenants:
        gauges["erp_exceptions_open"] += _count(session_factory, tenant_id, slug,
                                                "SELECT count(*) FROM events.exceptions"
                                                " WHERE status <> 'resolved'")
    with _lock:
        _cache.update(at=time.monotonic(), gauges=gauges)
    return gauges


def _count(session_factory: Any, tenant_id: Any, slug: str, sql: str) -> float:
    with tenant_scope(TenantContext(tenant_id=tenant_id, tenant_slug=slug)), \
            session_factory() as session:
        value = session.execute(text(sql)).scalar_one()
        session.rollback()
    return float(value)


HELP = {
    "erp_outbox_pending_tenants": ("gauge", "Tenants with unpublished outbox events."),
    "erp_outbox_oldest_pending_seconds": ("gauge", "Age of the oldest unpublished backlog."),
    "erp_outbox_backlog": ("gauge", "Unpublished outbox events."),
    "erp_exceptions_open": ("gauge", "Exceptions waiting for a person."),
}


def render(session_factory: Any | None) -> str:
    """The exposition text: database gauges (if a session factory is given) and
    this process's consumer counters."""
    lines: list[str] = []
    if session_factory is not None:
        for name, value in database_gauges(session_factory).items():
            kind, doc = HELP[name]
            lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    counts, seconds = dict(STATS.counts), dict(STATS.seconds)
    lines += ["# HELP erp_events_duplicates_total Redeliveries skipped by the inbox.",
              "# TYPE erp_events_duplicates_total counter",
              f"erp_events_duplicates_total {counts.get('duplicate', 0)}",
              "# HELP erp_consumer_events_total Events handled, by consumer and outcome.",
              "# TYPE erp_consumer_events_total counter"]
    outcome_rows = []
    for key, value in sorted(counts.items()):
        outcome, _, name = key.partition(":")
        if name:
            outcome_rows.append((name, outcome, value, seconds.get(key, 0.0)))
    for name, outcome, value, _ in outcome_rows:
        lines.append(f'erp_consumer_events_total{{consumer="{name}",outcome="{outcome}"}} {value}')
    lines += ["# HELP erp_consumer_seconds_total Time spent in consumers, by outcome.",
              "# TYPE erp_consumer_seconds_total counter"]
    for name, outcome, _, secs in outcome_rows:
        if outcome in ("success", "failure"):
            lines.append(
                f'erp_consumer_seconds_total{{consumer="{name}",outcome="{outcome}"}} {secs:.6f}')
    return "\n".join(lines) + "\n"
