"""Fixtures of the notification tests, shared by the package: its database, billing on it, the
sinks and an in-process notifier."""

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2_grpc
from tatame_devstack.notification_sinks import Sinks

from services.billing.catalog import sync_catalog
from services.billing.grpc_api import start_billing_server
from services.billing.notifications.sender import Sender
from services.billing.settings import BillingRules
from services.common.db import create_engine
from tests.harness import BillingHandle, migrated_database
from tests.integration.notifications.world import (
    SECRETS,
    Stub,
    notifier_env,
    settings_of,
)


@pytest.fixture(scope="package")
def database_url(postgres_admin_url: str) -> str:
    return migrated_database(postgres_admin_url, "billing")


@pytest.fixture(scope="package")
async def engine(database_url: str, billing: BillingHandle) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=4)
    await sync_catalog(engine=engine, stripe_client=billing.stripe)  # the session's catalog
    yield engine
    await engine.dispose()


@pytest.fixture(scope="package")
async def channel(billing: BillingHandle, engine: AsyncEngine) -> AsyncIterator[grpc.aio.Channel]:
    """Billing on this module's database (the session's Stripe), with an operators' client."""
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=engine,
        stripe_client=billing.stripe,
        service_secrets=SECRETS,
        rules=BillingRules(test_clock_prefix=billing.stripe_target.test_clock_prefix),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield channel
    finally:
        await server.stop(0)


@pytest.fixture(scope="package")
def stub(channel: grpc.aio.Channel) -> Stub:
    return billing_pb2_grpc.BillingServiceStub(channel)


@pytest.fixture(scope="package")
def admin(channel: grpc.aio.Channel) -> billing_pb2_grpc.BillingAdminServiceStub:
    return billing_pb2_grpc.BillingAdminServiceStub(channel)


@pytest.fixture(scope="package")
async def sinks() -> AsyncIterator[Sinks]:
    sinks = Sinks()
    await sinks.start()
    yield sinks
    await sinks.stop()


@pytest.fixture(scope="package")
async def sender(engine: AsyncEngine, database_url: str, sinks: Sinks) -> AsyncIterator[Sender]:
    settings = settings_of(notifier_env(database_url, sinks))
    async with httpx.AsyncClient() as http:
        yield Sender(engine=engine, settings=settings, http=http)
