"""Benchmarks at smoke size in CI: they run end to end and report sane figures.

Full size: ``.venv/bin/python -m tests.perf.bench_events --events 4000``.
"""

from __future__ import annotations

from tests.perf import bench_events


def test_events_benchmark_smoke(capsys):
    result = bench_events.run(150, "postgres")
    out = capsys.readouterr().out
    assert "ratio job layer / baseline" in out
    assert result["baseline"] > 0 and result["job_layer"] > 0
