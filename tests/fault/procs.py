"""Worker processes for fault-injection tests and benchmarks: start, stop, clean up."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import pika

ROOT = Path(__file__).resolve().parents[2]
RABBIT = "amqp://guest:guest@127.0.0.1:5672/"


def spawn_worker(env: dict[str, str], log: IO[bytes]) -> subprocess.Popen:
    """``python -m tests.fault.worker``: the real runtime plus the fault consumer."""
    return subprocess.Popen([sys.executable, "-m", "tests.fault.worker"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def stop_workers(workers: list[subprocess.Popen], timeout: float = 30) -> None:
    """SIGTERM every live worker, wait, and SIGKILL what does not stop in time."""
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def delete_queues(prefix: str) -> None:
    """Remove a run's RabbitMQ queues (main, delay, dead-letter)."""
    try:
        conn = pika.BlockingConnection(pika.URLParameters(RABBIT))
    except pika.exceptions.AMQPError:
        return
    channel = conn.channel()
    for suffix in ("", ".DQ", ".XQ"):
        channel.queue_delete(f"{prefix}_events{suffix}")
    conn.close()
