"""The Stripe conformance check, against stripe-python's real types (no mocks).

The response fixtures are complete objects as Stripe sends them at `2026-10-28.endive`: every
field the version always returns, null where there is no value.
"""

import importlib
from typing import Any

import pytest
import stripe
from aiohttp import web
from tatame_devstack.stripe_conformance import (
    Violation,
    check_request,
    check_response,
    conformance_middleware,
    decode_form,
    stripe_error_body,
)
from tatame_devstack.stripe_conformance._documented import (
    ALL_FIELDS,
    INCLUDABLE,
    NOT_ALWAYS_RETURNED,
)
from tatame_devstack.stripe_conformance._schema import shape_for_object_name, shape_of
from tatame_devstack.stripe_conformance.responses import _optional_fields

CREATED = 1_795_000_000


def a_customer() -> dict[str, Any]:
    return {
        "id": "cus_Tatame1",
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": CREATED,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": "ana@example.com",
        "invoice_prefix": "7C2A51B0",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {"principal": "user_123"},
        "name": "Ana",
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def a_price() -> dict[str, Any]:
    return {
        "id": "price_Monthly",
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": CREATED,
        "currency": "eur",
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": "gym_monthly",
        "metadata": {},
        "nickname": None,
        "product": "prod_Gym",
        "recurring": {
            "interval": "month",
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": 2900,
        "unit_amount_decimal": "2900",
    }


def a_plan() -> dict[str, Any]:
    return {
        "id": "price_Monthly",
        "object": "plan",
        "active": True,
        "amount": 2900,
        "amount_decimal": "2900",
        "billing_scheme": "per_unit",
        "created": CREATED,
        "currency": "eur",
        "interval": "month",
        "interval_count": 1,
        "livemode": False,
        "metadata": {},
        "meter": None,
        "nickname": None,
        "product": "prod_Gym",
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def a_subscription() -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "si_One",
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": CREATED,
        "current_period_end": CREATED + 30 * 86400,
        "current_period_start": CREATED,
        "current_trial": None,
        "discounts": [],
        "metadata": {},
        "plan": a_plan(),
        "price": a_price(),
        "quantity": 1,
        "subscription": "sub_One",
        "tax_rates": [],
    }
    return {
        "id": "sub_One",
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": CREATED,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": {"proration_discounts": "included"}, "type": "flexible"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "feedback_option": None,
            "reason": None,
        },
        "collection_method": "charge_automatically",
        "created": CREATED,
        "currency": "eur",
        "customer": "cus_Tatame1",
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "url": "/v1/subscription_items?subscription=sub_One",
        },
        "latest_invoice": "in_First",
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "on_subscription",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": CREATED,
        "status": "active",
        "status_details": None,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {
            "end_behavior": {
                "billing_cycle_anchor": None,
                "missing_payment_method": "create_invoice",
            }
        },
        "trial_start": None,
    }


def kinds_at(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(violation.path, violation.kind) for violation in violations}


# --- Responses ----------------------------------------------------------------------------------


def test_a_complete_customer_conforms() -> None:
    assert check_response("GET", "/v1/customers/cus_Tatame1", 200, a_customer()) == []


def test_a_complete_subscription_conforms() -> None:
    assert check_response("POST", "/v1/subscriptions", 200, a_subscription()) == []


def test_a_legacy_field_is_an_unknown_field() -> None:
    subscription = a_subscription()
    subscription["plan"] = a_plan()
    subscription["items"]["data"][0]["plan"]["name"] = "Monthly"  # a 2017 plan field

    violations = check_response("GET", "/v1/subscriptions/sub_One", 200, subscription)

    assert kinds_at(violations) == {
        ("subscription.plan", "unknown_field"),
        ("subscription.items.data[0].plan.name", "unknown_field"),
    }


def test_a_field_stripe_always_returns_is_missing_when_left_out() -> None:
    subscription = a_subscription()
    del subscription["billing_mode"]
    del subscription["items"]["data"][0]["price"]["unit_amount"]

    violations = check_response("GET", "/v1/subscriptions/sub_One", 200, subscription)

    assert kinds_at(violations) == {
        ("subscription.billing_mode", "missing_field"),
        ("subscription.items.data[0].price.unit_amount", "missing_field"),
    }


