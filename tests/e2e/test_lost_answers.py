"""Retries after billing lost Stripe's answer (a timeout, a crash): billing recognises what the
lost attempt made in Stripe and answers with it, instead of a second object or a refusal."""

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
import stripe

from gateway.app import create_app
from services.billing.grpc_api import start_billing_server
from services.billing.settings import BillingRules
from services.common.db import create_engine
from services.common.stripe_sdk import STRIPE_API_VERSION
from tests.e2e.gateway_client import (
    CANCEL_URL,
    SUCCESS_URL,
    GatewayHandle,
    TokenIssuer,
    assert_error,
    with_key,
)
from tests.harness import APP_ORIGIN, BillingHandle, serve_on_loopback
from tests.stripe_target import EMULATOR_KEY


class LosingAnswers(stripe.HTTPXClient):
    """The SDK's HTTP client, recording what billing asks Stripe, that can lose the answer to
    one request after Stripe acted on it (as a timeout or a crash would), or answer one with
    Stripe's refusal of its parameters."""

    def __init__(self) -> None:
        super().__init__(timeout=20)
        self.requests: list[tuple[str, str]] = []
        self.lose_next: tuple[str, str] | None = None
        self.refuse_next: tuple[str, str] | None = None

    async def request_async(self, method, url, headers, post_data=None):
        request = (method.upper(), urlsplit(url).path)
        self.requests.append(request)
        if request == self.refuse_next:
            self.refuse_next = None
            error = {"type": "invalid_request_error", "param": "email", "message": "Invalid email"}
            return json.dumps({"error": error}).encode(), 400, {}
        answer = await super().request_async(method, url, headers, post_data)
        if request == self.lose_next:
            self.lose_next = None
            raise stripe.APIConnectionError("the answer was lost on its way back")
        return answer


CUSTOMER_CREATION = ("POST", "/v1/customers")


@dataclass(frozen=True)
class LossyStack:
    url: str
    http: LosingAnswers


@pytest.fixture(scope="module")
async def lossy(
    billing: BillingHandle, billing_database_url: str, stripe_emulator: str, gateway: GatewayHandle
) -> AsyncIterator[LossyStack]:
    """Another billing server on the same database and emulator, whose Stripe answers can be
    lost, behind its own gateway."""
    http = LosingAnswers()
    engine = create_engine(billing_database_url, pool_size=2)
    stripe_client = stripe.StripeClient(
        EMULATOR_KEY,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": stripe_emulator},
        max_network_retries=0,
        http_client=http,
    )
    server = await start_billing_server(
        address="127.0.0.1:0",
        engine=engine,
        stripe_client=stripe_client,
        service_secrets=billing.service_secrets,
        rules=BillingRules(
            allowed_redirect_origins=frozenset({APP_ORIGIN}),
            test_clock_prefix=billing.stripe_target.test_clock_prefix,
        ),
    )
    settings = gateway.settings.model_copy(
        update={"billing_target": f"127.0.0.1:{server.port}", "gateway_customer_cache_seconds": 0}
    )
    http_server, task, port = await serve_on_loopback(create_app(settings))
    yield LossyStack(f"http://127.0.0.1:{port}", http)
    http_server.should_exit = True
    await task
    await server.stop(0)
    await engine.dispose()


async def test_a_customer_creation_whose_answer_was_lost_is_found_by_a_retry_with_other_details(
    lossy: LossyStack, issuer: TokenIssuer, billing: BillingHandle
) -> None:
    user_id = "user_" + secrets.token_hex(6)
    headers = issuer.headers(user_id)
    first_email = f"{user_id}@example.com"
    async with httpx.AsyncClient(base_url=lossy.url, timeout=30) as client:
        lossy.http.lose_next = CUSTOMER_CREATION
        lost = await client.post(
            "/v1/customer", json={"email": first_email, "name": "Ana"}, headers=headers
        )
        assert_error(lost, 503, "unavailable")
        creations = lossy.http.requests.count(CUSTOMER_CREATION)
        # The app retries with corrected details: no "try again" (Stripe's idempotency_error for
        # its key with other parameters), and the customer Stripe made is the one answered.
        retried = await client.post(
            "/v1/customer",
            json={"email": f"{user_id}.new@example.com", "name": "Ana B"},
            headers=headers,
        )
        assert retried.status_code == 201, retried.text
        assert (retried.json()["email"], retried.json()["name"]) == (first_email, "Ana")
        # Found in Stripe by the first email, not created again: Stripe forgetting its key
        # (after 24 hours) could not make a second customer.
        assert lossy.http.requests.count(CUSTOMER_CREATION) == creations
        again = await client.post(
            "/v1/customer", json={"email": f"{user_id}.third@example.com"}, headers=headers
        )
        assert again.status_code == 200
        assert again.json()["stripe_customer_id"] == retried.json()["stripe_customer_id"]
    mine = [
        c.id
        async for c in (
            await billing.stripe.v1.customers.list_async(params={"limit": 100})
        ).auto_paging_iter()
        if c.to_dict()["metadata"].get("tatame_principal") == f"user:{user_id}"
    ]
    assert mine == [retried.json()["stripe_customer_id"]]


