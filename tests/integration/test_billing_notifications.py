"""Notifications end to end inside billing: Stripe events applied over real gRPC write the
outbox in their transaction; the notifier sends by real SMTP (aiosmtplib) to the aiosmtpd sink
and by HTTP to the stand-in for Expo's push API, on its own database (a sender drains the whole
outbox, so no other test's notifications are in the way)."""

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc, notifications_pb2
from tatame_devstack.notification_sinks import Sinks

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.billing.catalog import sync_catalog
from services.billing.grpc_api import GATEWAY, WEBHOOKS_RELAY, start_billing_server
from services.billing.grpc_policy import OPS_CLI
from services.billing.notifications.sender import Sender
from services.billing.notifications.settings import NotifierSettings
from services.billing.notifications.tables import notification_devices, notifications
from services.billing.settings import BillingRules
from services.common.db import create_engine
from services.common.stripe_sdk import STRIPE_API_VERSION
from tests.harness import BillingHandle, migrated_database
from tests.integration.billing_accounts import events_about

SECRETS = {name: secrets.token_urlsafe(32) for name in (GATEWAY, WEBHOOKS_RELAY, OPS_CLI)}
OPERATOR = ServiceCredentials(OPS_CLI, SECRETS[OPS_CLI], audience="billing")
RELAY = ServiceCredentials(WEBHOOKS_RELAY, SECRETS[WEBHOOKS_RELAY], audience="billing")
GATEWAY_CREDENTIALS = ServiceCredentials(GATEWAY, SECRETS[GATEWAY], audience="billing")
DOMAIN = "tatame.test"
Stub = billing_pb2_grpc.BillingServiceStub


@pytest.fixture(scope="module")
def database_url(postgres_admin_url: str) -> str:
    return migrated_database(postgres_admin_url, "billing")


@pytest.fixture(scope="module")
async def engine(database_url: str, billing: BillingHandle) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=4)
    await sync_catalog(engine=engine, stripe_client=billing.stripe)  # the session's catalog
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return billing_pb2_grpc.BillingServiceStub(channel)


@pytest.fixture(scope="module")
def admin(channel: grpc.aio.Channel) -> billing_pb2_grpc.BillingAdminServiceStub:
    return billing_pb2_grpc.BillingAdminServiceStub(channel)


@pytest.fixture(scope="module")
async def sinks() -> AsyncIterator[Sinks]:
    sinks = Sinks()
    await sinks.start()
    yield sinks
    await sinks.stop()


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
        "NOTIFY_METRICS_PORT": "0",
        "NOTIFY_POLL_SECONDS": "0.1",
        # A notifier killed holds its notifications this long (more than one send's timeouts).
        "NOTIFY_LEASE_SECONDS": "4",
        "NOTIFY_SMTP_TIMEOUT_SECONDS": "1.5",
        "NOTIFY_EXPO_TIMEOUT_SECONDS": "1.5",
    }


def settings_of(env: dict[str, str]) -> NotifierSettings:
    return NotifierSettings.model_validate({name.lower(): value for name, value in env.items()})


@pytest.fixture(scope="module")
async def sender(engine: AsyncEngine, database_url: str, sinks: Sinks) -> AsyncIterator[Sender]:
    settings = settings_of(notifier_env(database_url, sinks))
    async with httpx.AsyncClient() as http:
        yield Sender(engine=engine, settings=settings, http=http)


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
            await apply(self.stub, envelope("customer.updated", updated))
        return customer_id

    async def register(self, token: str) -> None:
        await self.stub.RegisterDevice(
            notifications_pb2.RegisterDeviceRequest(token=token, platform="ios"),
            metadata=self.metadata,
        )


