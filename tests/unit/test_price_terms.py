"""Prices that are not a fixed amount: their mirror row, and how GET /v1/plans shows them."""

from tatame.billing.v1 import billing_pb2

from gateway import rendering
from services.billing.catalog import price_row

TIERED = {
    "id": "price_t",
    "product": "prod_1",
    "currency": "usd",
    "unit_amount": None,
    "active": True,
    "billing_scheme": "tiered",
    "tiers_mode": "volume",
    "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
}


def test_a_tiered_price_keeps_its_tiers_when_stripe_sends_them_expanded() -> None:
    tiers = [{"up_to": 10, "unit_amount": 900, "flat_amount": None}]
    tiers.append({"up_to": None, "unit_amount": 700, "flat_amount": 100})
    row = price_row({**TIERED, "tiers": tiers})
    assert (row["billing_scheme"], row["tiers_mode"], row["unit_amount"]) == ("tiered", "volume", 0)
    assert row["tiers"] == tiers


def test_a_tiered_price_without_its_tiers_leaves_the_mirrored_ones_alone() -> None:
    # Stripe sends tiers only when expanded: an event's price has none.
    assert "tiers" not in price_row(TIERED)


def test_a_per_unit_price_has_no_tiers() -> None:
    row = price_row(
        {**TIERED, "billing_scheme": "per_unit", "unit_amount": 500, "tiers_mode": None}
    )
    assert (row["tiers"], row["unit_amount"], row["usage_type"]) == (None, 500, "licensed")


def test_plans_show_no_unit_amount_for_a_price_that_is_not_a_fixed_amount() -> None:
    message = billing_pb2.Price(
        id="price_t",
        currency="usd",
        interval_count=1,
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[
            billing_pb2.PriceTier(up_to=5, unit_amount=1000),
            billing_pb2.PriceTier(flat_amount=9),
        ],
        fixed_amount=False,
    )
    shown = rendering.price(message, "month")
    assert (shown.unit_amount, shown.fixed_amount, shown.billing_scheme) == (None, False, "tiered")
    assert [(t.up_to, t.unit_amount, t.flat_amount) for t in shown.tiers or []] == [
        (5, 1000, None),
        (None, None, 9),
    ]
    fixed = rendering.price(billing_pb2.Price(id="p", unit_amount=1900, fixed_amount=True), "month")
    assert (fixed.unit_amount, fixed.tiers, fixed.custom_unit_amount) == (1900, None, None)
