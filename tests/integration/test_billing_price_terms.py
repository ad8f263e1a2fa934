"""Catalog prices that are not a fixed amount — tiered, metered, chosen by the customer — are
mirrored as they are, listed truthfully, and refused clearly (`price_not_subscribable`, never an
internal error) when the app asks to subscribe, change plan or buy."""

import grpc

from services.common.rpc import reason_of
from tests.harness import OddPrices
from tests.integration.billing_accounts import Account


async def test_prices_that_are_not_a_fixed_amount_are_listed_as_they_are(
    account: Account, odd_prices: OddPrices
) -> None:
    plans = (await account.call("ListPlans", include_one_time=True)).plans
    [plan] = [p for p in plans if p.product_id == odd_prices.product]
    prices = {p.id: p for p in plan.prices}

    tiered = prices[odd_prices.tiered]
    assert (tiered.billing_scheme, tiered.tiers_mode, tiered.fixed_amount) == (
        "tiered",
        "graduated",
        False,
    )
    assert [(t.up_to, t.unit_amount) for t in tiered.tiers] == [(5, 1000), (0, 800)]
    metered = prices[odd_prices.metered]
    assert (metered.usage_type, metered.unit_amount, metered.fixed_amount) == ("metered", 5, False)
    chosen = prices[odd_prices.chosen]
    assert (chosen.custom_unit_amount.minimum, chosen.custom_unit_amount.preset) == (500, 2000)
    assert not chosen.custom_unit_amount.HasField("maximum")
    assert (chosen.unit_amount, chosen.fixed_amount) == (0, False)


async def test_subscribing_changing_to_or_buying_one_is_refused_as_not_subscribable(
    paying: Account, odd_prices: OddPrices
) -> None:
    for price in (odd_prices.tiered, odd_prices.metered):
        refused = await paying.refused("CreateSubscription", price=price, email=paying.email)
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(refused) == "price_not_subscribable"
    created = await paying.subscribe("basic_monthly")
    for method, fields in (
        ("PreviewSubscriptionChange", {"price": odd_prices.tiered}),
        ("UpdateSubscription", {"price": odd_prices.metered, "proration_behavior": 3}),
    ):
        refused = await paying.refused(method, id=created.subscription.id, **fields)
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION, method
        assert reason_of(refused) == "price_not_subscribable", method
    refused = await paying.refused("CreatePayment", price=odd_prices.chosen)
    assert reason_of(refused) == "price_not_subscribable"
