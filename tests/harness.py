"""What the tiers' fixtures and tests build on: the running billing server they share, a way to
serve an ASGI app on a loopback port, a freshly migrated database per service."""

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import stripe
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame_devstack.postgres import create_database, provision_service_role

from services.billing.grpc_policy import GATEWAY
from services.billing.privacy.inbox import InboxClient
from services.common.migrations import upgrade_to_head
from tests.stripe_target import StripeTarget

# Where Checkout and the Billing Portal may send customers back to, in every tier's billing.
APP_ORIGIN = "https://app.tatame.test"


@dataclass(frozen=True)
class BillingHandle:
    """A running billing gRPC server and what it is wired to."""

    target: str
    engine: AsyncEngine
    stripe: stripe.StripeClient
    service_secrets: dict[str, str]
    stripe_target: StripeTarget
    # Its client of the webhooks inbox (the privacy API), for servers of tests on the same inbox.
    inbox: InboxClient | None = None

    @property
    def gateway_secret(self) -> str:
        return self.service_secrets[GATEWAY]


async def serve_on_loopback(app: Any, port: int = 0) -> tuple[uvicorn.Server, asyncio.Task, int]:
    """Run `app` with uvicorn on 127.0.0.1 and `port` (0: a free one); return the server, its
    task and port."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


def migrated_database(postgres_admin_url: str, service: str) -> str:
    """A new database on the test server with `service`'s schema at head, as role `service`."""
    admin_url = create_database(postgres_admin_url, f"tatame_{service}_{secrets.token_hex(4)}")
    url = provision_service_role(admin_url, service)
    upgrade_to_head(package=f"services.{service}", database_url=url)
    return url


@dataclass(frozen=True)
class OddPrices:
    """Catalog prices that are not a fixed amount (the `odd_prices` fixture)."""

    product: str
    tiered: str
    metered: str
    chosen: str


@dataclass(frozen=True)
class OneTimeProduct:
    """A product sold once, granting `feature` (the `one_time_product` fixture)."""

    product: str
    price: str
    feature: str
