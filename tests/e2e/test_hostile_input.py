"""Hostile input at the REST edge: refused with a 400 in the one error body before billing is
called, so nothing reaches Postgres or Stripe; the OpenAPI document says what the gateway does."""

import secrets

import httpx
import pytest

from tests.e2e.gateway_client import SUCCESS_URL, TokenIssuer, assert_error
from tests.harness import BillingHandle

NUL = "\u0000"


def new_user_id() -> str:
    return "user_" + secrets.token_hex(6)


async def stripe_customers_with_email(billing: BillingHandle, email: str) -> int:
    listed = await billing.stripe.v1.customers.list_async(params={"email": email, "limit": 10})
    return len(listed.data)


@pytest.mark.parametrize("path", ["/v1/customer", "/api/stripe/customers"])
@pytest.mark.parametrize("field", ["email", "name"])
async def test_a_nul_in_a_customer_is_400_and_creates_no_stripe_customer(
    client: httpx.AsyncClient, issuer: TokenIssuer, billing: BillingHandle, path: str, field: str
) -> None:
    email = f"{new_user_id()}@example.com"
    body = {"email": email, "name": "Ana", field: f"{email if field == 'email' else 'A'}{NUL}"}
    response = await client.post(path, json=body, headers=issuer.headers(new_user_id()))
    assert_error(response, 400, "invalid_request")
    assert "must not contain control characters" in response.json()["error"]["message"]
    assert await stripe_customers_with_email(billing, email) == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/subscriptions", {"price": f"pro{NUL}"}),
        ("POST", "/v1/promotion-codes/preview", {"price": f"p{NUL}", "promotion_code": "A"}),
        ("POST", "/v1/checkout/sessions", {"price": "p", "success_url": NUL, "cancel_url": "x"}),
        ("POST", "/v1/portal/sessions", {"return_url": f"{SUCCESS_URL}\r\nX: y"}),
        ("POST", "/v1/ephemeral-keys", {"stripe_version": f"2026{NUL}"}),
        ("POST", "/v1/payments", {"price": f"{NUL}"}),
        ("POST", "/v1/invoices/in_1/pay", {"payment_method": f"pm_{NUL}"}),
        ("PATCH", "/v1/subscriptions/sub_1", {"price": f"p{NUL}", "proration_behavior": "none"}),
        ("POST", "/v1/subscriptions/sub_1/preview", {"price": f"\x7f{NUL}"}),
        ("GET", "/v1/subscriptions/sub_%00", None),
        ("POST", "/v1/subscriptions/sub_%00/cancel", None),
        ("POST", "/v1/checkout/sessions/cs_%0A/confirm", None),
        ("DELETE", "/v1/payment-methods/pm_%00", None),
        ("POST", "/api/stripe/subscriptions", {"priceId": f"price{NUL}"}),
        ("POST", "/api/stripe/payment-intents", {"priceId": "p", "customerId": f"cus{NUL}"}),
        ("GET", "/api/stripe/subscriptions/customer/cus_%00", None),
        ("DELETE", "/api/stripe/subscriptions/sub_%00", None),
    ],
)
async def test_control_characters_are_400_on_every_route_family(
    client: httpx.AsyncClient, issuer: TokenIssuer, method: str, path: str, body: object
) -> None:
    response = await client.request(method, path, json=body, headers=issuer.headers(new_user_id()))
    assert_error(response, 400, "invalid_request")


async def test_a_control_character_in_the_stripe_version_header_is_400(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    headers = [
        *((name.encode(), value.encode()) for name, value in issuer.headers(new_user_id()).items()),
        (b"Stripe-Version", b"2026-10-28\x85"),
    ]
    response = await client.post("/v1/ephemeral-keys", json={}, headers=headers)
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("value", [0, 1, "true", None])
async def test_booleans_are_strict(
    client: httpx.AsyncClient, issuer: TokenIssuer, value: object
) -> None:
    response = await client.post(
        "/v1/subscriptions/sub_1/cancel",
        json={"immediately": value},
        headers=issuer.headers(new_user_id()),
    )
    assert_error(response, 400, "invalid_request")


async def test_integers_are_strict(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    for quantity in ("2", 2.0, True):
        response = await client.post(
            "/v1/subscriptions",
            json={"price": "pro", "quantity": quantity},
            headers=issuer.headers(new_user_id()),
        )
        assert_error(response, 400, "invalid_request")


async def test_json_nested_too_deeply_is_400(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    # As deep as the tests' 16 KiB body limit allows: past what Python 3.11's json reads
    # (RecursionError: `invalid_json`); 3.13 reads ~9,000 levels, and then the field is refused
    # for its type (`invalid_request`). Never a 500 either way.
    body = b'{"email": ' + b"[" * 8_000 + b"]" * 8_000 + b"}"
    response = await client.post(
        "/v1/customer",
        content=body,
        headers={**issuer.headers(new_user_id()), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_json", "invalid_request")


async def test_a_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/stripe/subscriptions/sub_1")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "DELETE, GET"
    response = await client.put("/v1/subscriptions/sub_1")
    assert response.headers["allow"] == "GET, PATCH"


async def test_openapi_documents_400_with_the_error_body_and_never_422(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                error = responses["400"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorOut"}, (method, path)
            if operation.get("requestBody"):
                assert {"408", "413"} <= set(responses), (method, path)
