"""Run a service's Alembic history (one history per service, each inside its own schema)."""

from alembic import command
from alembic.config import Config


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
