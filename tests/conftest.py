"""Fixtures shared by every tier: a real Postgres (embedded unless TEST_DATABASE_URL is given),
a fresh database per run, billing migrated into it under its own role."""

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from tatame_devstack.postgres import create_database, embedded_postgres, provision_service_role

from services.common.migrations import upgrade_to_head


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of a fresh database on TEST_DATABASE_URL's server, or on an embedded server."""
    name = "tatame_test_" + secrets.token_hex(4)
    if given := os.environ.get("TEST_DATABASE_URL"):
        yield create_database(given, name)
        return
    # Short path: the server's unix socket lives in its data directory.
    data_dir = Path(tmp_path_factory.mktemp("pg", numbered=True))
    with embedded_postgres(data_dir) as admin_url:
        yield create_database(admin_url, name)


@pytest.fixture(scope="session")
def billing_database_url(postgres_admin_url: str) -> str:
    """Schema `billing` at head, reached as role `billing` (as in production)."""
    url = provision_service_role(postgres_admin_url, "billing")
    upgrade_to_head(package="services.billing", database_url=url)
    return url
