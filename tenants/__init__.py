"""Tenancy: registry, context, row-level-security discipline, roles and permissions.

Everything that decides *which tenant* a piece of work belongs to lives here, so that
there is one place to audit. See ``context`` for how the tenant reaches PostgreSQL,
``globals`` for the few tables outside row-level security, and ``rls`` for the
migration helper that fences a new table.
"""
