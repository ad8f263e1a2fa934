"""The local Stripe emulator, driven over HTTP by the real `stripe` SDK."""

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from stripe.params.checkout import SessionCreateParams
from tatame_devstack.catalog_seed import seed_demo_catalog
from tatame_devstack.run import emulator_conformance_violations, running_stripe_emulator

from tests.integration.stripe_emulator_helpers import (
    customer_with_card,
    emulator_only,
    events_of,
    monthly,
    new_price,
    new_product,
    price_ids,
    response_headers,
    sdk_client,
    unique,
)
from tests.integration.stripe_fields import expanded, id_of, present

LOCALSTRIPE_PICKLE = Path("/tmp/localstripe.pickle")  # noqa: S108 - the path localstripe hardcodes
DEMO_PRICES = {  # lookup_key: (unit_amount, interval, product name)
    "basic_monthly": (1900, "month", "Tatame Basic"),
    "basic_yearly": (19000, "year", "Tatame Basic"),
    "pro_monthly": (3900, "month", "Tatame Pro"),
    "pro_yearly": (39000, "year", "Tatame Pro"),
    "gi_patch": (1500, None, "Gi Patch"),
    "video_minutes": (5, "month", "Video on demand"),  # metered, on the video_minutes meter
}


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def test_price_create_retrieve_update(client: stripe.StripeClient) -> None:
    product = new_product(client)
    lookup_key = unique("kids_quarterly")

    price = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "USD",
            "unit_amount": 2500,
            "recurring": {"interval": "month", "interval_count": 3},
            "lookup_key": lookup_key,
            "nickname": "Kids quarterly",
            "metadata": {"tier": "kids", "legacy": "yes"},
            "tax_behavior": "exclusive",
        }
    )

    assert isinstance(price, stripe.Price)
    assert price.id.startswith("price_")
    assert (price.type, price.unit_amount, price.currency) == ("recurring", 2500, "usd")
    assert price.recurring is not None
    assert (price.recurring.interval, price.recurring.interval_count) == ("month", 3)
    assert price.recurring.usage_type == "licensed"
    assert (price.lookup_key, price.nickname, price.product) == (
        lookup_key,
        "Kids quarterly",
        product.id,
    )
    assert (price.billing_scheme, price.tax_behavior) == ("per_unit", "exclusive")
    assert price.active is True
    assert price.livemode is False
    assert price.created > 0
    assert client.v1.prices.retrieve(price.id).to_dict() == price.to_dict()

    updated = client.v1.prices.update(
        price.id,
        params={"active": False, "nickname": "", "metadata": {"legacy": "", "tier": "children"}},
    )

    assert (updated.active, updated.nickname) == (False, None)
    assert updated.metadata.to_dict() == {"tier": "children"}
    assert client.v1.prices.retrieve(price.id).to_dict() == updated.to_dict()


def test_one_time_price_has_no_recurring(client: stripe.StripeClient) -> None:
    price = new_price(client, new_product(client).id, interval=None)

    assert (price.type, price.recurring) == ("one_time", None)


def test_unknown_price_is_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.prices.retrieve("price_missing")

    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


def test_price_list_filters_and_pagination(client: stripe.StripeClient) -> None:
    product = new_product(client, description="Adults")
    monthly = new_price(client, product.id, lookup_key=unique("monthly"))
    yearly = new_price(client, product.id, interval="year", active=False)
    one_time = new_price(
        client, product.id, interval=None, currency="eur", lookup_key=unique("once")
    )

    newest_first = [one_time.id, yearly.id, monthly.id]
    assert price_ids(client, product=product.id) == newest_first
    assert price_ids(client, product=product.id, type="one_time") == [one_time.id]
    assert price_ids(client, product=product.id, type="recurring") == [yearly.id, monthly.id]
    assert price_ids(client, product=product.id, active=False) == [yearly.id]
    assert price_ids(client, product=product.id, currency="eur") == [one_time.id]
    lookup_keys = [present(monthly.lookup_key), present(one_time.lookup_key)]
    assert price_ids(client, lookup_keys=lookup_keys) == [
        one_time.id,
        monthly.id,
    ]
    assert price_ids(client, product=product.id, limit=1) == newest_first  # pages of one

    first_page = client.v1.prices.list(params={"product": product.id, "limit": 2})
    assert first_page.has_more
    assert [p.id for p in first_page.data] == newest_first[:2]

    (expanded,) = client.v1.prices.list(
        params={"lookup_keys": [present(monthly.lookup_key)], "expand": ["data.product"]}
    ).data
    assert isinstance(expanded.product, stripe.Product)
    assert (expanded.product.id, expanded.product.description) == (product.id, "Adults")


