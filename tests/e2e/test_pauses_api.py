"""Pausing payments through the REST edge (POST /v1/subscriptions/{id}/pause and …/unpause),
with Stripe's events on the webhook path and time moved by test clocks: a void pause keeps the
trial already granted, then stops the service; the billing screen and its live stream show the
pause; unpausing charges a new period from now; a paused subscription's voided renewal sends no
payment notification."""

import json
from datetime import datetime, timedelta

import httpx
import pytest

from tests.e2e.gateway_client import User, assert_error
from tests.e2e.test_billing_stream import billing_stream, subscription_of, updated_until
from tests.e2e.test_subscriptions_api import features, subscription_status
from tests.e2e.test_trials import BASIC, intent_id, start
from tests.e2e.webhook_pipeline import eventually, scalar
from tests.harness import BillingHandle


async def granted_trial(client: httpx.AsyncClient, user: User, billing: BillingHandle) -> dict:
    """A trial of basic_monthly with its card saved (PaymentSheet), once it grants."""
    created = await start(client, user, "basic_monthly")
    assert created.status_code == 201, created.text
    body = created.json()
    await billing.stripe.v1.setup_intents.confirm_async(
        intent_id(body["client_secret"]), params={"payment_method": "pm_card_visa"}
    )

    async def entitled() -> bool:
        return await features(client, user) == BASIC

    await eventually(entitled)
    return body["subscription"]


async def invoices_become(client: httpx.AsyncClient, user: User, statuses: list[str]) -> None:
    """Wait until the user's invoices (those with an amount) have these statuses, in any order
    (the emulator stamps invoices a test clock makes with the wall clock's second), as the
    mirror hears of them."""

    async def listed() -> bool:
        response = await client.get("/v1/invoices", headers=user.headers)
        return sorted(invoice["status"] for invoice in response.json()["invoices"]) == sorted(
            statuses
        )

    await eventually(listed)


async def notification_kinds(billing_database_url: str, user: User) -> list[str]:
    return await scalar(
        billing_database_url,
        "SELECT coalesce(array_agg(kind ORDER BY created_at), '{}')"
        " FROM billing.notifications WHERE stripe_customer_id = %s",
        user.customer_id,
    )


@pytest.mark.usefixtures("webhook_pipeline")
async def test_a_void_pause_keeps_the_trial_stops_the_service_after_it_and_unpausing_charges(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, billing_database_url: str
) -> None:
    user = await new_user()
    subscription = await granted_trial(client, user, billing)
    path = f"/v1/subscriptions/{subscription['id']}"

    async with billing_stream(client, user.headers) as events:
        assert await events.next() is not None  # the current state
        paused = await client.post(f"{path}/pause", headers=user.headers)
        assert paused.status_code == 200, paused.text
        assert paused.json()["status"] == "trialing"
        assert paused.json()["pause_collection"] == {
            "behavior": "void",
            "resumes_at": None,
            "access_ends_at": subscription["trial_end"],
        }
        streamed = await updated_until(
            events, lambda body: (subscription_of(body) or {}).get("pause_collection") is not None
        )
    screen = (await client.get("/v1/billing", headers=user.headers)).json()
    assert screen["subscription"]["pause_collection"]["behavior"] == "void"
    assert json.loads(streamed.data)["subscription"]["pause_collection"]["behavior"] == "void"
    assert {e["feature"] for e in screen["entitlements"]} == BASIC  # the trial still runs

    await billing.stripe_target.end_period(billing.stripe, subscription["id"])

    async def stopped() -> bool:
        return await features(client, user) == set()

    await eventually(stopped)
    assert await subscription_status(client, user, subscription["id"]) == "active"
    await invoices_become(client, user, ["void"])  # the first after the trial

    unpaused = await client.post(f"{path}/unpause", headers=user.headers)

    assert unpaused.status_code == 200, unpaused.text
    assert unpaused.json()["pause_collection"] is None
    restarted = datetime.fromisoformat(unpaused.json()["current_period_start"])
    assert restarted > datetime.fromisoformat(subscription["trial_end"])

    async def charged_and_granted() -> bool:
        return await features(client, user) == BASIC and "receipt" in await notification_kinds(
            billing_database_url, user
        )

    await eventually(charged_and_granted)
    kinds = await notification_kinds(billing_database_url, user)
    assert "payment_failed" not in kinds
    assert kinds.count("receipt") == 1, kinds


@pytest.mark.usefixtures("webhook_pipeline")
async def test_a_pause_until_a_date_resumes_with_the_clock_and_the_next_renewal_is_charged(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    subscription = await granted_trial(client, user, billing)
    resumes_at = datetime.fromisoformat(subscription["trial_end"]) + timedelta(days=3)
    paused = await client.post(
        f"/v1/subscriptions/{subscription['id']}/pause",
        json={"behavior": "void", "resumes_at": resumes_at.isoformat()},
        headers=user.headers,
    )
    assert paused.status_code == 200, paused.text
    assert datetime.fromisoformat(paused.json()["pause_collection"]["resumes_at"]) == resumes_at

    await billing.stripe_target.end_period(billing.stripe, subscription["id"])  # trial ends
    await billing.stripe_target.end_period(billing.stripe, subscription["id"])  # resumes, renews

    async def renewed() -> bool:
        current = await client.get(f"/v1/subscriptions/{subscription['id']}", headers=user.headers)
        return current.json()["pause_collection"] is None and await features(client, user) == BASIC

    await eventually(renewed)
    await invoices_become(client, user, ["paid", "void"])


async def test_pause_refusals_through_the_gateway(client: httpx.AsyncClient, new_user) -> None:
    user = await new_user()
    created = await start(client, user, "basic_monthly")  # trialing: pausable
    assert created.status_code == 201, created.text
    subscription = created.json()["subscription"]
    path = f"/v1/subscriptions/{subscription['id']}/pause"

    assert_error(
        await client.post(path, json={"behavior": "keep_as_draft"}, headers=user.headers),
        400,
        "pause_behavior_not_allowed",
    )
    for body in (
        {"behavior": "stop"},
        {"resumes_at": "2030-01-01T00:00:00"},  # no UTC offset
        {"resumes_at": "2020-01-01T00:00:00Z"},  # the past
        {"until": "2030-01-01T00:00:00Z"},
    ):
        response = await client.post(path, json=body, headers=user.headers)
        assert response.status_code == 400, (body, response.text)
    assert_error(
        await client.post("/v1/subscriptions/sub_missing/unpause", headers=user.headers),
        404,
        "not_found",
    )
    await client.post(
        f"/v1/subscriptions/{subscription['id']}/cancel",
        json={"immediately": True},
        headers=user.headers,
    )
    assert_error(await client.post(path, headers=user.headers), 400, "subscription_ended")