async def test_a_retry_after_billing_lost_stripes_answer_answers_the_subscription_it_started(
    lossy: LossyStack, issuer: TokenIssuer, billing: BillingHandle
) -> None:
    user_id = "user_" + secrets.token_hex(6)
    plain = issuer.headers(user_id)
    headers = with_key(plain)
    body = {"price": "basic_monthly"}
    async with httpx.AsyncClient(base_url=lossy.url, timeout=30) as client:
        customer = await client.post(
            "/v1/customer", json={"email": f"{user_id}@example.com"}, headers=plain
        )
        lossy.http.lose_next = ("POST", "/v1/subscriptions")
        lost = await client.post("/v1/subscriptions", json=body, headers=headers)
        assert_error(lost, 503, "unavailable")
        # Not "live_subscription_exists" naming the caller's own new subscription: its answer.
        retried = await client.post("/v1/subscriptions", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["client_secret"]
    assert retried.json()["trial_applied"] is True
    listed = await billing.stripe.v1.subscriptions.list_async(
        params={"customer": customer.json()["stripe_customer_id"], "status": "all"}
    )
    assert [s.id for s in listed.data] == [retried.json()["subscription"]["id"]]


async def test_a_retry_after_billing_lost_stripes_answer_answers_the_checkout_session_it_made(
    lossy: LossyStack, issuer: TokenIssuer, billing: BillingHandle
) -> None:
    user_id = "user_" + secrets.token_hex(6)
    plain = issuer.headers(user_id)
    headers = with_key(plain)
    body = {"price": "pro_yearly", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}
    async with httpx.AsyncClient(base_url=lossy.url, timeout=30) as client:
        customer = await client.post(
            "/v1/customer", json={"email": f"{user_id}@example.com"}, headers=plain
        )
        lossy.http.lose_next = ("POST", "/v1/checkout/sessions")
        lost = await client.post("/v1/checkout/sessions", json=body, headers=headers)
        assert_error(lost, 503, "unavailable")
        retried = await client.post("/v1/checkout/sessions", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    listed = await billing.stripe.v1.checkout.sessions.list_async(
        params={"customer": customer.json()["stripe_customer_id"]}
    )
    # The session the lost attempt made is the one answered, and it is still open.
    assert [(s.id, s.status) for s in listed.data] == [(retried.json()["id"], "open")]


async def test_contact_details_stripe_refused_give_way_to_the_retrys_own(
    lossy: LossyStack, issuer: TokenIssuer
) -> None:
    user_id = "user_" + secrets.token_hex(6)
    headers = issuer.headers(user_id)
    fixed_email = f"{user_id}.fixed@example.com"
    async with httpx.AsyncClient(base_url=lossy.url, timeout=30) as client:
        lossy.http.refuse_next = CUSTOMER_CREATION
        refused = await client.post(
            "/v1/customer", json={"email": f"{user_id}@example.com"}, headers=headers
        )
        assert_error(refused, 400, "failed_precondition")
        retried = await client.post("/v1/customer", json={"email": fixed_email}, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["email"] == fixed_email


async def test_a_retry_after_billing_lost_stripes_answer_answers_the_upgrade_it_applied(
    lossy: LossyStack, issuer: TokenIssuer
) -> None:
    user_id = "user_" + secrets.token_hex(6)
    plain = issuer.headers(user_id)
    async with httpx.AsyncClient(base_url=lossy.url, timeout=30) as client:
        await client.post("/v1/customer", json={"email": f"{user_id}@example.com"}, headers=plain)
        started = await client.post(
            "/v1/subscriptions", json={"price": "basic_monthly"}, headers=plain
        )
        path = f"/v1/subscriptions/{started.json()['subscription']['id']}"
        headers = with_key(plain)
        body = {"price": "pro_monthly", "proration_behavior": "none"}
        lossy.http.lose_next = ("POST", path)
        lost = await client.patch(path, json=body, headers=headers)
        assert_error(lost, 503, "unavailable")
        # Not "the change keeps the current price and quantity": the change it made.
        retried = await client.patch(path, json=body, headers=headers)
        assert retried.status_code == 200, retried.text
        assert retried.json()["takes_effect"] == "now"
        assert (
            retried.json()["subscription"]["price_id"]
            == (await client.get(path, headers=plain)).json()["price_id"]
        )
        unkeyed = await client.patch(path, json=body, headers=plain)
        assert unkeyed.status_code == 400
        assert "keeps the current price" in unkeyed.text
