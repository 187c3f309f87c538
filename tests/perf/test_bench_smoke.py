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


def test_erp_benchmark_smoke(capsys):
    """Full size: ``python -m tests.perf.bench_erp`` (50,000 products, 2M moves)."""
    from tests.perf import bench_erp

    result = bench_erp.run(products=300, moves=6000, tenants=2, samples=10)
    out = capsys.readouterr().out
    assert "targets:" in out and "valuation as of" in out
    assert result["counts"]["products"] == 300 and result["counts"]["moves"] >= 5000
    assert result["counts"]["low"] == 15  # every 20th product has a reorder level of 1000
    for key in ("lookup", "low_stock_list", "delivery", "valuation"):
        assert result[key]["p50_ms"] > 0
