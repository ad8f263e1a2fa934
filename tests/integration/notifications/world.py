"""What the notification tests share: the notifier's environment against the sinks, the app's
side (a user calling through the gateway's credential), Stripe events as the relay delivers
them, and reads of the outbox."""

import json
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, notifications_pb2
from tatame_devstack.notification_sinks import Sinks

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.grpc_api import GATEWAY, WEBHOOKS_RELAY
from services.billing.grpc_policy import OPS_CLI
from services.billing.notifications.sender import Sender
from services.billing.notifications.settings import NotifierSettings
from services.billing.notifications.tables import notification_devices, notifications
from tests.harness import BillingHandle
from tests.integration.billing_accounts import events_about
from tests.stripe_objects import event_envelope

SECRETS = {name: secrets.token_urlsafe(32) for name in (GATEWAY, WEBHOOKS_RELAY, OPS_CLI)}
OPERATOR = ServiceCredentials(OPS_CLI, SECRETS[OPS_CLI], audience="billing")
RELAY = ServiceCredentials(WEBHOOKS_RELAY, SECRETS[WEBHOOKS_RELAY], audience="billing")
GATEWAY_CREDENTIALS = ServiceCredentials(GATEWAY, SECRETS[GATEWAY], audience="billing")
DOMAIN = "tatame.test"
Stub = billing_pb2_grpc.BillingServiceStub


def notifier_env(database_url: str, sinks: Sinks) -> dict[str, str]:
    """The notifier's environment against the sinks: what `make run` gives it, too."""
    return {
        "DATABASE_URL": database_url,
        "TATAME_ENV": "test",
        "NOTIFY_SMTP_HOST": "127.0.0.1",
        "NOTIFY_SMTP_PORT": str(sinks.smtp_port),
        "NOTIFY_SMTP_SECURITY": "none",
        "NOTIFY_EMAIL_FROM": f"Tatame <billing@{DOMAIN}>",
        "NOTIFY_EXPO_PUSH": "true",
        "NOTIFY_EXPO_PUSH_URL": sinks.push_url,
        "NOTIFY_EXPO_RECEIPTS_URL": sinks.receipts_url,
        "NOTIFY_EXPO_ACCESS_TOKEN": "expo-test-token",
        "NOTIFY_BACKOFF_BASE_SECONDS": "0",
        "NOTIFY_RECEIPT_DELAY_SECONDS": "0",
        "METRICS_PORT": "0",
        "NOTIFY_POLL_SECONDS": "0.1",
        # A notifier killed holds its notifications this long (more than one send's timeouts).
        "NOTIFY_LEASE_SECONDS": "4",
        "NOTIFY_SMTP_TIMEOUT_SECONDS": "1.5",
        "NOTIFY_EXPO_TIMEOUT_SECONDS": "1.5",
    }


def settings_of(env: dict[str, str]) -> NotifierSettings:
    return NotifierSettings.model_validate({name.lower(): value for name, value in env.items()})


async def drain(sender: Sender) -> None:
    while await sender.send_due():
        pass


# --- The app's side ------------------------------------------------------------------------------


class User:
    def __init__(self, billing: BillingHandle, stub: Stub) -> None:
        self.billing, self.stub = billing, stub
        self.principal = Principal("user", "user_" + secrets.token_hex(6))
        self.email = f"{self.principal.id}@example.com"
        self.metadata = GATEWAY_CREDENTIALS.metadata(self.principal)

    async def customer(self, *, locales: list[str] | None = None) -> str:
        reply = await self.stub.CreateCustomer(
            billing_pb2.CreateCustomerRequest(email=self.email, name="Ana"), metadata=self.metadata
        )
        customer_id = reply.customer.stripe_customer_id
        if locales:
            await self.billing.stripe.v1.customers.update_async(
                customer_id, params={"preferred_locales": locales}
            )
            updated = await rendered(self.billing, f"/v1/customers/{customer_id}")
            await apply(self.stub, event_envelope("customer.updated", updated))
        return customer_id

    async def register(self, token: str) -> None:
        await self.stub.RegisterDevice(
            notifications_pb2.RegisterDeviceRequest(token=token, platform="ios"),
            metadata=self.metadata,
        )


async def apply(stub: Stub, event: dict[str, Any]) -> int:
    reply = await stub.ApplyStripeEvent(
        billing_pb2.ApplyStripeEventRequest(
            event_id=event["id"], type=event["type"], payload=json.dumps(event).encode()
        ),
        metadata=RELAY.metadata(None),
    )
    return reply.outcome


async def trialing(billing: BillingHandle, customer_id: str) -> dict[str, Any]:
    """A subscription in its trial, as Stripe renders it."""
    price = (
        await billing.stripe.v1.prices.list_async(params={"lookup_keys": ["basic_monthly"]})
    ).data[0]
    subscription = await billing.stripe.v1.subscriptions.create_async(
        params={"customer": customer_id, "items": [{"price": price.id}], "trial_period_days": 7}
    )
    return await rendered(billing, f"/v1/subscriptions/{subscription.id}")


async def rendered(billing: BillingHandle, path: str) -> dict[str, Any]:
    """A Stripe object as the API renders it (as an event carries it)."""
    return json.loads((await billing.stripe.raw_request_async("get", path)).body)


async def outbox_rows(engine: AsyncEngine, object_id: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            await conn.execute(select(notifications).where(notifications.c.object_id == object_id))
        )


def token() -> str:
    return f"ExponentPushToken[{secrets.token_hex(11)}]"


async def apply_all(billing: BillingHandle, stub: Stub, subscription_id: str) -> None:
    """Every event the emulator sent about the subscription, oldest first, as the relay would."""
    for event in await events_about(billing, {subscription_id}):
        await apply(stub, event)


async def devices_of(engine: AsyncEngine, principal: Principal) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(notification_devices.c.token).where(
                notification_devices.c.principal == principal.key
            )
        )
        return set(rows.scalars())
