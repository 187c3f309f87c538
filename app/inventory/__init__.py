"""Inventory: products, warehouses, stock levels and the append-only move ledger.

Importing the package registers the default-warehouse seeder for new tenants.
"""

from tenants.services import TENANT_SEEDERS

from .services import seed_default_warehouse

if seed_default_warehouse not in TENANT_SEEDERS:
    TENANT_SEEDERS.append(seed_default_warehouse)
