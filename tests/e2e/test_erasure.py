"""Erasure and export on request, end to end: Clerk's Svix-signed webhooks to the real receiver,
the relay to the real billing, Stripe's events back through the same pipeline; the export taken
before the erasure lists everything, and afterwards neither billing's tables nor the stored
payloads hold the person's email or name."""

import secrets
from typing import Any

import httpx
import psycopg
import pytest
import stripe

from tests.e2e.gateway_client import TokenIssuer, User
from tests.e2e.test_purchases import buy
from tests.e2e.webhook_pipeline import WebhookPipeline, eventually, scalar
from tests.harness import BillingHandle, OneTimeProduct
from tests.integration.clerk_signing import clerk_event, clerk_user, post_clerk

pytestmark = pytest.mark.usefixtures("stripe_emulator")


async def _holding(url: str, schema: str, needles: list[str]) -> list[str]:
    """The tables of `schema` with a row whose text holds any of `needles` (case-insensitive)."""
    found = []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        tables = await (
            await conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                (schema,),
            )
        ).fetchall()
        for (table,) in tables:
            for needle in needles:
                hits = await (
                    await conn.execute(
                        f'SELECT count(*) FROM {schema}."{table}" t WHERE t::text ILIKE %s',  # noqa: S608 (catalog names)
                        (f"%{needle}%",),
                    )
                ).fetchone()
                if hits and hits[0]:
                    found.append(f"{schema}.{table}: {needle}")
    return found