def test_duplicate_lookup_key_is_refused_unless_transferred(client: stripe.StripeClient) -> None:
    product = new_product(client)
    lookup_key = unique("team_monthly")
    first = new_price(client, product.id, lookup_key=lookup_key)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        new_price(client, product.id, lookup_key=lookup_key)

    assert (refused.value.http_status, refused.value.param) == (400, "lookup_key")
    assert present(refused.value.error).type == "invalid_request_error"
    assert price_ids(client, product=product.id) == [first.id]

    second = new_price(client, product.id, lookup_key=lookup_key, transfer_lookup_key=True)

    assert second.lookup_key == lookup_key
    assert client.v1.prices.retrieve(first.id).lookup_key is None
    assert price_ids(client, lookup_keys=[lookup_key]) == [second.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(first.id, params={"lookup_key": lookup_key})


def test_recurring_price_is_a_plan_and_subscribable(client: stripe.StripeClient) -> None:
    product = new_product(client)
    price = new_price(client, product.id, interval="year", unit_amount=19000)
    one_time = new_price(client, product.id, interval=None)
    customer = client.v1.customers.create(params={"email": f"{unique('sub')}@example.com"})

    plan = client.v1.plans.retrieve(price.id)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 7}
    )

    assert (plan.amount, plan.currency, plan.interval, plan.product) == (
        19000,
        "usd",
        "year",
        product.id,
    )
    assert subscription["items"].data[0].price.id == price.id
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": one_time.id}]}
        )
    assert refused.value.param == "items[0][price]"


