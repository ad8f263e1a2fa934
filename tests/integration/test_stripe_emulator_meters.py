"""The emulator's Billing Meters, as Stripe has them at the pinned API version: meters, meter
events (one identifier counts once), their summaries by formula, and metered prices that name a
meter. Every request and response is checked against stripe-python's types (the session's
emulator runs with --conformance)."""

import time

import pytest
import stripe

from tests.integration.stripe_emulator_helpers import customer_with_card, sdk_client, unique


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


def _meter(client: stripe.StripeClient, formula: str, **params: object) -> stripe.billing.Meter:
    return client.v1.billing.meters.create(
        params={
            "display_name": "Video minutes",
            "event_name": unique("video_minutes"),
            "default_aggregation": {"formula": formula},
            **params,  # type: ignore[typeddict-item]
        }
    )


def _window() -> tuple[int, int]:
    """The minute boundaries around now: an hour back to a minute ahead."""
    minute = int(time.time()) // 60 * 60
    return minute - 3600, minute + 120


def _summary(client: stripe.StripeClient, meter: stripe.billing.Meter, customer: str) -> float:
    start, end = _window()
    [summary] = client.v1.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer, "start_time": start, "end_time": end}
    ).data
    assert (summary.meter, summary.start_time, summary.end_time) == (meter.id, start, end)
    return summary.aggregated_value


def test_a_meter_is_created_retrieved_and_listed(client: stripe.StripeClient) -> None:
    meter = _meter(
        client,
        "sum",
        customer_mapping={"event_payload_key": "customer", "type": "by_id"},
        value_settings={"event_payload_key": "minutes"},
    )

    again = client.v1.billing.meters.retrieve(meter.id)
    listed = client.v1.billing.meters.list(params={"status": "active", "limit": 100}).data

    assert isinstance(again, stripe.billing.Meter)
    assert (again.event_name, again.status, again.default_aggregation.formula) == (
        meter.event_name,
        "active",
        "sum",
    )
    assert again.customer_mapping.event_payload_key == "customer"
    assert again.value_settings.event_payload_key == "minutes"
    assert meter.id in {m.id for m in listed}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _meter(client, "sum", event_name=meter.event_name)
    assert refused.value.param == "event_name"


def test_meter_events_are_summed_per_customer(client: stripe.StripeClient) -> None:
    meter = _meter(client, "sum")
    customer, _ = customer_with_card(client)
    other, _ = customer_with_card(client)
    for customer_id, value in ((customer, "25"), (customer, "15"), (other, "7")):
        event = client.v1.billing.meter_events.create(
            params={
                "event_name": meter.event_name,
                "payload": {"stripe_customer_id": customer_id, "value": value},
            }
        )
        assert isinstance(event, stripe.billing.MeterEvent)
        assert event.identifier

    assert _summary(client, meter, customer) == 40
    assert _summary(client, meter, other) == 7


def test_a_repeated_identifier_is_refused_and_not_counted(client: stripe.StripeClient) -> None:
    meter = _meter(client, "sum")
    customer, _ = customer_with_card(client)
    params = {
        "event_name": meter.event_name,
        "identifier": unique("usage"),
        "payload": {"stripe_customer_id": customer, "value": "10"},
        "timestamp": int(time.time()) - 60,
    }
    first = client.v1.billing.meter_events.create(params=params)  # type: ignore[arg-type]

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.billing.meter_events.create(params=params)  # type: ignore[arg-type]

    assert first.identifier == params["identifier"]
    assert refused.value.param == "identifier"
    assert _summary(client, meter, customer) == 10


@pytest.mark.parametrize(("formula", "expected"), [("count", 3), ("last", 2)])
def test_count_and_last_formulas(
    client: stripe.StripeClient, formula: str, expected: float
) -> None:
    meter = _meter(client, formula)
    customer, _ = customer_with_card(client)
    now = int(time.time())
    for offset, value in ((-300, "9"), (-60, "2"), (-120, "5")):
        client.v1.billing.meter_events.create(
            params={
                "event_name": meter.event_name,
                "payload": {"stripe_customer_id": customer, "value": value},
                "timestamp": now + offset,
            }
        )

    assert _summary(client, meter, customer) == expected


def test_events_are_refused_as_stripe_refuses_them(client: stripe.StripeClient) -> None:
    meter = _meter(client, "sum")
    customer, _ = customer_with_card(client)
    refused = []
    for payload, timestamp in (
        ({"value": "1"}, None),  # no customer
        ({"stripe_customer_id": customer, "value": "many"}, None),
        ({"stripe_customer_id": customer, "value": "1"}, int(time.time()) - 36 * 24 * 3600),
        ({"stripe_customer_id": customer, "value": "1"}, int(time.time()) + 600),
    ):
        params: dict[str, object] = {"event_name": meter.event_name, "payload": payload}
        if timestamp is not None:
            params["timestamp"] = timestamp
        with pytest.raises(stripe.InvalidRequestError) as error:
            client.v1.billing.meter_events.create(params=params)  # type: ignore[arg-type]
        refused.append(error.value.param)

    assert refused == [
        "payload[stripe_customer_id]",
        "payload[value]",
        "timestamp",
        "timestamp",
    ]
    start, _ = _window()
    with pytest.raises(stripe.InvalidRequestError) as unaligned:
        client.v1.billing.meters.event_summaries.list(
            meter.id, params={"customer": customer, "start_time": start + 1, "end_time": start + 60}
        )
    assert unaligned.value.param == "start_time"


def test_a_metered_price_names_an_existing_meter(client: stripe.StripeClient) -> None:
    meter = _meter(client, "sum")
    product = client.v1.products.create(params={"name": unique("Minutes")})
    recurring = {"interval": "month", "usage_type": "metered"}

    price = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 5,
            "recurring": {**recurring, "meter": meter.id},  # type: ignore[typeddict-item]
        }
    )

    assert price.recurring is not None
    assert (price.recurring.usage_type, price.recurring.meter, price.unit_amount) == (
        "metered",
        meter.id,
        5,
    )
    for bad in ({}, {"meter": "mtr_missing"}):
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.prices.create(
                params={
                    "product": product.id,
                    "currency": "usd",
                    "unit_amount": 5,
                    "recurring": {**recurring, **bad},  # type: ignore[typeddict-item]
                }
            )
