"""Every module that registers event consumers, imported by web and worker alike.

The web process needs them too: ``erp up`` runs consumers in-process, and the
exceptions page calls consumers' retry handlers. Each domain adds its module here.
"""

from __future__ import annotations

import importlib

CONSUMER_MODULES: list[str] = [
    "app.events.webhooks",
    "app.events.maintenance",
    "app.audit.sealer",
    "app.sales.consumers",
    "app.billing.consumers",
]


def load() -> None:
    for name in CONSUMER_MODULES:
        importlib.import_module(name)