async def test_a_clerk_user_deleted_twice_erases_once_and_leaves_no_email_or_name(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    billing: BillingHandle,
    billing_database_url: str,
    webhook_pipeline: WebhookPipeline,
    one_time_product: OneTimeProduct,
) -> None:
    token = secrets.token_hex(5)
    user_id = f"user_{token}"
    email, name = f"erase-{token}@example.com", f"Zoe Erasable{token}"
    headers = issuer.headers(user_id)
    created = await client.post(
        "/v1/customer", json={"email": email, "name": name}, headers=headers
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["stripe_customer_id"]
    device = f"ExponentPushToken[erase{token}]"
    registered = await client.post(
        "/v1/devices", json={"token": device, "platform": "ios"}, headers=headers
    )
    assert registered.status_code == 201, registered.text
    preferred = await client.put(
        "/v1/notification-preferences",
        json={"preferences": {"trial_ending": False}},
        headers=headers,
    )
    assert preferred.status_code == 200, preferred.text
    subscribed = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=headers
    )
    assert subscribed.status_code in (200, 201), subscribed.text
    subscription_id = subscribed.json()["subscription"]["id"]
    card = await billing.stripe.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer_id}
    )
    intent_id = await buy(
        client, billing, User(user_id, headers, customer_id), one_time_product.price
    )

    # Clerk says the user changed their email and name: the Stripe customer follows.
    new_email, new_name = f"renamed-{token}@example.com", f"Zed Renamed{token}"
    updated = clerk_event(
        "user.updated",
        clerk_user(user_id, email=new_email, first_name="Zed", last_name=f"Renamed{token}"),
    )
    answer = await post_clerk(
        webhook_pipeline.clerk_url, webhook_pipeline.clerk_secret, updated, "msg_upd_" + token
    )
    assert answer.status_code == 200, answer.text

    async def renamed() -> bool:
        customer = await billing.stripe.v1.customers.retrieve_async(customer_id)
        return (customer.email, customer.name) == (new_email, new_name)

    await eventually(renamed, within=120)  # the relay process may still be starting

    async def everything_arrived() -> bool:
        document = (await client.get("/v1/me/export", headers=headers)).json()
        types = {e["type"] for e in document["events"]}
        return (
            {"customer.created", "payment_method.attached", "user.updated"} <= types
            and any(p["id"] == card.id and p["card_last4"] for p in document["payment_methods"])
            and any(p["id"] == intent_id for p in document["purchases"])
            and bool(document["invoices"])
        )

    await eventually(everything_arrived, within=60)
    exported = await client.get("/v1/me/export", headers=headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/json"
    document: dict[str, Any] = exported.json()
    assert document["principal"] == f"user:{user_id}"
    assert document["customer"]["stripe_customer_id"] == customer_id
    assert (document["customer"]["email"], document["customer"]["name"]) == (new_email, new_name)
    assert subscription_id in {s["id"] for s in document["subscriptions"]}
    assert all(i["stripe_customer_id"] == customer_id for i in document["invoices"])
    [method] = [p for p in document["payment_methods"] if p["id"] == card.id]
    assert (method["card_brand"], method["card_last4"]) == ("visa", "4242")
    created_events = [e for e in document["events"] if e["type"] == "customer.created"]
    assert created_events[0]["payload"]["data"]["object"]["email"] == email
    assert document["erasures"] == []
    assert [d["token"] for d in document["devices"]] == [device]
    assert document["notification_preferences"][0]["disabled_kinds"] == ["trial_ending"]
    assert all(n["stripe_customer_id"] == customer_id for n in document["notifications"])

    # Clerk deletes the user; Svix delivers the message twice.
    deleted = clerk_event("user.deleted", {"id": user_id, "object": "user", "deleted": True})
    answers = [
        await post_clerk(
            webhook_pipeline.clerk_url, webhook_pipeline.clerk_secret, deleted, "msg_del_" + token
        )
        for _ in range(2)
    ]
    assert [a.json()["duplicate"] for a in answers] == [False, True]
    billing_url = billing_database_url

    async def erased() -> bool:
        return (
            await scalar(
                billing_url,
                "SELECT count(*) FROM billing.erasures WHERE principal = %s AND state = 'done'",
                f"user:{user_id}",
            )
            == 1
        )

    await eventually(erased, within=60)

    # What the erasure made Stripe send arrives too, and is blanked when delivered.
    async def stripe_reported_the_deletion() -> bool:
        return await scalar(
            webhook_pipeline.webhooks_db,
            "SELECT bool_or(type = 'customer.deleted') AND bool_and(state = 'delivered')"
            " FROM webhooks.events WHERE ordering_key = ANY(%s)",
            [customer_id, f"clerk:{user_id}"],
        )

    await eventually(stripe_reported_the_deletion, within=60)

    needles = [email, new_email, name, new_name, f"Renamed{token}", f"Erasable{token}", device]
    assert await _holding(billing_url, "billing", needles) == []
    assert await _holding(webhook_pipeline.webhooks_db, "webhooks", needles) == []
    # Erased once: one record, the user.deleted applied once, the live subscription canceled.
    assert (
        await scalar(
            billing_url,
            "SELECT count(*) FROM billing.erasures WHERE principal = %s",
            f"user:{user_id}",
        )
        == 1
    )
    record = await scalar(
        billing_url,
        "SELECT row_to_json(e) FROM billing.erasures e WHERE principal = %s",
        f"user:{user_id}",
    )
    assert record["requested_by"] == "user.deleted"
    assert record["stripe_customer_id"] == customer_id
    assert record["canceled_subscription_ids"] == [subscription_id]
    assert record["inbox_events_scrubbed"] > 0
    subscription = await billing.stripe.v1.subscriptions.retrieve_async(subscription_id)
    assert subscription.status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):  # deleted once: a second delete is 404
        await billing.stripe.v1.customers.delete_async(customer_id)
    # Ids, amounts and dates stay for accounting.
    assert (
        await scalar(
            billing_url,
            "SELECT amount FROM billing.purchases WHERE id = %s AND stripe_customer_id = %s",
            intent_id,
            customer_id,
        )
        == 2500
    )

    # The user holds nothing any more; the export says what was erased.
    async def no_customer() -> bool:  # the gateway may reuse its answer for a few seconds
        return (await client.get("/v1/customer", headers=headers)).status_code == 404

    await eventually(no_customer)
    after = (await client.get("/v1/me/export", headers=headers)).json()
    assert after["customer"] is None
    assert [e["requested_by"] for e in after["erasures"]] == ["user.deleted"]
    assert not any(needle in str(after) for needle in needles)
