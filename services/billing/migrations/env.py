"""Alembic environment for schema `billing`; the version table lives inside the schema."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.billing.models import SCHEMA, metadata
from services.common.db import create_engine


def _run(connection: Connection) -> None:
    # Production provisions the schema (owned by the service's role) before the first migration;
    # create it only where it is missing, as `IF NOT EXISTS` still needs CREATE on the database.
    present = connection.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": SCHEMA}
    ).first()
    if present is None:
        connection.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=SCHEMA,
        include_schemas=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"), pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        "offline migrations are not supported; run `python -m services.billing migrate`"
    )
asyncio.run(_main())