def test_a_value_of_the_wrong_type_is_flagged() -> None:
    subscription = a_subscription()
    subscription["created"] = "2026-11-01"
    subscription["cancel_at_period_end"] = None  # not nullable
    subscription["items"]["data"][0]["quantity"] = "1"

    violations = check_response("GET", "/v1/subscriptions/sub_One", 200, subscription)

    assert kinds_at(violations) == {
        ("subscription.created", "wrong_type"),
        ("subscription.cancel_at_period_end", "wrong_type"),
        ("subscription.items.data[0].quantity", "wrong_type"),
    }


def test_a_value_outside_an_enum_is_a_bad_enum() -> None:
    subscription = a_subscription()
    subscription["status"] = "trial"

    (violation,) = check_response("GET", "/v1/subscriptions/sub_One", 200, subscription)

    assert (violation.path, violation.kind) == ("subscription.status", "bad_enum")
    assert "trialing" in violation.message


def test_an_includable_field_is_sent_only_when_expanded() -> None:
    customer = a_customer()
    customer["tax_ids"] = {"object": "list", "data": [], "has_more": False, "url": "/v1/x"}

    assert kinds_at(check_response("GET", "/v1/customers/cus_Tatame1", 200, customer)) == {
        ("customer.tax_ids", "includable_not_expanded")
    }
    assert check_response("GET", "/v1/customers/cus_Tatame1", 200, customer, {"tax_ids"}) == []
    assert kinds_at(check_response("GET", "/v1/customers/x", 200, a_customer(), {"tax_ids"})) == {
        ("customer.tax_ids", "missing_field")
    }


def test_an_expandable_field_is_an_id_unless_expanded() -> None:
    subscription = a_subscription()
    subscription["customer"] = a_customer()

    assert kinds_at(check_response("GET", "/v1/subscriptions/sub_One", 200, subscription)) == {
        ("subscription.customer", "unexpected_expansion")
    }
    assert check_response("GET", "/v1/subscriptions/s", 200, subscription, {"customer"}) == []
    assert kinds_at(
        check_response("GET", "/v1/subscriptions/s", 200, a_subscription(), {"customer"})
    ) == {("subscription.customer", "not_expanded")}


def test_an_expand_path_expands_each_object_on_the_way() -> None:
    subscription = a_subscription()
    subscription["customer"] = a_customer()
    subscription["customer"]["tax_ids"] = {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": "/",
    }

    assert (
        check_response("GET", "/v1/subscriptions/s", 200, subscription, {"customer.tax_ids"}) == []
    )


def test_an_unknown_object_name_is_flagged() -> None:
    violations = check_response("GET", "/v1/x", 200, {"id": "x_1", "object": "gym_membership"})

    assert kinds_at(violations) == {("gym_membership", "unknown_object")}


def test_a_list_holds_objects_checked_by_their_own_names() -> None:
    subscription = a_subscription()
    subscription["quantity"] = 1
    body = {"object": "list", "data": [a_customer(), subscription], "has_more": False, "url": "/"}

    assert kinds_at(check_response("GET", "/v1/x", 200, body)) == {
        ("list.data[1].quantity", "unknown_field")
    }


def test_an_event_object_is_checked_by_its_own_object_name() -> None:
    subscription = a_subscription()
    subscription["current_period_end"] = CREATED
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": CREATED,
        "data": {"object": subscription, "previous_attributes": {"status": "incomplete"}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.subscription.updated",
    }

    assert kinds_at(check_response("GET", "/v1/events/evt_1", 200, event)) == {
        ("event.data.object.current_period_end", "unknown_field")
    }


def test_an_event_rendered_at_another_api_version_is_flagged() -> None:
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2017-08-15",
        "created": CREATED,
        "data": {"object": a_customer()},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.created",
    }

    assert kinds_at(check_response("POST", "/webhooks/stripe", 200, event)) == {
        ("event.api_version", "wrong_api_version")
    }