def envelope(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict:
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": created or int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


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


# --- Exactly once per fact -----------------------------------------------------------------------


async def test_a_replayed_trial_will_end_sends_one_email_in_the_customers_language(
    billing, stub, engine, sinks, sender
) -> None:
    user = User(billing, stub)
    customer_id = await user.customer(locales=["pt-BR"])
    subscription = await trialing(billing, customer_id)
    first = envelope("customer.subscription.trial_will_end", subscription)
    redelivered = {**first, "id": "evt_" + secrets.token_hex(12)}  # Stripe resent it

    await apply(stub, first)
    await apply(stub, first)  # the relay's retry: a duplicate
    await apply(stub, redelivered)
    await drain(sender)
    await drain(sender)

    [row] = await outbox_rows(engine, subscription["id"])
    assert (row.kind, row.state, row.email_result) == ("trial_ending", "sent", "sent")
    mail = [m for m in sinks.mail if user.email in m.to]
    assert [m.message_id for m in mail] == [f"<{row.id}@{DOMAIN}>"]
    assert mail[0].subject == "Seu período de teste do Tatame termina em breve"
    assert "Olá Ana" in mail[0].part("text/plain")
    assert "<p>Olá Ana,</p>" in mail[0].part("text/html")


async def test_a_trial_waiting_for_its_card_is_welcomed_once_the_app_saved_the_card(
    billing, stub, engine, sinks, sender
) -> None:
    user = User(billing, stub)
    created = await stub.CreateSubscription(
        billing_pb2.CreateSubscriptionRequest(price="basic_monthly", email=user.email, name="Ana"),
        metadata=user.metadata,
    )
    subscription_id = created.subscription.id
    await apply_all(billing, stub, subscription_id)
    await drain(sender)
    assert await outbox_rows(engine, subscription_id) == []  # no card yet: not started
    intent = created.client_secret.partition("_secret_")[0]
    await billing.stripe.v1.setup_intents.confirm_async(
        intent, params={"payment_method": "pm_card_visa"}
    )  # what PaymentSheet does

    await apply_all(billing, stub, subscription_id)
    await apply_all(billing, stub, subscription_id)  # every event again: duplicates
    await drain(sender)

    [row] = await outbox_rows(engine, subscription_id)
    assert (row.kind, row.state, row.email_result) == ("subscription_started", "sent", "sent")
    assert [m.subject for m in sinks.mail if user.email in m.to] == ["Welcome to Tatame"]


async def apply_all(billing: BillingHandle, stub: Stub, subscription_id: str) -> None:
    """Every event the emulator sent about the subscription, oldest first, as the relay would."""
    for event in await events_about(billing, {subscription_id}):
        await apply(stub, event)


async def test_a_payment_failure_sends_one_email_and_one_push_to_the_registered_device(
    billing, stub, engine, sinks, sender
) -> None:
    user = User(billing, stub)
    customer_id = await user.customer()
    device = token()
    await user.register(device)
    card = await billing.stripe.v1.payment_methods.attach_async(
        "pm_card_chargeCustomerFail", params={"customer": customer_id}
    )
    await billing.stripe.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    price = (
        await billing.stripe.v1.prices.list_async(params={"lookup_keys": ["basic_monthly"]})
    ).data[0]
    subscription = await billing.stripe.v1.subscriptions.create_async(
        params={"customer": customer_id, "items": [{"price": price.id}]}
    )
    [invoice] = (
        await billing.stripe.v1.invoices.list_async(params={"subscription": subscription.id})
    ).data
    failed = envelope(
        "invoice.payment_failed", await rendered(billing, f"/v1/invoices/{invoice.id}")
    )

    await apply(stub, failed)
    await apply(stub, {**failed, "id": "evt_" + secrets.token_hex(12)})
    await drain(sender)

    [row] = await outbox_rows(engine, invoice.id)
    assert (row.kind, row.state, row.email_result, row.push_result) == (
        "payment_failed",
        "sent",
        "sent",
        "sent",
    )
    [mail] = [m for m in sinks.mail if user.email in m.to]
    assert mail.message_id == f"<{row.id}@{DOMAIN}>"
    assert mail.subject == "Your Tatame payment failed"
    amount = f"{invoice.amount_due // 100}.{invoice.amount_due % 100:02d} USD"
    assert amount in mail.part("text/plain")
    [push] = [p for p in sinks.pushes if p["to"] == device]
    assert push["data"] == {"notification_id": str(row.id), "kind": "payment_failed"}
    assert push["title"] == "Your Tatame payment failed"
    assert push["authorization"] == "Bearer expo-test-token"


async def test_a_kind_turned_off_is_not_sent_and_receipts_cannot_be_turned_off(
    billing, stub, engine, sinks, sender
) -> None:
    user = User(billing, stub)
    customer_id = await user.customer()
    device = token()
    await user.register(device)
    off = await stub.UpdateNotificationPreferences(
        notifications_pb2.UpdateNotificationPreferencesRequest(
            preferences=[notifications_pb2.NotificationPreference(kind="trial_ending")]
        ),
        metadata=user.metadata,
    )
    assert {p.kind: p.enabled for p in off.preferences}["trial_ending"] is False
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.UpdateNotificationPreferences(
            notifications_pb2.UpdateNotificationPreferencesRequest(
                preferences=[notifications_pb2.NotificationPreference(kind="receipt")]
            ),
            metadata=user.metadata,
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot be turned off" in (refused.value.details() or "")
    subscription = await trialing(billing, customer_id)

    await apply(stub, envelope("customer.subscription.trial_will_end", subscription))
    await drain(sender)

    [row] = await outbox_rows(engine, subscription["id"])
    assert (row.state, row.email_result, row.push_result) == ("sent", "off", "off")
    assert not [m for m in sinks.mail if user.email in m.to]
    assert not [p for p in sinks.pushes if p["to"] == device]


async def test_device_not_registered_in_a_ticket_or_a_receipt_removes_the_token(
    billing, stub, engine, sinks, sender
) -> None:
    user = User(billing, stub)
    customer_id = await user.customer()
    gone_now, gone_later, kept = token(), token(), token()
    for device in (gone_now, gone_later, kept):
        await user.register(device)
    sinks.unregistered.add(gone_now)
    sinks.unregistered_later.add(gone_later)
    subscription = await trialing(billing, customer_id)

    await apply(stub, envelope("customer.subscription.trial_will_end", subscription))
    await drain(sender)
    assert await devices_of(engine, user.principal) == {gone_later, kept}
    await sender.check_receipts()

    assert await devices_of(engine, user.principal) == {kept}
    [row] = await outbox_rows(engine, subscription["id"])
    assert row.push_result == "sent"


async def devices_of(engine: AsyncEngine, principal: Principal) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(notification_devices.c.token).where(
                notification_devices.c.principal == principal.key
            )
        )
        return set(rows.scalars())


async def test_a_failing_smtp_server_is_retried_then_dead_lettered_then_replayed_by_an_operator(
    billing, stub, admin, engine, sinks, sender, database_url
) -> None:
    user = User(billing, stub)
    subscription = await trialing(billing, await user.customer())
    await apply(stub, envelope("customer.subscription.trial_will_end", subscription))
    env = notifier_env(database_url, sinks) | {
        "NOTIFY_SMTP_PORT": str(closed_port()),
        "NOTIFY_MAX_ATTEMPTS": "2",
    }
    broken = settings_of(env)
    async with httpx.AsyncClient() as http:
        await drain(Sender(engine=engine, settings=broken, http=http))
    [row] = await outbox_rows(engine, subscription["id"])
    assert (row.state, row.attempts, row.email_result) == ("dead", 2, None)
    assert row.last_error.startswith("email: ")
    operator = OPERATOR.metadata(None)
    listed = await admin.ListNotifications(
        notifications_pb2.ListNotificationsRequest(state="dead"), metadata=operator
    )
    assert str(row.id) in {n.id for n in listed.notifications}
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # the apps' credential may not
        await admin.ListNotifications(
            notifications_pb2.ListNotificationsRequest(), metadata=user.metadata
        )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED

    await admin.ReplayNotification(
        notifications_pb2.ReplayNotificationRequest(id=str(row.id)), metadata=operator
    )
    await drain(sender)

    [row] = await outbox_rows(engine, subscription["id"])
    assert (row.state, row.email_result) == ("sent", "sent")
    assert [m.message_id for m in sinks.mail if user.email in m.to] == [f"<{row.id}@{DOMAIN}>"]
    with pytest.raises(grpc.aio.AioRpcError) as not_dead:
        await admin.ReplayNotification(
            notifications_pb2.ReplayNotificationRequest(id=str(row.id)), metadata=operator
        )
    assert not_dead.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_notification_that_cannot_be_made_is_dead_at_once_not_retried(
    billing, stub, engine, sinks, sender
) -> None:
    user = User(billing, stub)
    subscription = await trialing(billing, await user.customer())
    await apply(stub, envelope("customer.subscription.trial_will_end", subscription))
    async with engine.begin() as conn:  # an amount without its currency: no template renders it
        await conn.execute(
            update(notifications)
            .where(notifications.c.object_id == subscription["id"])
            .values(data={"amount": 100})
        )

    await drain(sender)

    [row] = await outbox_rows(engine, subscription["id"])
    assert (row.state, row.attempts) == ("dead", 1)
    assert "KeyError" in row.last_error
    assert not [m for m in sinks.mail if user.email in m.to]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- A sender killed ------------------------------------------------------------------------------


async def three_trials_ending(billing: BillingHandle, stub: Stub) -> tuple[User, list[str]]:
    """Three notifications due for one user: trial_will_end of three subscriptions (one real,
    its object copied under two more ids)."""
    user = User(billing, stub)
    subscription = await trialing(billing, await user.customer())
    ids = [subscription["id"], *(f"sub_{secrets.token_hex(8)}" for _ in range(2))]
    for subscription_id in ids:
        event = envelope(
            "customer.subscription.trial_will_end", {**subscription, "id": subscription_id}
        )
        await apply(stub, event)
    return user, ids


def start_notifier(database_url: str, sinks: Sinks) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.billing", "notifier"],
        env={**os.environ, **notifier_env(database_url, sinks)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 180  # a loaded machine starts Python slowly
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def all_sent(engine: AsyncEngine, ids: list[str]) -> bool:
    async with engine.connect() as conn:
        states = await conn.execute(
            select(notifications.c.state).where(notifications.c.object_id.in_(ids))
        )
        return set(states.scalars()) == {"sent"}


async def message_ids(engine: AsyncEngine, ids: list[str]) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(notifications.c.id)
            .where(notifications.c.object_id.in_(ids))
            .order_by(notifications.c.id)
        )
        return [f"<{row}@{DOMAIN}>" for row in rows.scalars()]


@pytest.mark.parametrize("where", ["before_data", "after_store"])
async def test_a_sender_killed_loses_nothing_and_repeats_at_most_the_message_in_hand(
    billing, stub, engine, sinks, database_url, where
) -> None:
    user, ids = await three_trials_ending(billing, stub)

    def mine() -> list[str]:
        return [m.message_id for m in sinks.mail if user.email in m.to]

    sinks.stall(where, at_message=2)  # the second message's conversation is held there
    notifier = start_notifier(database_url, sinks)
    try:
        wanted = 2 if where == "after_store" else 1

        async def held() -> bool:
            return len(mine()) == wanted and sinks.stalled

        await until(held, "the notifier to reach the second message")
        notifier.send_signal(signal.SIGKILL)
        notifier.wait(10)
        sinks.release()
        notifier = start_notifier(database_url, sinks)
        await until(lambda: all_sent(engine, ids), "every notification sent")
    finally:
        notifier.terminate()
        notifier.wait(10)

    expected = await message_ids(engine, ids)
    sent = mine()
    assert sorted(set(sent)) == sorted(expected)  # nothing lost
    repeats = [m for m in set(sent) if sent.count(m) > 1]
    if where == "before_data":  # killed between sends: nothing repeats
        assert len(sent) == 3
        assert not repeats
    else:  # killed inside the window: that one message again, with its Message-ID
        assert len(sent) == 4
        assert repeats == [sent[1]]
