"""The local Stripe emulator, driven over HTTP by the real `stripe` SDK."""

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import stripe
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from tatame_devstack.catalog_seed import seed_demo_catalog
from tatame_devstack.run import running_stripe_emulator

API_KEY = "sk_test_emulator_tests"
LOCALSTRIPE_PICKLE = Path("/tmp/localstripe.pickle")  # noqa: S108 - the path localstripe hardcodes
DEMO_PRICES = {  # lookup_key: (unit_amount, interval, product name)
    "basic_monthly": (1900, "month", "Tatame Basic"),
    "basic_yearly": (19000, "year", "Tatame Basic"),
    "pro_monthly": (3900, "month", "Tatame Pro"),
    "pro_yearly": (39000, "year", "Tatame Pro"),
    "gi_patch": (1500, None, "Gi Patch"),
}


def sdk_client(base_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": base_url}, max_network_retries=0)


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def response_headers(obj: stripe.StripeObject) -> dict[str, str]:
    assert obj.last_response is not None
    return {name.lower(): value for name, value in obj.last_response.headers.items()}


def new_product(client: stripe.StripeClient, **params: Any) -> stripe.Product:
    return client.v1.products.create(params={"name": unique("Product"), **params})


def new_price(
    client: stripe.StripeClient, product_id: str, interval: str | None = "month", **params: Any
) -> stripe.Price:
    recurring = {} if interval is None else {"recurring": {"interval": interval}}
    return client.v1.prices.create(
        params={
            "product": product_id,
            "currency": "usd",
            "unit_amount": 1000,
            **recurring,
            **params,
        }
    )


def price_ids(client: stripe.StripeClient, **params: Any) -> list[str]:
    return [price.id for price in client.v1.prices.list(params=params).auto_paging_iter()]


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
    assert price.active is True and price.livemode is False and price.created > 0
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
    assert price_ids(client, lookup_keys=[monthly.lookup_key, one_time.lookup_key]) == [
        one_time.id,
        monthly.id,
    ]
    assert price_ids(client, product=product.id, limit=1) == newest_first  # pages of one

    first_page = client.v1.prices.list(params={"product": product.id, "limit": 2})
    assert first_page.has_more and [p.id for p in first_page.data] == newest_first[:2]

    (expanded,) = client.v1.prices.list(
        params={"lookup_keys": [monthly.lookup_key], "expand": ["data.product"]}
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
    assert refused.value.json_body["error"]["type"] == "invalid_request_error"
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
    product = new_product(
        client,
        marketing_features=[{"name": "Class booking"}],
        default_price_data={
            "currency": "usd",
            "unit_amount": 1900,
            "recurring": {"interval": "month"},
        },
    )
    yearly = new_price(client, product.id, interval="year", unit_amount=19000)

    assert [feature.name for feature in product.marketing_features] == ["Class booking"]
    default = client.v1.prices.retrieve(product.default_price)
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


# localstripe registers plain-function handlers on import, which aiohttp deprecates.
@pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning")
async def test_request_while_its_key_is_in_flight_gets_409() -> None:
    """In process, behind a handler that waits: over HTTP the emulator's handlers never
    yield, so a second request never finds the first one still running."""
    from tatame_devstack.stripe_emulator import IdempotencyLayer  # imports localstripe

    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_create(request: web.Request) -> web.Response:
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


def test_unknown_route_is_a_stripe_error(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.raw_request("delete", "/v1/prices/price_123")

    assert unknown.value.http_status == 404
    assert "Unrecognized request URL" in str(unknown.value.user_message)


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
            new_price(client, price.product, lookup_key=lookup_key)
        replay = client.v1.customers.create(
            params={"email": email}, options={"idempotency_key": key}
        )
        assert replay.id == customer.id
        assert response_headers(replay)["idempotent-replayed"] == "true"


def demo_prices(client: stripe.StripeClient) -> dict[str, stripe.Price]:
    prices = client.v1.prices.list(
        params={"lookup_keys": list(DEMO_PRICES), "expand": ["data.product"], "limit": 100}
    )
    return {price.lookup_key: price for price in prices.data}


def seeded_catalog_keys(client: stripe.StripeClient) -> list[str]:
    products = client.v1.products.list(params={"limit": 100}).auto_paging_iter()
    return sorted(p.metadata["catalog_key"] for p in products if "catalog_key" in p.metadata)


def test_seed_twice_creates_nothing_new(client: stripe.StripeClient, stripe_emulator: str) -> None:
    seed_demo_catalog(client)
    first = demo_prices(client)
    product_ids = {price.product.id for price in first.values()}
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
    assert seeded_catalog_keys(client) == ["gi_patch", "tatame_basic", "tatame_pro"]
    for lookup_key, (unit_amount, interval, product_name) in DEMO_PRICES.items():
        price = second[lookup_key]
        assert (price.unit_amount, price.currency, price.product.name) == (
            unit_amount,
            "usd",
            product_name,
        )
        assert (price.recurring.interval if price.recurring else None) == interval
    basic, pro = second["basic_monthly"].product, second["pro_yearly"].product
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
