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


def test_api_benchmark_smoke(capsys):
    """Full size: ``python -m tests.perf.bench_api`` (100k contacts, 50k deals, 20 tenants)."""
    from tests.perf import bench_api

    results = bench_api.run(contacts=400, deals=200, tenants=2, clients=2, seconds=1)
    out = capsys.readouterr().out
    assert "GET /deals?stage=..." in out and "ratio ours / minimal" in out
    for ours, minimal in results.values():
        assert ours.requests > 0 and minimal.requests > 0
        assert ours.errors == 0 and minimal.errors == 0
