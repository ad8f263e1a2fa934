"""Creates are safe to retry: one `Idempotency-Key`, one object and the first answer, through the
real gateway, billing, Postgres and the Stripe emulator."""

import asyncio
import secrets
import uuid

import httpx
import pytest

from tests.e2e.gateway_client import (
    CANCEL_URL,
    SUCCESS_URL,
    TokenIssuer,
    User,
    assert_error,
    with_key,
)
from tests.harness import BillingHandle


async def payment_intents(billing: BillingHandle, customer_id: str) -> list[str]:
    """The customer's PaymentIntents, oldest first (the emulator lists them unfiltered)."""
    listed = await billing.stripe.v1.payment_intents.list_async(params={"limit": 100})
    mine = [i async for i in listed.auto_paging_iter() if i.customer == customer_id]
    return [intent.id for intent in sorted(mine, key=lambda i: i.created)]


async def test_a_retried_subscription_start_answers_its_first_answer_and_starts_one(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user: User = await new_user()
    headers = with_key(user.headers)
    body = {"price": "basic_monthly", "stripe_version": "2020-08-27"}
    first = await client.post("/v1/subscriptions", json=body, headers=headers)
    again = await client.post("/v1/subscriptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert first.json()["client_secret"]
    assert first.json()["ephemeral_key_secret"]
    listed = await billing.stripe.v1.subscriptions.list_async(
        params={"customer": user.customer_id, "status": "all"}
    )
    assert [s.id for s in listed.data] == [first.json()["subscription"]["id"]]
    # Without the key, the same retry is a second start: the trial still waits for its card,
    # so it is handed back (with a new ephemeral key) rather than refused or started again.
    without = await client.post("/v1/subscriptions", json=body, headers=user.headers)
    assert without.status_code == 201, without.text
    assert without.json()["subscription"]["id"] == first.json()["subscription"]["id"]
    assert without.json()["ephemeral_key_secret"] != first.json()["ephemeral_key_secret"]
    again_listed = await billing.stripe.v1.subscriptions.list_async(
        params={"customer": user.customer_id, "status": "all"}
    )
    assert [s.id for s in again_listed.data] == [first.json()["subscription"]["id"]]


async def test_a_retried_one_time_payment_charges_once_and_a_new_key_charges_again(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user: User = await new_user()
    headers = with_key(user.headers)
    body = {"price": "gi_patch", "quantity": 2}
    first, again = [await client.post("/v1/payments", json=body, headers=headers) for _ in "12"]
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert await payment_intents(billing, user.customer_id) == [first.json()["id"]]
    other = await client.post("/v1/payments", json=body, headers=with_key(user.headers))
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    assert len(await payment_intents(billing, user.customer_id)) == 2


async def test_a_retried_checkout_answers_the_same_open_session(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user: User = await new_user()
    headers = with_key(user.headers)
    body = {"price": "pro_yearly", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}
    first, again = [
        await client.post("/v1/checkout/sessions", json=body, headers=headers) for _ in "12"
    ]
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    listed = await billing.stripe.v1.checkout.sessions.list_async(
        params={"customer": user.customer_id}
    )
    assert [(s.id, s.status) for s in listed.data] == [(first.json()["id"], "open")]


async def test_a_retried_plan_change_answers_its_first_answer_not_no_change(
    client: httpx.AsyncClient, new_user
) -> None:
    user: User = await new_user()
    started = await client.post(
        "/v1/subscriptions", json={"price": "basic_monthly"}, headers=user.headers
    )
    subscription = started.json()["subscription"]["id"]
    headers = with_key(user.headers)
    body = {"price": "pro_monthly", "proration_behavior": "none"}
    path = f"/v1/subscriptions/{subscription}"
    first, again = [await client.patch(path, json=body, headers=headers) for _ in "12"]
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert first.json()["subscription"]["price_id"] == again.json()["subscription"]["price_id"]
    # Without the key, the same change again changes nothing and says so.
    without = await client.patch(path, json=body, headers=user.headers)
    assert without.status_code == 400
    assert "keeps the current price" in without.text


async def test_the_same_key_with_another_body_is_409_idempotency_key_reused(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user: User = await new_user()
    headers = with_key(user.headers)
    first = await client.post("/v1/payments", json={"price": "gi_patch"}, headers=headers)
    assert first.status_code == 201
    other = await client.post(
        "/v1/payments", json={"price": "gi_patch", "quantity": 3}, headers=headers
    )
    assert_error(other, 409, "idempotency_key_reused")
    assert await payment_intents(billing, user.customer_id) == [first.json()["id"]]


@pytest.mark.parametrize(
    "key", ["", "with space", "x" * 256, "caf\u00e9".encode(), "tab\there"], ids=repr
)
async def test_a_malformed_key_is_400_invalid_idempotency_key_and_creates_nothing(
    client: httpx.AsyncClient, new_user, billing: BillingHandle, key: str | bytes
) -> None:
    user: User = await new_user()
    raw_key = key if isinstance(key, bytes) else key.encode()
    headers = {name.encode(): value.encode() for name, value in user.headers.items()}
    response = await client.post(
        "/v1/payments", json={"price": "gi_patch"}, headers={**headers, b"Idempotency-Key": raw_key}
    )
    assert_error(response, 400, "invalid_idempotency_key")
    assert await payment_intents(billing, user.customer_id) == []


async def test_a_key_of_255_visible_characters_is_accepted(
    client: httpx.AsyncClient, new_user
) -> None:
    user: User = await new_user()
    response = await client.post(
        "/v1/setup-intents", headers=with_key(user.headers, "~!" + "k" * 253)
    )
    assert response.status_code == 201, response.text


async def test_keys_are_per_user_a_replayed_key_never_answers_another_users_object(
    client: httpx.AsyncClient, new_user
) -> None:
    owner, other = await new_user(), await new_user()
    key = str(uuid.uuid4())
    body = {"price": "gi_patch"}
    mine = await client.post("/v1/payments", json=body, headers=with_key(owner.headers, key))
    theirs = await client.post("/v1/payments", json=body, headers=with_key(other.headers, key))
    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["customer_id"] == other.customer_id
    for route, payload in (
        ("/v1/setup-intents", None),
        ("/v1/ephemeral-keys", {"stripe_version": "2020-08-27"}),
    ):
        a = await client.post(route, json=payload, headers=with_key(owner.headers, key))
        b = await client.post(route, json=payload, headers=with_key(other.headers, key))
        assert a.status_code == b.status_code == 201, b.text
        assert a.json() != b.json()
        assert b.json()["customer_id"] == other.customer_id


async def test_concurrent_requests_with_one_key_create_one_object(
    client: httpx.AsyncClient, new_user, billing: BillingHandle
) -> None:
    user: User = await new_user()
    headers = with_key(user.headers)
    responses = await asyncio.gather(
        *(client.post("/v1/payments", json={"price": "gi_patch"}, headers=headers) for _ in "1234")
    )
    answered = [r for r in responses if r.status_code == 201]
    assert answered
    assert all(r.json() == answered[0].json() for r in answered)
    for refused in (r for r in responses if r.status_code != 201):
        assert_error(refused, 409, "idempotency_request_in_progress")
    assert await payment_intents(billing, user.customer_id) == [answered[0].json()["id"]]


async def test_the_expo_apps_creates_answer_their_first_answer_to_a_retry(
    client: httpx.AsyncClient, issuer: TokenIssuer, billing: BillingHandle
) -> None:
    user_id = "user_" + secrets.token_hex(6)
    headers = with_key(issuer.headers(user_id))
    calls = [
        ("customers", {"email": f"{user_id}@example.com", "name": "Ana", "userId": 7}),
        ("subscriptions", {"priceId": "basic_monthly"}),
        ("setup-intents", {}),
        ("ephemeral-keys", {}),
        ("payment-intents", {"priceId": "gi_patch"}),
    ]
    answers = {}
    for path, body in calls:
        first = await client.post(f"/api/stripe/{path}", json=body, headers=headers)
        again = await client.post(f"/api/stripe/{path}", json=body, headers=headers)
        assert first.status_code == again.status_code == 201, (path, again.text)
        assert again.json() == first.json(), path
        answers[path] = first.json()["data"]
    customer_id = answers["customers"]["id"]
    listed = await billing.stripe.v1.subscriptions.list_async(
        params={"customer": customer_id, "status": "all"}
    )
    assert [s.id for s in listed.data] == [answers["subscriptions"]["id"]]
    assert await payment_intents(billing, customer_id) == [answers["payment-intents"]["id"]]


KEYED_ROUTES = [
    ("post", "/v1/customer"),
    ("post", "/v1/checkout/sessions"),
    ("post", "/v1/portal/sessions"),
    ("post", "/v1/subscriptions"),
    ("patch", "/v1/subscriptions/{subscription_id}"),
    ("post", "/v1/setup-intents"),
    ("post", "/v1/ephemeral-keys"),
    ("post", "/v1/payments"),
    ("post", "/api/stripe/customers"),
    ("post", "/api/stripe/subscriptions"),
    ("post", "/api/stripe/setup-intents"),
    ("post", "/api/stripe/ephemeral-keys"),
    ("post", "/api/stripe/payment-intents"),
]


async def test_the_openapi_documents_the_idempotency_key_of_every_create(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for method, path in KEYED_ROUTES:
        parameters = paths[path][method].get("parameters", [])
        header = [p for p in parameters if (p["in"], p["name"]) == ("header", "Idempotency-Key")]
        assert len(header) == 1, (method, path)
        assert "24 hours" in header[0]["description"], (method, path)
