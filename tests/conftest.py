"""Fixtures shared by every tier: a real Postgres (embedded unless TEST_DATABASE_URL is given),
a fresh database per run, billing migrated into it under its own role."""

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from psycopg_pool import AsyncConnectionPool
from tatame_devstack.catalog_seed import seed_demo_catalog
from tatame_devstack.postgres import create_database, embedded_postgres, provision_service_role
from tatame_devstack.run import emulator_conformance_violations, running_stripe_emulator

from services.auth.service_credentials import ServiceCredentials
from services.billing.catalog import sync_catalog
from services.billing.grpc_api import start_billing_server
from services.billing.grpc_policy import GATEWAY, OPS_CLI, WEBHOOKS_RELAY
from services.billing.privacy.inbox import CALLER as INBOX_CALLER
from services.billing.privacy.inbox import InboxClient
from services.billing.settings import BillingRules
from services.common.db import create_engine
from services.common.migrations import upgrade_to_head
from services.webhooks.grpc_api import start_admin_server
from tests.harness import APP_ORIGIN, BillingHandle, OddPrices, OneTimeProduct, migrated_database
from tests.integration.stripe_emulator_helpers import unique
from tests.stripe_target import EMULATOR_KEY, StripeTarget, stripe_test_mode, test_mode_requested


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulator: needs the Stripe emulator (skipped by `make test-stripe`)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Against Stripe's test mode, skip what only the emulator can do: its own tests, events
    sent to a loopback receiver, the `/_testing` helpers."""
    if not test_mode_requested():
        return
    skip = pytest.mark.skip(reason="needs the Stripe emulator (this run is against test mode)")
    for item in items:
        fixtures = getattr(item, "fixturenames", ())  # a test function's fixtures
        if item.get_closest_marker("emulator") or "stripe_emulator" in fixtures:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stripe_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (`http://127.0.0.1:<port>`) of an in-memory Stripe emulator for the session,
    checking every request and response against Stripe's API: the run fails at the end if any
    departed (tests that send Stripe what it would refuse use an emulator of their own)."""
    log_path = tmp_path_factory.mktemp("stripe-emulator") / "emulator.log"
    with running_stripe_emulator(log_path, "--port", "0", "--conformance") as base_url:
        yield base_url
        violations = emulator_conformance_violations(base_url)
    if violations:
        pytest.fail(
            "The Stripe emulator departed from Stripe's API at the pinned version "
            f"({len(violations)} times):\n" + "\n".join(dict.fromkeys(violations)),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def billing_database_url(postgres_admin_url: str) -> str:
    """Schema `billing` at head, reached as role `billing` (as in production)."""
    url = provision_service_role(postgres_admin_url, "billing")
    upgrade_to_head(package="services.billing", database_url=url)
    return url


@pytest.fixture(scope="session")
async def stripe_target(request: pytest.FixtureRequest) -> AsyncIterator[StripeTarget]:
    """The run's Stripe: the session's emulator, or Stripe's test mode (`make test-stripe`),
    whose test clocks made by the run are deleted at the end."""
    if not test_mode_requested():
        yield StripeTarget(
            api_base=request.getfixturevalue("stripe_emulator"), secret_key=EMULATOR_KEY
        )
        return
    target = await stripe_test_mode()
    yield target
    await target.delete_run_clocks()


@pytest.fixture(scope="session")
def inbox_database_url(postgres_admin_url: str) -> str:
    """Schema `webhooks` in its own database: the inbox that billing's erasures and exports ask
    (through the webhooks privacy API), which the e2e webhook pipeline fills."""
    return migrated_database(postgres_admin_url, "webhooks")


@pytest.fixture(scope="session")
async def billing(
    billing_database_url: str, stripe_target: StripeTarget, inbox_database_url: str
) -> AsyncIterator[BillingHandle]:
    """Billing on a loopback port, its catalog mirror filled from the seeded Stripe; the
    customers it creates sit on the run's test clocks. It asks the inbox of
    `inbox_database_url` through the webhooks privacy API, served here as the relay serves it."""
    inbox_pool = AsyncConnectionPool(inbox_database_url, min_size=1, max_size=2, open=False)
    await inbox_pool.open(wait=True)
    inbox_secret = secrets.token_urlsafe(32)
    inbox_server = await start_admin_server(
        address="127.0.0.1:0", pool=inbox_pool, service_secrets={INBOX_CALLER: inbox_secret}
    )
    inbox_channel = grpc.aio.insecure_channel(f"127.0.0.1:{inbox_server.port}")
    inbox = InboxClient(
        inbox_channel, ServiceCredentials(INBOX_CALLER, inbox_secret, audience="webhooks")
    )
    seed_demo_catalog(stripe_target.client(synchronous=True))
    stripe_client = stripe_target.client()
    engine = create_engine(billing_database_url, pool_size=5)
    await sync_catalog(engine=engine, stripe_client=stripe_client)
    # "reporting" is a known service that the method policy grants nothing.
    service_secrets = {
        name: secrets.token_urlsafe(32) for name in (GATEWAY, WEBHOOKS_RELAY, OPS_CLI, "reporting")
    }
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=engine,
        stripe_client=stripe_client,
        service_secrets=service_secrets,
        rules=BillingRules(
            allowed_redirect_origins=frozenset({APP_ORIGIN}),
            test_clock_prefix=stripe_target.test_clock_prefix,
        ),
        inbox=inbox,
    )
    yield BillingHandle(
        f"127.0.0.1:{server.port}", engine, stripe_client, service_secrets, stripe_target, inbox
    )
    await server.stop(0)
    await engine.dispose()
    await inbox_channel.close(None)
    await inbox_server.stop(0)
    await inbox_pool.close()


