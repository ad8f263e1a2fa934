"""Failed renewals paid from the app, through the REST edge against the emulator and the webhook
path: a renewal the card declines makes the subscription past_due and its invoice open with the
reason; `POST /v1/invoices/{id}/pay` pays it with another card, or asks the card holder to
authenticate; the subscription turns active again once Stripe reports the invoice paid."""

from typing import Any

import httpx
import pytest

from tests.e2e.gateway_client import User, assert_error, with_key
from tests.e2e.webhook_pipeline import eventually
from tests.harness import BillingHandle

pytestmark = pytest.mark.usefixtures("webhook_pipeline")


async def saved_card(
    client: httpx.AsyncClient, user: User, billing: BillingHandle, card: str
) -> str:
    """Save a test card as PaymentSheet does (a setup intent, confirmed on the phone, 3-D
    Secure answered when the card asks for it); its payment method id."""
    made = await client.post("/v1/setup-intents", headers=with_key(user.headers))
    assert made.status_code == 201, made.text
    intent = await billing.stripe.v1.setup_intents.confirm_async(
        made.json()["id"], params={"payment_method": card}
    )
    if intent.status == "requires_action":
        await billing.stripe_target.authenticate(intent.id)
        intent = await billing.stripe.v1.setup_intents.retrieve_async(intent.id)
    assert intent.status == "succeeded"
    return str(intent.payment_method)


async def get(client: httpx.AsyncClient, user: User, path: str) -> Any:
    response = await client.get(path, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def renewal_charged_to(
    client: httpx.AsyncClient, user: User, billing: BillingHandle, card: str
) -> tuple[str, dict[str, Any]]:
    """A subscription paid after its trial, whose renewal is then charged to `card` (made the
    default): the subscription's id and its open renewal invoice, once billing mirrors both."""
    created = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )
    assert created.status_code == 201, created.text
    subscription_id = created.json()["subscription"]["id"]
    trial_intent = created.json()["client_secret"].split("_secret_")[0]
    await billing.stripe.v1.setup_intents.confirm_async(
        trial_intent, params={"payment_method": "pm_card_visa"}
    )
    await billing.stripe_target.end_period(billing.stripe, subscription_id)
    path = f"/v1/subscriptions/{subscription_id}"

    async def active() -> bool:
        return (await get(client, user, path))["status"] == "active"

    await eventually(active)
    renewing = await saved_card(client, user, billing, card)
    made_default = await client.post(
        f"/v1/payment-methods/{renewing}/default", headers=user.headers
    )
    assert made_default.status_code == 200, made_default.text
    await billing.stripe_target.end_period(billing.stripe, subscription_id)

    async def past_due_and_open() -> bool:
        invoices = (await get(client, user, "/v1/invoices"))["invoices"]
        opened = [i for i in invoices if i["status"] == "open" and i["last_payment"]]
        return (await get(client, user, path))["status"] == "past_due" and bool(opened)

    await eventually(past_due_and_open)
    [renewal] = [
        i for i in (await get(client, user, "/v1/invoices"))["invoices"] if i["status"] == "open"
    ]
    return subscription_id, renewal


async def test_a_declined_renewal_is_past_due_until_the_app_pays_it_with_a_new_card(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    subscription_id, renewal = await renewal_charged_to(
        client, user, billing, "pm_card_chargeCustomerFail"
    )
    assert renewal["last_payment"] == {
        "status": "requires_payment_method",
        "reason": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
    }
    grants = (await get(client, user, "/v1/entitlements"))["entitlements"]
    assert "class_booking" in {grant["feature"] for grant in grants}
    # The grace rule: access while past_due, until the grace ends.
    assert {(g["subscription_status"], g["grace_ends_at"] is None) for g in grants} == {
        ("past_due", False)
    }

    pay = f"/v1/invoices/{renewal['id']}/pay"
    again_declined = await client.post(pay, headers=with_key(user.headers))
    assert_error(again_declined, 402, "card_declined")

    visa = await saved_card(client, user, billing, "pm_card_visa")
    keyed = with_key(user.headers)
    paid = await client.post(pay, json={"payment_method": visa}, headers=keyed)
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert (body["status"], body["client_secret"]) == ("paid", None)
    assert (body["invoice"]["id"], body["invoice"]["status"]) == (renewal["id"], "paid")
    assert body["invoice"]["last_payment"] is None
    replayed = await client.post(pay, json={"payment_method": visa}, headers=keyed)
    assert (replayed.status_code, replayed.json()) == (200, body)  # the first answer, once
    assert_error(await client.post(pay, headers=with_key(user.headers)), 400, "invoice_not_open")
    charges = await billing.stripe.v1.charges.list_async(params={"customer": user.customer_id})
    assert sorted(c.status for c in charges.data) == ["failed", "failed", "succeeded", "succeeded"]

    async def active_again() -> bool:
        current = await get(client, user, f"/v1/subscriptions/{subscription_id}")
        return current["status"] == "active"

    await eventually(active_again)
    grants = (await get(client, user, "/v1/entitlements"))["entitlements"]
    assert {(g["subscription_status"], g["grace_ends_at"]) for g in grants} == {("active", None)}


async def test_a_renewal_needing_authentication_is_paid_once_the_card_holder_answers(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    subscription_id, renewal = await renewal_charged_to(
        client, user, billing, "pm_card_authenticationRequired"
    )
    assert renewal["last_payment"]["status"] == "requires_action"
    assert renewal["last_payment"]["reason"] is None

    answered = await client.post(
        f"/v1/invoices/{renewal['id']}/pay", headers=with_key(user.headers)
    )
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["status"] == "requires_action"
    assert body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    assert body["invoice"]["status"] == "open"
    # What PaymentSheet does with the client secret: the bank's page, answered.
    await billing.stripe_target.authenticate(body["payment_intent_id"])

    async def paid_and_active() -> bool:
        invoices = (await get(client, user, "/v1/invoices"))["invoices"]
        paid = [i for i in invoices if i["id"] == renewal["id"] and i["status"] == "paid"]
        current = await get(client, user, f"/v1/subscriptions/{subscription_id}")
        return bool(paid) and current["status"] == "active"

    await eventually(paid_and_active)


async def test_a_failed_authentication_is_mirrored_and_another_card_then_pays(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user = await new_user()
    subscription_id, renewal = await renewal_charged_to(
        client, user, billing, "pm_card_authenticationRequired"
    )
    pay = f"/v1/invoices/{renewal['id']}/pay"
    waiting = (await client.post(pay, headers=with_key(user.headers))).json()
    await billing.stripe_target.authenticate(waiting["payment_intent_id"], outcome="fail")

    async def failure_mirrored() -> bool:
        invoices = (await get(client, user, "/v1/invoices"))["invoices"]
        [current] = [i for i in invoices if i["id"] == renewal["id"]]
        return (current["last_payment"] or {}).get("reason") == "payment_authentication_failed"

    await eventually(failure_mirrored)
    visa = await saved_card(client, user, billing, "pm_card_visa")
    paid = await client.post(pay, json={"payment_method": visa}, headers=with_key(user.headers))
    assert (paid.status_code, paid.json()["status"]) == (200, "paid"), paid.text

    async def active_again() -> bool:
        current = await get(client, user, f"/v1/subscriptions/{subscription_id}")
        return current["status"] == "active"

    await eventually(active_again)
