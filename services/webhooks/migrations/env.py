"""Alembic environment for schema `webhooks`; the version table lives inside the schema."""

from services.common.migrations import run_alembic_env
from services.webhooks.models import metadata

run_alembic_env(metadata)
