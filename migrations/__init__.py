"""Alembic environment and versions; run them with ``crmgraph migrate``."""
