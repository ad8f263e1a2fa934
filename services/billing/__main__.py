"""`python -m services.billing serve|migrate|sync-catalog`."""

import argparse
import asyncio
import logging

from services.billing.catalog import sync_catalog
from services.billing.grpc_api import start_billing_server
from services.billing.settings import BillingSettings
from services.billing.stripe_client import create_stripe_client
from services.common.db import create_engine
from services.common.grpc_server import wait_for_termination_signal
from services.common.logging import configure_logging
from services.common.migrations import upgrade_to_head
from services.common.settings import DatabaseSettings

log = logging.getLogger("services.billing")


def _stripe(settings: BillingSettings):
    return create_stripe_client(
        secret_key=settings.stripe_secret_key.get_secret_value(),
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
    )


async def serve(settings: BillingSettings) -> None:
    """Serve until SIGTERM/SIGINT, then drain for the configured grace period."""
    engine = create_engine(
        settings.database_url.get_secret_value(), pool_size=settings.billing_db_pool_size
    )
    server = await start_billing_server(
        address=settings.billing_grpc_address,
        engine=engine,
        stripe_client=_stripe(settings),
        service_secrets=settings.service_secrets,
    )
    log.info("billing gRPC serving", extra={"fields": {"port": server.port}})
    try:
        await wait_for_termination_signal()
    finally:
        await server.stop(settings.billing_shutdown_grace_seconds)
        await engine.dispose()
        log.info("billing stopped")


async def sync(settings: BillingSettings) -> None:
    """Fill the catalog mirror from Stripe once."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        await sync_catalog(engine=engine, stripe_client=_stripe(settings))
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
    settings = BillingSettings()
    configure_logging(service="billing", level=settings.log_level)
    if command == "sync-catalog":
        asyncio.run(sync(settings))
    else:
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
