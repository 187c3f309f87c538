"""Import every domain's models so ``Base.metadata`` is complete (Alembic, tests)."""

from tenants import models as tenant_models  # noqa: F401
