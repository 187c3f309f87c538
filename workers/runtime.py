"""A worker process: Dramatiq consumer threads plus an outbox relay thread.

``erp worker`` runs one of these per process; two or more processes (or machines)
can run side by side: the relay's SKIP LOCKED and the consumers' inbox make
doubled work harmless.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.broker import Broker

from app.settings import Settings

from .broker import events_queue, make_broker
from .dispatch import declare_actors
from .relay import Relay
from .scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    app: Any
    broker: Broker
    worker: dramatiq.Worker
    relay: Relay
    relay_thread: threading.Thread | None
    stop_event: threading.Event
    scheduler_thread: threading.Thread | None = None

    def stop(self) -> None:
        self.stop_event.set()
        for thread in (self.relay_thread, self.scheduler_thread):
            if thread is not None:
                thread.join(timeout=10)
        self.worker.stop(timeout=10_000)
        self.broker.close()


def start(settings: Settings, *, threads: int = 4, relay: bool = True, app: Any = None,
          ) -> Runtime:
    """Start consumer threads (and the relay) in this process; return a handle."""
    if app is None:
        from app import create_app

        app = create_app(settings)
    queue = events_queue(settings)
    broker = make_broker(settings, app)
    declare_actors(broker, app, queue)
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    worker.start()
    stop_event = threading.Event()
    relay_obj = Relay(app, broker, queue)
    thread = None
    if relay:
        thread = threading.Thread(target=relay_obj.run_forever,
                                  args=(stop_event, settings.database_url or ""),
                                  name="outbox-relay", daemon=True)
        thread.start()
    scheduler_thread = None
    if relay:
        scheduler_thread = threading.Thread(target=Scheduler(app).run_forever,
                                            args=(stop_event,), name="scheduler", daemon=True)
        scheduler_thread.start()
    log.info("worker started: %s threads on queue %s, relay %s", threads, queue,
             "on" if relay else "off")
    return Runtime(app, broker, worker, relay_obj, thread, stop_event, scheduler_thread)


def serve_metrics(app: Any, port: int) -> None:
    """Expose this worker process's /metrics on 127.0.0.1:``port`` (a daemon thread)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from sqlalchemy.orm import Session

    from app.db import db

    from .metrics import render

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            with app.app_context():
                body = render(lambda: Session(db.engine)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


def run(settings: Settings, *, threads: int = 4, relay: bool = True,
        metrics_port: int | None = None) -> None:
    """Run until SIGINT/SIGTERM, then stop cleanly (messages in flight finish)."""
    runtime = start(settings, threads=threads, relay=relay)
    if metrics_port:
        serve_metrics(runtime.app, metrics_port)
    done = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("worker stopping (signal %s)", signum)
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    done.wait()
    runtime.stop()
