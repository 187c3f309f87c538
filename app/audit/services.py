"""Sealing the audit log into a per-tenant hash chain, and verifying the chain.

Seal ``n`` covers one log row: ``hash_n = sha256(hash_{n-1} || canonical(row))``,
starting from 32 zero bytes. Canonical text is the row's fields as sorted, compact
JSON, so anyone can recompute it with the documented recipe. Altering, deleting or
re-ordering a sealed row (which the app role cannot do: the log is append-only for
it, and a seal's foreign key pins its row) breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenants.context import require_context

GENESIS = bytes(32)
BATCH = 1000


def canonical(row: Any) -> bytes:
    """The bytes a seal hashes for one log row."""
    fields = {
        "id": str(row.id), "table": row.table_name,
        "row_id": str(row.row_id) if row.row_id else None, "op": row.op,
        "old": row.old, "new": row.new,
        "user_id": str(row.user_id) if row.user_id else None,
        "request_id": row.request_id, "at": row.at.isoformat(),
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def chain(prev: bytes, row: Any) -> bytes:
    return hashlib.sha256(prev + canonical(row)).digest()


LOG_COLUMNS = "l.id, l.table_name, l.row_id, l.op, l.old, l.new, l.user_id, l.request_id, l.at"


def seal(session: Session, limit: int = BATCH) -> int:
    """Seal up to ``limit`` unsealed rows of the current tenant; return how many.

    A transaction-scoped advisory lock per tenant lets only one sealer extend a
    tenant's chain at a time (a second one waits, then finds nothing to do).
    """
    ctx = require_context()
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('audit-seal'),"
                         " hashtext(:t))"), {"t": str(ctx.tenant_id)})
    last = session.execute(text(
        "SELECT seq, hash FROM audit.seals ORDER BY seq DESC LIMIT 1")).first()
    seq, prev = (last.seq, bytes(last.hash)) if last else (0, GENESIS)
    rows = session.execute(text(
        f"SELECT {LOG_COLUMNS} FROM audit.log l WHERE NOT EXISTS"
        " (SELECT 1 FROM audit.seals s WHERE s.tenant_id = l.tenant_id AND s.log_id = l.id)"
        " ORDER BY l.at, l.id LIMIT :n"), {"n": limit}).all()
    for row in rows:
        seq += 1
        digest = chain(prev, row)
        session.execute(text(
            "INSERT INTO audit.seals (tenant_id, seq, log_id, prev_hash, hash)"
            " VALUES (app.current_tenant_id(), :s, :l, :p, :h)"),
            {"s": seq, "l": row.id, "p": prev, "h": digest})
        prev = digest
    return len(rows)


@dataclass(frozen=True)
class Verification:
    sealed: int
    unsealed: int
    broken_at: int | None  # first seq whose hash does not match, if any
    broken_log_id: uuid.UUID | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(session: Session) -> Verification:
    """Recompute the current tenant's chain from the start."""
    require_context()
    prev = GENESIS
    count = 0
    result = session.execute(text(
        f"SELECT s.seq, s.prev_hash, s.hash, {LOG_COLUMNS} FROM audit.seals s"
        " LEFT JOIN audit.log l ON l.tenant_id = s.tenant_id AND l.id = s.log_id"
        " ORDER BY s.seq")).yield_per(2000)
    for row in result:
        count += 1
        if (row.seq != count or bytes(row.prev_hash) != prev or row.id is None
                or chain(prev, row) != bytes(row.hash)):
            return Verification(count - 1, _unsealed(session), row.seq, row.id)
        prev = bytes(row.hash)
    return Verification(count, _unsealed(session), None)


def _unsealed(session: Session) -> int:
    return session.execute(text(
        "SELECT count(*) FROM audit.log l WHERE NOT EXISTS (SELECT 1 FROM audit.seals s"
        " WHERE s.tenant_id = l.tenant_id AND s.log_id = l.id)")).scalar_one()