def a_card_payment_method() -> dict[str, Any]:
    return {
        "id": "pm_Visa",
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": None,
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": "visa",
            "checks": None,
            "country": "US",
            "display_brand": "visa",
            "exp_month": 12,
            "exp_year": 2030,
            "fingerprint": "Xt5EWLLDS7FJjR1c",
            "funding": "credit",
            "generated_from": None,
            "last4": "4242",
            "networks": {"available": ["visa"], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": CREATED,
        "customer": "cus_Tatame1",
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def test_a_hash_keyed_by_type_carries_only_the_current_types_sub_hash() -> None:
    payment_method = a_card_payment_method()
    assert check_response("GET", "/v1/payment_methods/pm_Visa", 200, payment_method) == []

    del payment_method["card"]["last4"]
    assert kinds_at(check_response("GET", "/v1/payment_methods/pm_Visa", 200, payment_method)) == {
        ("payment_method.card.last4", "missing_field")
    }


def test_an_error_shaped_hash_carries_only_the_fields_that_apply() -> None:
    from stripe._payment_intent import PaymentIntent

    error_fields = shape_of(PaymentIntent.LastPaymentError).fields.keys()

    assert _optional_fields(PaymentIntent.LastPaymentError) == error_fields - {"type"}
    assert "type" in error_fields


def test_a_deleted_object_carries_only_its_id() -> None:
    deleted = {"id": "cus_Tatame1", "object": "customer", "deleted": True}

    assert check_response("DELETE", "/v1/customers/cus_Tatame1", 200, deleted) == []


def test_an_error_body_is_checked_against_the_sdk_error_shape() -> None:
    error = {"error": {"type": "invalid_request_error", "message": "No such price", "param": "p"}}
    assert check_response("GET", "/v1/prices/p", 404, error) == []

    bad = {"error": {"message": "No such price", "status": 404}}
    assert kinds_at(check_response("GET", "/v1/prices/p", 404, bad)) == {
        ("error.type", "missing_field"),
        ("error.status", "unknown_field"),
    }


# --- Requests -----------------------------------------------------------------------------------

VALID_SUBSCRIPTION_FORM = [
    ("customer", "cus_Tatame1"),
    ("items[0][price]", "price_Monthly"),
    ("items[0][quantity]", "1"),
    ("payment_behavior", "default_incomplete"),
    ("payment_settings[save_default_payment_method]", "on_subscription"),
    ("trial_period_days", "14"),
    ("off_session", "false"),
    ("default_tax_rates", ""),  # Stripe's "unset"
    ("metadata[principal]", "user_123"),
    ("expand[0]", "latest_invoice.confirmation_secret"),
    ("expand[1]", "pending_setup_intent"),
]


def with_param(key: str, value: str) -> list[tuple[str, str]]:
    return [*VALID_SUBSCRIPTION_FORM, (key, value)]


def test_a_valid_subscription_create_conforms() -> None:
    assert check_request("POST", "/v1/subscriptions", [], VALID_SUBSCRIPTION_FORM) == []


def test_an_unknown_parameter_gets_stripes_400() -> None:
    (violation,) = check_request("POST", "/v1/subscriptions", [], with_param("plan", "gold"))

    assert violation.kind == "unknown_parameter"
    assert stripe_error_body(violation) == {
        "error": {
            "type": "invalid_request_error",
            "param": "plan",
            "message": "Received unknown parameter: plan",
        }
    }


def test_an_unknown_nested_parameter_is_named_as_stripe_names_it() -> None:
    form = with_param("items[0][current_period_end]", "1795000000")

    (violation,) = check_request("POST", "/v1/subscriptions", [], form)

    assert (violation.path, violation.kind) == ("items[0][current_period_end]", "unknown_parameter")
    assert violation.message == "Received unknown parameter: items[0][current_period_end]"


def test_a_missing_required_parameter_gets_stripes_400() -> None:
    (violation,) = check_request("POST", "/v1/payment_intents", [], [("amount", "2900")])

    assert stripe_error_body(violation)["error"] == {
        "type": "invalid_request_error",
        "param": "currency",
        "message": "Missing required param: currency.",
    }


def test_a_value_outside_an_enum_gets_stripes_400() -> None:
    (violation,) = check_request(
        "POST", "/v1/subscriptions", [], with_param("proration_behavior", "sometimes")
    )

    assert violation.path == "proration_behavior"
    assert violation.message == (
        "Invalid proration_behavior: must be one of always_invoice, create_prorations, or none"
    )


def test_a_non_integer_where_stripe_wants_an_integer_gets_stripes_400() -> None:
    (violation,) = check_request("POST", "/v1/subscriptions", [], with_param("trial_end", "soon"))

    assert (violation.path, violation.message) == ("trial_end", "Invalid integer: soon")


def test_a_non_boolean_where_stripe_wants_a_boolean_gets_stripes_400() -> None:
    (violation,) = check_request("GET", "/v1/prices", [("active", "1")], [])

    assert (violation.path, violation.message) == ("active", "Invalid boolean: 1")


def test_an_unknown_v1_route_is_flagged_and_emulator_only_routes_are_not() -> None:
    (violation,) = check_request("DELETE", "/v1/prices/price_Monthly", [], [])

    assert violation == Violation(
        "DELETE /v1/prices/price_Monthly", "unknown_route", violation.message
    )
    assert check_request("POST", "/_testing/subscriptions/sub_One/end_period", [], []) == []


def test_ids_in_paths_match_route_templates_and_literal_segments_win() -> None:
    assert check_request("GET", "/v1/customers/search", [("query", "email:'a'")], []) == []
    search_without_query = check_request("GET", "/v1/customers/search", [], [])
    assert [violation.path for violation in search_without_query] == ["query"]
    assert check_request("GET", "/v1/customers/cus_Tatame1", [("expand[]", "tax_ids")], []) == []


def test_stripes_form_encoding_decodes_into_nested_parameters() -> None:
    pairs = [("items[0][price]", "p"), ("expand[]", "a"), ("expand[]", "b"), ("metadata[0]", "x")]

    assert decode_form(pairs) == {
        "items": {"0": {"price": "p"}},
        "expand": ["a", "b"],
        "metadata": {"0": "x"},
    }


# --- The written-down exceptions ----------------------------------------------------------------


def test_every_documented_exception_names_a_field_the_sdk_declares() -> None:
    for object_name, fields in INCLUDABLE.items():
        shape = shape_for_object_name(object_name)
        assert shape is not None, object_name
        assert fields <= shape.fields.keys(), object_name
    for key, documented in NOT_ALWAYS_RETURNED.items():
        parts = key.split(".")
        module_end = next(i for i, part in enumerate(parts) if part.startswith("_")) + 1
        cls: Any = importlib.import_module(".".join(parts[:module_end]))
        for name in parts[module_end:]:
            cls = getattr(cls, name)
        if isinstance(documented, str):
            assert documented == ALL_FIELDS, key
        else:
            assert documented <= shape_of(cls).fields.keys(), key


# --- The middleware, with a real server and the real SDK ----------------------------------------


async def test_the_middleware_refuses_bad_requests_and_records_bad_responses() -> None:
    recorded: list[Violation] = []

    async def create_customer(request: web.Request) -> web.Response:
        customer = a_customer()
        customer["email"] = (await request.post())["email"]  # the body is still there to read
        customer["account_balance"] = 0  # a field Stripe dropped in 2019
        return web.json_response(customer)

    async def emulator_only(_request: web.Request) -> web.Response:
        return web.json_response({"emulator": "not Stripe's shape"})

    app = web.Application(middlewares=[conformance_middleware(recorded.append)])
    app.router.add_post("/v1/customers", create_customer)
    app.router.add_post("/_testing/clock/advance", emulator_only)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    client = stripe.StripeClient(
        "sk_test_conformance", base_addresses={"api": url}, http_client=stripe.HTTPXClient()
    )
    try:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.customers.create_async({"email": "ana@example.com", "vat": "x"})  # type: ignore[arg-type]  # "vat" is unknown on purpose
        customer = await client.v1.customers.create_async({"email": "ana+2@example.com"})
        await client.raw_request_async("post", "/_testing/clock/advance", days="30")
    finally:
        await runner.cleanup()

    assert refused.value.http_status == 400
    assert refused.value.param == "vat"
    assert refused.value.user_message == "Received unknown parameter: vat"
    assert customer.email == "ana+2@example.com"
    assert recorded == [
        Violation("vat", "unknown_parameter", "Received unknown parameter: vat"),
        Violation("customer.account_balance", "unknown_field", recorded[1].message),
    ]
