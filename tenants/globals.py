"""The tables outside row-level security, and why each one is.

Every other table in a tenant schema is tenant-owned and must pass the catalog test
(``tests/test_catalog.py``). These are read before a tenant is chosen, or are the
registry of tenants itself, so they cannot be fenced by ``app.tenant_id``. They are
reached only through the narrow functions in ``tenants.services``
(``find_tenant_by_slug``, ``find_user_by_email``, ``memberships_of_user``,
``tenant_members``), which always filter by the key they are given.
"""

GLOBAL_TABLES: dict[str, str] = {
    "core.tenants": "the tenant registry itself: the URL slug is resolved to a tenant "
    "before any tenant context exists",
    "core.users": "a person's identity spans tenants; looked up by email at sign-in "
    "before a tenant is chosen",
    "core.memberships": "the membership lookup at sign-in lists a user's tenants for "
    "the tenant switcher before one is chosen; tenant_id-led keys like a tenant table",
    "public.alembic_version": "migration bookkeeping, no business data",
    "events.pending_tenants": "which tenants have unpublished outbox rows (a tenant id and a "
    "counter, no business data); the relay reads it before it can choose a tenant context",
}

# Every business module has its own schema; all tables in these schemas are tenant
# tables unless listed in GLOBAL_TABLES. Schema ``app`` holds only functions.
TENANT_SCHEMAS: tuple[str, ...] = (
    "core", "crm", "sales", "inventory", "purchasing", "ledger", "billing", "hr",
    "audit", "events",
)

# Infrastructure schemas: global, no tenant data in rows the app role can read
# without a tenant (the message transport's queue holds message envelopes whose
# payload is only ids; see workers/broker.py).
INFRA_SCHEMAS: tuple[str, ...] = ("dramatiq",)

# Business schemas: every table in them must carry the audit trigger (the catalog
# check names any that does not). ``events`` and ``audit`` are machinery.
AUDITED_SCHEMAS: tuple[str, ...] = (
    "core", "crm", "sales", "inventory", "purchasing", "ledger", "billing", "hr",
)
# Tables in those schemas that are not audited, and why.
UNAUDITED_TABLES: dict[str, str] = {
    "core.tenants": "the tenant registry; changes are operator actions logged by the CLI",
    "core.users": "global identities with no tenant to file the entry under",
    "crm.custom_values": "a search index of the custom jsonb columns, rebuilt from them by a "
    "trigger; the columns themselves are audited on their own tables",
    "core.security_events": "itself an append-only log of sign-ins and security changes; "
    "auditing it would copy every row",
    "core.oauth_tokens": "short-lived access token bookkeeping; the API clients that may get "
    "tokens are audited, refusals go to core.security_events",
    "core.idempotency_keys": "request bookkeeping of API POSTs; the effects they guard are "
    "audited themselves",
}
