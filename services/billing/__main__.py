"""`python -m services.billing serve|migrate|sync-catalog`."""

import argparse
import asyncio
import logging

from services.billing.catalog import sync_catalog
from services.billing.grpc_api import start_billing_server
from services.billing.settings import BillingSettings, CatalogSyncSettings
from services.common.db import create_engine
from services.common.grpc_server import wait_for_termination_signal
from services.common.logging import configure_logging
from services.common.migrations import upgrade_to_head
from services.common.settings import DatabaseSettings
from services.common.stripe_sdk import stripe_client_from

log = logging.getLogger("services.billing")


async def serve(settings: BillingSettings) -> None:
    """Serve until SIGTERM/SIGINT, then drain for the configured grace period."""
    engine = create_engine(
        settings.database_url.get_secret_value(), pool_size=settings.billing_db_pool_size
    )
    server = await start_billing_server(
        address=settings.billing_grpc_address,
        engine=engine,
        stripe_client=stripe_client_from(settings),
        service_secrets=settings.service_secrets,
        rules=settings.rules,
    )
    log.info("billing gRPC serving", extra={"fields": {"port": server.port}})
    try:
        await wait_for_termination_signal()
    finally:
        await server.stop(settings.billing_shutdown_grace_seconds)
        await engine.dispose()
        log.info("billing stopped")


async def sync(settings: CatalogSyncSettings) -> None:
    """Fill the catalog mirror from Stripe once."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        await sync_catalog(engine=engine, stripe_client=stripe_client_from(settings))
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.billing")
    parser.add_argument("command", choices=["serve", "migrate", "sync-catalog"])
    command = parser.parse_args().command
    if command == "migrate":
        database = DatabaseSettings()
        configure_logging(service="billing-migrate", level=database.log_level)
        upgrade_to_head(
            package="services.billing", database_url=database.database_url.get_secret_value()
        )
        return
    if command == "sync-catalog":
        sync_settings = CatalogSyncSettings()
        configure_logging(service="billing-sync-catalog", level=sync_settings.log_level)
        asyncio.run(sync(sync_settings))
        return
    settings = BillingSettings()
    configure_logging(service="billing", level=settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