@pytest.fixture(scope="session")
def webhooks_database_url(postgres_admin_url: str) -> str:
    """Schema `webhooks` at head in its own database, reached as role `webhooks`."""
    return migrated_database(postgres_admin_url, "webhooks")


@pytest.fixture
async def odd_prices(billing: BillingHandle) -> AsyncIterator[OddPrices]:
    """A product of three prices that are not a fixed amount, in the catalog for one test."""
    stripe = billing.stripe
    product = await stripe.v1.products.create_async(params={"name": unique("Odd")})
    tiered = await stripe.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": [{"up_to": 5, "unit_amount": 1000}, {"up_to": "inf", "unit_amount": 800}],
        }
    )
    meter = await stripe.v1.billing.meters.create_async(
        params={
            "display_name": "Classes",
            "event_name": unique("classes"),
            "default_aggregation": {"formula": "sum"},
        }
    )
    metered = await stripe.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 5,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    chosen = await stripe.v1.prices.create_async(
        params={
            "product": product.id,
            "currency": "usd",
            "custom_unit_amount": {"enabled": True, "minimum": 500, "preset": 2000},
        }
    )
    await sync_catalog(engine=billing.engine, stripe_client=stripe)
    try:
        yield OddPrices(product.id, tiered.id, metered.id, chosen.id)
    finally:
        await stripe.v1.products.update_async(product.id, params={"active": False})
        await sync_catalog(engine=billing.engine, stripe_client=stripe)


@pytest.fixture
async def one_time_product(billing: BillingHandle) -> AsyncIterator[OneTimeProduct]:
    """A product sold once (a one-time price of 2,500 cents) that grants a feature of its own
    for good, in the catalog for one test."""
    stripe = billing.stripe
    feature = "seminar_" + secrets.token_hex(4)
    product = await stripe.v1.products.create_async(
        params={"name": unique("Seminar"), "metadata": {"features": feature}}
    )
    price = await stripe.v1.prices.create_async(
        params={"product": product.id, "currency": "usd", "unit_amount": 2500}
    )
    await sync_catalog(engine=billing.engine, stripe_client=stripe)
    try:
        yield OneTimeProduct(product.id, price.id, feature)
    finally:
        await stripe.v1.products.update_async(product.id, params={"active": False})
        await sync_catalog(engine=billing.engine, stripe_client=stripe)
