"""General ledger: double-entry bookkeeping in the tenant's base currency.

Importing the package registers the chart-of-accounts seeder, so every tenant
created afterwards starts with the default chart inside its creation transaction.
"""

from tenants.services import TENANT_SEEDERS

from .services import seed_chart_of_accounts

if seed_chart_of_accounts not in TENANT_SEEDERS:
    TENANT_SEEDERS.append(seed_chart_of_accounts)
