"""Analytics warehouse: snapshots of operational data into DuckDB and plotly reports.

Built by the analytics issue; this package holds the pipeline and report code then.
"""
