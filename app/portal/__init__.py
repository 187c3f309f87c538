"""The tenant portal shell: tenant resolution, permissions, dashboard, settings."""
