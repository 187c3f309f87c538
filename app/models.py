"""Import every domain's models so ``Base.metadata`` is complete (Alembic, tests)."""

from app.api import idempotency as idempotency_models  # noqa: F401
from app.api import tokens as api_token_models  # noqa: F401
from app.audit import models as audit_models  # noqa: F401
from app.auth import security_log as security_log_models  # noqa: F401
from app.billing import models as billing_models  # noqa: F401
from app.crm import custom_fields as crm_custom_field_models  # noqa: F401
from app.crm import models as crm_models  # noqa: F401
from app.crm import tickets as crm_ticket_models  # noqa: F401
from app.events import models as event_models  # noqa: F401
from app.hr import models as hr_models  # noqa: F401
from app.inventory import models as inventory_models  # noqa: F401
from app.ledger import models as ledger_models  # noqa: F401
from app.oauth import models as oauth_models  # noqa: F401
from app.purchasing import models as purchasing_models  # noqa: F401
from app.sales import models as sales_models  # noqa: F401
from tenants import models as tenant_models  # noqa: F401
