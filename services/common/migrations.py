"""Run a service's Alembic history (one history per service, each inside its own schema)."""

import asyncio

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from services.common.db import create_engine


def alembic_config(*, package: str, database_url: str) -> Config:
    """Alembic configuration for the `migrations` folder of `package`, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade_to_head(*, package: str, database_url: str) -> None:
    """Apply every pending migration of `package`; a no-op when the schema is current."""
    command.upgrade(alembic_config(package=package, database_url=database_url), "head")


def run_alembic_env(metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py`: online migrations of `metadata.schema`."""
    schema = metadata.schema
    if context.is_offline_mode():
        raise SystemExit("offline migrations are not supported; run the service's `migrate`")

    def run(connection: Connection) -> None:
        # Production provisions the schema (owned by the service's role) before the first
        # migration; create it only where missing, as `IF NOT EXISTS` still needs CREATE on the db.
        present = connection.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
        ).first()
        if present is None:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        url = context.config.get_main_option("sqlalchemy.url")
        if url is None:
            raise RuntimeError("alembic's config names no sqlalchemy.url")
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(run)
        finally:
            await engine.dispose()

    asyncio.run(main())
