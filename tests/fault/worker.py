"""Entry point of a worker process under fault injection: ``python -m tests.fault.worker``.

Registers the fault consumer, then runs the real worker runtime (consumers and
relay) with the settings from the environment.
"""

from __future__ import annotations

import tests.fault.consumers  # noqa: F401 - registers fault.counter
from app.logs import init_logging
from app.settings import load_settings
from workers.runtime import run

if __name__ == "__main__":
    settings = load_settings()
    init_logging(settings.log_level, settings.log_format)
    run(settings, threads=4)
