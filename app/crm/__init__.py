"""CRM: accounts, contacts, leads, the deal pipeline and the activity log."""

from tenants.services import TENANT_SEEDERS

from .pipeline import seed_stages

if seed_stages not in TENANT_SEEDERS:
    TENANT_SEEDERS.append(seed_stages)