def test_product_marketing_features_and_default_price(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(
        params={
            "name": unique("Product"),
            "marketing_features": [{"name": "Class booking"}],
            "default_price_data": {
                "currency": "usd",
                "unit_amount": 1900,
                "recurring": {"interval": "month"},
            },
        }
    )
    yearly = new_price(client, product.id, interval="year", unit_amount=19000)

    assert [feature.name for feature in product.marketing_features] == ["Class booking"]
    default = client.v1.prices.retrieve(id_of(product.default_price))
    assert (default.product, default.unit_amount, default.type) == (product.id, 1900, "recurring")

    client.v1.products.update(
        product.id,
        params={
            "marketing_features": [{"name": "Class booking"}, {"name": "Belt tracking"}],
            "default_price": yearly.id,
            "metadata": {"features": "class_booking,belt_tracking"},
        },
    )

    stored = client.v1.products.retrieve(product.id)
    assert [f.name for f in stored.marketing_features] == ["Class booking", "Belt tracking"]
    assert stored.default_price == yearly.id
    assert stored.metadata.to_dict() == {"features": "class_booking,belt_tracking"}
    assert stored.updated >= stored.created
    updates = client.v1.events.list(params={"type": "product.updated", "limit": 100})
    assert yearly.id in [
        e.data["object"]["default_price"]
        for e in updates.auto_paging_iter()
        if e.data["object"]["id"] == product.id
    ]
    created = client.v1.events.list(params={"type": "price.created", "limit": 100})
    assert yearly.id in [e.data["object"]["id"] for e in created.auto_paging_iter()]

    foreign = new_price(client, new_product(client).id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.products.update(product.id, params={"default_price": foreign.id})
    assert refused.value.param == "default_price"


def test_idempotent_replay_creates_one_customer(client: stripe.StripeClient) -> None:
    email = f"{unique('replay')}@example.com"
    key = unique("idem")

    first = client.v1.customers.create(params={"email": email}, options={"idempotency_key": key})
    again = client.v1.customers.create(params={"email": email}, options={"idempotency_key": key})

    assert again.id == first.id
    assert "idempotent-replayed" not in response_headers(first)
    assert response_headers(again)["idempotent-replayed"] == "true"
    customers = client.v1.customers.list(params={"email": email, "limit": 100}).data
    assert [customer.id for customer in customers] == [first.id]


def test_same_key_with_other_params_is_an_idempotency_error(client: stripe.StripeClient) -> None:
    key = unique("idem")
    other_email = f"{unique('other')}@example.com"
    client.v1.customers.create(
        params={"email": f"{unique('first')}@example.com"}, options={"idempotency_key": key}
    )

    with pytest.raises(stripe.IdempotencyError) as mismatch:
        client.v1.customers.create(params={"email": other_email}, options={"idempotency_key": key})

    assert mismatch.value.http_status == 400
    assert client.v1.customers.list(params={"email": other_email}).data == []


def test_refused_request_is_not_saved_under_its_key(client: stripe.StripeClient) -> None:
    product = new_product(client)
    key = unique("idem")

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(
            params={"product": product.id, "currency": "usd", "unit_amount": -1},
            options={"idempotency_key": key},
        )
    price = client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount": 100},
        options={"idempotency_key": key},
    )

    assert price.unit_amount == 100


async def test_request_while_its_key_is_in_flight_gets_409() -> None:
    """In process, behind a handler that waits: over HTTP the emulator's handlers never
    yield, so a second request never finds the first one still running."""
    from tatame_devstack.stripe_emulator import IdempotencyLayer  # imports localstripe

    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_create(_request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({"id": "cus_slow"})

    app = web.Application(middlewares=[IdempotencyLayer().middleware])
    app.router.add_post("/v1/customers", slow_create)
    headers = {"Idempotency-Key": "key-in-flight"}
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
        url = str(server.make_url("/v1/customers"))

        async def post() -> tuple[int, dict[str, Any], str | None]:
            async with session.post(url, data={"email": "a@example.com"}, headers=headers) as reply:
                return reply.status, await reply.json(), reply.headers.get("Idempotent-Replayed")

        first = asyncio.create_task(post())
        await entered.wait()
        status, body, _ = await post()
        release.set()

        assert status == 409
        assert body["error"]["type"] == "idempotency_error"
        assert body["error"]["code"] == "idempotency_key_in_use"
        assert await first == (200, {"id": "cus_slow"}, None)
        assert await post() == (200, {"id": "cus_slow"}, "true")


@pytest.fixture(scope="module")
def own_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An emulator checking conformance, for tests that send what Stripe refuses (the session's
    emulator fails the run on any departure)."""
    log_path = tmp_path_factory.mktemp("own-emulator") / "emulator.log"
    with running_stripe_emulator(log_path, "--port", "0", "--conformance") as base_url:
        yield base_url


def test_unknown_route_is_a_stripe_error(own_emulator: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sdk_client(own_emulator).raw_request("delete", "/v1/prices/price_123")

    assert unknown.value.http_status == 404
    assert "Unrecognized request URL" in str(unknown.value.user_message)


def test_the_conformance_check_refuses_an_unknown_parameter_and_records_it(
    own_emulator: str,
) -> None:
    client = sdk_client(own_emulator)
    before = emulator_conformance_violations(own_emulator)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.create(params={"email": "a@example.com", "plan": "gold"})  # type: ignore[arg-type]  # unknown on purpose

    assert (refused.value.http_status, refused.value.param) == (400, "plan")
    [recorded] = emulator_conformance_violations(own_emulator)[len(before) :]
    assert recorded.startswith("unknown_parameter at plan")


def test_localstripe_pickle_is_never_written(client: stripe.StripeClient) -> None:
    def stamp() -> int | None:
        return LOCALSTRIPE_PICKLE.stat().st_mtime_ns if LOCALSTRIPE_PICKLE.exists() else None

    before = stamp()
    client.v1.customers.create(params={"email": f"{unique('pickle')}@example.com"})

    assert stamp() == before


def test_state_file_survives_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "devdata" / "stripe.pickle"
    log_path = tmp_path / "emulator.log"
    lookup_key, key = unique("restart"), unique("idem")
    email = f"{unique('restart')}@example.com"

    with running_stripe_emulator(
        log_path, "--port", "0", "--state-file", str(state_file)
    ) as base_url:
        client = sdk_client(base_url)
        price = new_price(client, new_product(client).id, lookup_key=lookup_key)
        customer = client.v1.customers.create(
            params={"email": email}, options={"idempotency_key": key}
        )

    with running_stripe_emulator(
        log_path, "--port", "0", "--state-file", str(state_file)
    ) as base_url:
        client = sdk_client(base_url)
        assert client.v1.prices.retrieve(price.id).to_dict() == price.to_dict()
        assert price_ids(client, lookup_keys=[lookup_key]) == [price.id]
        assert client.v1.plans.retrieve(price.id).amount == price.unit_amount
        with pytest.raises(stripe.InvalidRequestError):
            new_price(client, id_of(price.product), lookup_key=lookup_key)
        replay = client.v1.customers.create(
            params={"email": email}, options={"idempotency_key": key}
        )
        assert replay.id == customer.id
        assert response_headers(replay)["idempotent-replayed"] == "true"


def demo_prices(client: stripe.StripeClient) -> dict[str, stripe.Price]:
    prices = client.v1.prices.list(
        params={"lookup_keys": list(DEMO_PRICES), "expand": ["data.product"], "limit": 100}
    )
    return {present(price.lookup_key): price for price in prices.data}


def seeded_catalog_keys(client: stripe.StripeClient) -> list[str]:
    products = client.v1.products.list(params={"limit": 100}).auto_paging_iter()
    return sorted(p.metadata["catalog_key"] for p in products if "catalog_key" in p.metadata)


def test_seed_twice_creates_nothing_new(client: stripe.StripeClient, stripe_emulator: str) -> None:
    seed_demo_catalog(client)
    first = demo_prices(client)
    product_ids = {id_of(price.product) for price in first.values()}
    prices_before = {
        product_id: price_ids(client, product=product_id) for product_id in product_ids
    }

    second_run = subprocess.run(
        [sys.executable, "-m", "tatame_devstack.catalog_seed", "--api-base", stripe_emulator],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    second = demo_prices(client)

    assert "created" not in second_run.stderr
    assert sorted(first) == sorted(DEMO_PRICES)
    assert {key: p.id for key, p in second.items()} == {key: p.id for key, p in first.items()}
    assert {pid: price_ids(client, product=pid) for pid in product_ids} == prices_before
    assert seeded_catalog_keys(client) == [
        "gi_patch",
        "tatame_basic",
        "tatame_pro",
        "video_on_demand",
    ]
    metered = second["video_minutes"].recurring
    assert metered is not None
    meter = client.v1.billing.meters.retrieve(present(metered.meter))
    assert (metered.usage_type, meter.event_name) == ("metered", "video_minutes")
    meters = client.v1.billing.meters.list(params={"limit": 100}).auto_paging_iter()
    assert [m.event_name for m in meters].count("video_minutes") == 1
    for lookup_key, (unit_amount, interval, product_name) in DEMO_PRICES.items():
        price = second[lookup_key]
        assert (price.unit_amount, price.currency, expanded(price.product).name) == (
            unit_amount,
            "usd",
            product_name,
        )
        assert (price.recurring.interval if price.recurring else None) == interval
    basic, pro = expanded(second["basic_monthly"].product), expanded(second["pro_yearly"].product)
    assert basic.default_price == second["basic_monthly"].id
    assert basic.metadata["features"] == "class_booking,attendance_history"
    assert [f.name for f in basic.marketing_features] == ["Class booking", "Attendance history"]
    assert (
        pro.metadata["features"] == "class_booking,attendance_history,belt_tracking,video_library"
    )


def test_seed_refuses_a_live_key(stripe_emulator: str) -> None:
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "tatame_devstack.catalog_seed",
            "--api-base",
            stripe_emulator,
            "--api-key",
            "sk_live_not_a_test_key",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert refused.returncode == 2
    assert "not a test-mode key" in refused.stderr


# --- Billing: Checkout, the portal, PaymentSheet, plan changes, schedules ----------------------


def test_a_checkout_session_completes_into_a_subscription_with_its_event(
    client: stripe.StripeClient,
) -> None:
    customer = client.v1.customers.create(params={"email": f"{unique('co')}@example.com"})
    price = monthly(client, 1900)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://app.example/done?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example/plans",
            "client_reference_id": "user:user_1",
            "allow_promotion_codes": True,
            "subscription_data": {"trial_period_days": 14, "metadata": {"k": "v"}},
        }
    )
    assert (session.status, session.subscription, present(session.url).startswith("https://")) == (
        "open",
        None,
        True,
    )

    emulator_only(client, f"checkout/sessions/{session.id}/complete", payment_method="pm_card_visa")

    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    subscription = expanded(done.subscription)
    assert subscription.status == "trialing"
    assert subscription.metadata["k"] == "v"
    assert present(subscription.trial_end) - present(subscription.trial_start) == 14 * 86400
    assert subscription.default_payment_method is not None
    assert "checkout.session.completed" in events_of(client, session.id)
    with pytest.raises(stripe.InvalidRequestError):
        emulator_only(client, f"checkout/sessions/{session.id}/complete")


def test_checkout_sessions_are_listed_expired_and_refuse_declined_cards(
    client: stripe.StripeClient,
) -> None:
    customer = client.v1.customers.create(params={"email": f"{unique('co')}@example.com"})
    params: SessionCreateParams = {
        "mode": "subscription",
        "customer": customer.id,
        "line_items": [{"price": monthly(client, 500).id}],
        "success_url": "https://app.example/done",
    }
    first = client.v1.checkout.sessions.create(params=params)
    second = client.v1.checkout.sessions.create(params=params)

    with pytest.raises(stripe.CardError):
        emulator_only(
            client,
            f"checkout/sessions/{first.id}/complete",
            payment_method="pm_card_visa_chargeDeclined",
        )
    client.v1.checkout.sessions.expire(first.id)

    listed = client.v1.checkout.sessions.list(params={"customer": customer.id, "status": "open"})
    assert [s.id for s in listed.data] == [second.id]
    assert client.v1.checkout.sessions.retrieve(first.id).status == "expired"
    assert "checkout.session.expired" in events_of(client, first.id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params={**params, "mode": "payment"})
    assert refused.value.param == "mode"


def test_portal_sessions_and_ephemeral_keys_are_made_for_a_customer(
    client: stripe.StripeClient,
) -> None:
    customer = client.v1.customers.create(params={"email": f"{unique('eph')}@example.com"})

    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "https://app.example/billing"}
    )
    key = client.v1.ephemeral_keys.create(
        params={"customer": customer.id}, options={"stripe_version": "2020-08-27"}
    )

    assert present(portal.url).startswith("https://")
    assert portal.customer == customer.id
    assert present(key.secret).startswith("ek_test_")
    assert key.expires > key.created
    made = json.loads(client.raw_request("get", f"/_testing/ephemeral_keys/{key.secret}").body)
    assert made == {"id": key.id, "stripe_version": "2020-08-27"}


def test_default_incomplete_waits_for_the_client_to_confirm_the_first_payment(
    client: stripe.StripeClient,
) -> None:
    customer = client.v1.customers.create(params={"email": f"{unique('ps')}@example.com"})
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly(client, 1900).id}],
            "payment_behavior": "default_incomplete",
            "payment_settings": {"save_default_payment_method": "on_subscription"},
            "expand": ["latest_invoice.confirmation_secret"],
        }
    )
    invoice = expanded(subscription.latest_invoice)
    secret = present(invoice.confirmation_secret).client_secret
    assert subscription.status == "incomplete"
    assert invoice.status == "open"

    intent = client.v1.payment_intents.confirm(
        secret.partition("_secret_")[0], params={"payment_method": "pm_card_visa"}
    )

    paid = client.v1.subscriptions.retrieve(subscription.id)
    assert intent.status == "succeeded"
    assert paid.status == "active"
    assert paid.default_payment_method == intent.payment_method
    assert client.v1.payment_methods.retrieve(id_of(intent.payment_method)).customer == customer.id
    assert "invoice.paid" in events_of(client, invoice.id)
    assert events_of(client, subscription.id)[-1] == "customer.subscription.updated"


def test_a_trial_with_default_incomplete_saves_a_card_through_its_setup_intent(
    client: stripe.StripeClient,
) -> None:
    customer = client.v1.customers.create(params={"email": f"{unique('ps')}@example.com"})
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly(client, 1900).id}],
            "payment_behavior": "default_incomplete",
            "trial_period_days": 30,
            "expand": ["pending_setup_intent"],
        }
    )
    assert subscription.status == "trialing"
    trial_invoice = client.v1.invoices.retrieve(id_of(subscription.latest_invoice))
    assert (trial_invoice.status, trial_invoice.amount_due) == ("paid", 0)

    client.v1.setup_intents.confirm(
        id_of(subscription.pending_setup_intent), params={"payment_method": "pm_card_visa"}
    )

    saved = client.v1.subscriptions.retrieve(subscription.id)
    assert saved.pending_setup_intent is None
    assert (
        client.v1.payment_methods.retrieve(id_of(saved.default_payment_method)).customer
        == customer.id
    )


def test_an_upgrade_prorates_the_rest_of_the_period_and_a_preview_shows_it(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    basic, pro = monthly(client, 1000), monthly(client, 3000)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": basic.id}]}
    )
    item = subscription["items"].data[0]
    preview = client.v1.invoices.create_preview(
        params={
            "customer": customer_id,
            "subscription": subscription.id,
            "subscription_details": {
                "items": [{"id": item.id, "price": pro.id}],
                "proration_behavior": "always_invoice",
            },
        }
    )
    updated = client.v1.subscriptions.update(
        subscription.id,
        params={
            "items": [{"id": item.id, "price": pro.id}],
            "proration_behavior": "always_invoice",
        },
    )

    amounts = sorted(line.amount for line in preview.lines.data)
    assert -1000 <= amounts[0] < -990
    assert 2970 < amounts[1] <= 3000
    assert all(
        present(present(line.parent).subscription_item_details).proration
        for line in preview.lines.data
    )
    assert updated["items"].data[0].id == item.id
    assert updated["items"].data[0].price.id == pro.id
    invoices = client.v1.invoices.list(params={"customer": customer_id}).data
    assert [i.status for i in invoices] == ["paid", "paid"]
    proration = client.v1.invoices.retrieve(id_of(updated.latest_invoice))
    assert proration.id != subscription.latest_invoice
    assert proration.amount_paid == preview.amount_due == sum(amounts)


def test_cancel_at_period_end_sets_cancel_at_and_ends_with_the_period(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": monthly(client, 1000).id}]}
    )

    cancelling = client.v1.subscriptions.update(
        subscription.id, params={"cancel_at_period_end": True}
    )
    assert cancelling.cancel_at == cancelling["items"].data[0].current_period_end
    assert cancelling.canceled_at is not None
    assert cancelling.status == "active"
    resumed = client.v1.subscriptions.update(
        subscription.id, params={"cancel_at_period_end": False}
    )
    assert (resumed.cancel_at, resumed.canceled_at) == (None, None)
    client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})

    ended = emulator_only(client, f"subscriptions/{subscription.id}/end_period")

    assert ended["status"] == "canceled"
    assert ended["ended_at"] == cancelling.cancel_at
    assert events_of(client, subscription.id)[-1] == "customer.subscription.deleted"


def test_a_schedule_moves_the_subscription_to_its_next_phase_at_the_period_end(
    client: stripe.StripeClient,
) -> None:
    customer_id, _ = customer_with_card(client)
    pro, basic = monthly(client, 3000), monthly(client, 1000)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": pro.id}]}
    )
    schedule = client.v1.subscription_schedules.create(
        params={"from_subscription": subscription.id}
    )
    phase = present(schedule.current_phase)
    schedule = client.v1.subscription_schedules.update(
        schedule.id,
        params={
            "end_behavior": "release",
            "phases": [
                {
                    "items": [{"price": pro.id, "quantity": 1}],
                    "start_date": phase.start_date,
                    "end_date": phase.end_date,
                },
                {"items": [{"price": basic.id, "quantity": 1}], "duration": {"interval": "month"}},
            ],
        },
    )
    assert schedule.phases[1].start_date == phase.end_date
    with pytest.raises(stripe.InvalidRequestError):  # managed by the schedule
        client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})

    emulator_only(client, f"subscriptions/{subscription.id}/end_period")

    moved = client.v1.subscriptions.retrieve(subscription.id)
    assert moved["items"].data[0].price.id == basic.id
    assert moved["items"].data[0].current_period_start == phase.end_date
    assert (
        present(client.v1.subscription_schedules.retrieve(schedule.id).current_phase).start_date
        == phase.end_date
    )
    emulator_only(client, f"subscriptions/{subscription.id}/end_period")  # the last phase ends
    released = client.v1.subscription_schedules.retrieve(schedule.id)
    assert (released.status, released.released_subscription) == ("released", subscription.id)
    assert client.v1.subscriptions.retrieve(subscription.id).schedule is None


def test_a_default_payment_method_must_be_the_customers_and_detaching_unsets_it(
    client: stripe.StripeClient,
) -> None:
    customer_id, card = customer_with_card(client)
    stranger = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2031, "cvc": "123"},
        }
    )
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.update(
            customer_id, params={"invoice_settings": {"default_payment_method": stranger.id}}
        )
    assert refused.value.param == "invoice_settings[default_payment_method]"
    assert [pm.id for pm in client.v1.customers.payment_methods.list(customer_id).data] == [card]

    client.v1.payment_methods.detach(card)

    customer = client.v1.customers.retrieve(customer_id)
    assert present(customer.invoice_settings).default_payment_method is None
    assert client.v1.customers.payment_methods.list(customer_id).data == []
    assert events_of(client, card)[-2:] == ["payment_method.attached", "payment_method.detached"]
