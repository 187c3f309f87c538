"""``Idempotency-Key`` for API POSTs: the same key and body return the first response
without a second effect; the same key with another body is refused (422).

The key row is inserted at the start of the request's transaction and the response
is stored in it before the commit, so the effect and "this key is done" commit
together or not at all. A concurrent request with the same key waits on the row's
unique index until the first one commits (then replays its response) or rolls back
(then runs itself). Keys belong to the token's tenant.

Key rows are business bookkeeping, not audited (``core.idempotency_keys`` is exempt
from the audit trigger: the effect itself is audited).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, g, jsonify, make_response, request
from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, db
from app.errors import ApiError
from tenants.models import TenantScoped

HEADER = "Idempotency-Key"
MAX_KEY = 200


class IdempotencyKey(TenantScoped, Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "key"), {"schema": "core"})

    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[Any | None] = mapped_column(JSONB)


def _request_hash() -> bytes:
    return hashlib.sha256(b"\0".join([request.method.encode(), request.path.encode(),
                                      request.get_data()])).digest()


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a JSON POST view (after authentication) with Idempotency-Key handling.

    The view must not commit: this wrapper commits once, after storing the response.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            result = view(*args, **kwargs)
            db.session.commit()
            return result
        if not key or len(key) > MAX_KEY:
            raise ApiError(400, f"{HEADER} must be 1-{MAX_KEY} characters")
        digest = _request_hash()
        inserted = db.session.execute(
            insert(IdempotencyKey)
            .values(tenant_id=g.ctx.tenant_id, key=key, request_hash=digest)
            .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
            .returning(IdempotencyKey.id)
        ).scalar_one_or_none()
        if inserted is None:
            db.session.rollback()
            return _replay(key, digest)
        response = make_response(view(*args, **kwargs))
        if response.is_json and response.status_code < 500:
            db.session.execute(
                IdempotencyKey.__table__.update()
                .where(IdempotencyKey.tenant_id == g.ctx.tenant_id,
                       IdempotencyKey.id == inserted)
                .values(status_code=response.status_code, response=response.get_json())
            )
        db.session.commit()
        return response

    return wrapper


def _replay(key: str, digest: bytes) -> Response:
    row = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == key))
    if row is None:  # the first request rolled back meanwhile: let the client retry
        raise ApiError(409, f"a request with this {HEADER} did not complete; send it again")
    if bytes(row.request_hash) != digest:
        raise ApiError(422, f"this {HEADER} was used with a different request",
                       "idempotency_key_reused")
    if row.status_code is None:
        raise ApiError(409, f"a request with this {HEADER} is still being processed")
    response = jsonify(row.response)
    response.status_code = row.status_code
    response.headers["Idempotent-Replayed"] = "true"
    return response

