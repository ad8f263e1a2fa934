"""Pure rules of observability: when the OTEL_* variables turn traces on, and how a Stripe URL
becomes a metric label."""

import pytest

from services.common.stripe_sdk import stripe_endpoint
from services.common.telemetry import tracing_requested


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "billing"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
    ],
)
def test_traces_are_on_only_when_the_standard_variables_ask(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing_requested(environ) is on


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://api.stripe.com/v1/customers", "/v1/customers"),
        ("https://api.stripe.com/v1/customers/cus_NffrFeUfNV2Hib?expand[]=x", "/v1/customers/{id}"),
        (
            "http://127.0.0.1:8420/v1/customers/cus_Nffr1/payment_methods/pm_1Q0PsI",
            "/v1/customers/{id}/payment_methods/{id}",
        ),
        ("https://api.stripe.com/v1/invoices/create_preview", "/v1/invoices/create_preview"),
        (
            "https://api.stripe.com/v1/subscription_schedules/sub_sched_1Mr3Yd/release",
            "/v1/subscription_schedules/{id}/release",
        ),
        ("https://api.stripe.com/v1/billing_portal/sessions", "/v1/billing_portal/sessions"),
    ],
)
def test_stripe_urls_are_labelled_by_their_template_never_an_id(url: str, endpoint: str) -> None:
    assert stripe_endpoint(url) == endpoint
