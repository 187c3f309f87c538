"""ORM-level tenant filter: the explicit ``WHERE tenant_id = ...`` on every query.

Row-level security is the guarantee; this is the habit on top of it. Adding the
tenant to every ORM SELECT/UPDATE/DELETE of a tenant-owned entity lets the planner
use the tenant-leading indexes with a plain parameter (rather than only the policy's
initplan) and keeps queries correct on a future Citus cluster where ``tenant_id`` is
the distribution column. It also closes one gap RLS leaves open: a policy is only
evaluated per row, so a query on an *empty* table without a tenant would return
nothing instead of failing. Here any ORM query on tenant data without a context
raises ``NoTenantContext`` before it reaches the database.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from app.db import TXN_TENANT

from .context import NoTenantContext, current_context
from .models import TenantKey


def _is_tenant_mapper(cls: type) -> bool:
    return issubclass(cls, TenantKey)


def _add_tenant_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the parent row was already loaded under the same criteria
    touched = [m.class_ for m in state.all_mappers if _is_tenant_mapper(m.class_)]
    if not touched:
        return
    ctx = current_context()
    if ctx is None:
        names = ", ".join(sorted(c.__name__ for c in touched))
        raise NoTenantContext(f"query on tenant data ({names}) without a tenant context")
    tenant_id = ctx.tenant_id
    began_under = state.session.connection().info.get(TXN_TENANT)
    if began_under != tenant_id:
        raise NoTenantContext(
            f"this transaction began under tenant {began_under}, the query runs under "
            f"{tenant_id}: end the transaction before switching (bind_session_context)")
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantKey,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
        )
    )


def install_session_guard() -> None:
    """Register the guard for every ORM session (idempotent)."""
    if not event.contains(Session, "do_orm_execute", _add_tenant_criteria):
        event.listen(Session, "do_orm_execute", _add_tenant_criteria)
