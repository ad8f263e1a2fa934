"""Alembic environment for schema `billing`; the version table lives inside the schema."""

from services.billing.models import metadata
from services.common.migrations import run_alembic_env

run_alembic_env(metadata)
