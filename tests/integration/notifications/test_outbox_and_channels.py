"""Stripe events applied over real gRPC write the outbox in their transaction; the notifier sends
by real SMTP (aiosmtplib) to the aiosmtpd sink and by HTTP to the stand-in for Expo's push API."""

import secrets

import grpc
import httpx
import pytest
from sqlalchemy import update
from tatame.billing.v1 import billing_pb2, notifications_pb2
from tatame_devstack.ports import free_port

from services.billing.notifications.sender import Sender
from services.billing.notifications.tables import notifications
from tests.integration.notifications.world import (
    DOMAIN,
    OPERATOR,
    User,
    apply,
    apply_all,
    devices_of,
    drain,
    notifier_env,
    outbox_rows,
    rendered,
    settings_of,
    token,
    trialing,
)
from tests.stripe_objects import event_envelope

# --- Exactly once per fact -----------------------------------------------------------------------


async def test_a_replayed_trial_will_end_sends_one_email_in_the_customers_language(
    billing, stub, engine, sinks, sender
) -> None:
    user = User(billing, stub)
    customer_id = await user.customer(locales=["pt-BR"])
    subscription = await trialing(billing, customer_id)
    first = event_envelope("customer.subscription.trial_will_end", subscription)
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
    failed = event_envelope(
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

    await apply(stub, event_envelope("customer.subscription.trial_will_end", subscription))
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

    await apply(stub, event_envelope("customer.subscription.trial_will_end", subscription))
    await drain(sender)
    assert await devices_of(engine, user.principal) == {gone_later, kept}
    await sender.check_receipts()

    assert await devices_of(engine, user.principal) == {kept}
    [row] = await outbox_rows(engine, subscription["id"])
    assert row.push_result == "sent"


async def test_a_failing_smtp_server_is_retried_then_dead_lettered_then_replayed_by_an_operator(
    billing, stub, admin, engine, sinks, sender, database_url
) -> None:
    user = User(billing, stub)
    subscription = await trialing(billing, await user.customer())
    await apply(stub, event_envelope("customer.subscription.trial_will_end", subscription))
    env = notifier_env(database_url, sinks) | {
        "NOTIFY_SMTP_PORT": str(free_port()),
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
    await apply(stub, event_envelope("customer.subscription.trial_will_end", subscription))
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
