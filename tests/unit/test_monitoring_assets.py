"""The alerts and the dashboard (deploy/k8s/components/monitoring) name only metrics that the
deployables export, and every alert the operators' guide describes is there."""

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import gateway.app
import services.billing.grpc_api
import services.webhooks.receiver
import services.webhooks.relay

# Imported for the metrics their modules register.
DEPLOYABLES = (
    gateway.app,
    services.billing.grpc_api,
    services.webhooks.receiver,
    services.webhooks.relay,
)
COMPONENT = Path(__file__).parents[2] / "deploy" / "k8s" / "components" / "monitoring"
OUR_PREFIXES = ("http_server_", "grpc_server_", "stripe_", "webhooks_", "billing_")
SERIES_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")
ALERTS = {
    "TatameWebhookDeadLetters",
    "TatameWebhookBacklogStale",
    "TatameHttp5xxRatio",
    "TatameBillingUnavailable",
    "TatameStripeRateLimited",
    "TatameWebhookSignatureFailuresSpiking",
    "TatameWebhookUnexpectedApiVersion",
    "TatameBillingMirrorDrift",
    "TatameBillingReconcileStale",
    "TatameUsageRecordsRefused",
    "TatameUsageBacklogStuck",
}


def exported() -> set[str]:
    """Every series name the deployables' modules register (`DEPLOYABLES`, imported)."""
    return {family.name + suffix for family in REGISTRY.collect() for suffix in SERIES_SUFFIXES}


def named_metrics(expression: str) -> set[str]:
    return {
        token
        for token in re.findall(r"[a-z_][a-z0-9_]*", expression)
        if token.startswith(OUR_PREFIXES)
    }


def rules() -> list[dict]:
    document = yaml.safe_load((COMPONENT / "prometheusrule.yaml").read_text())
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def test_every_alert_is_defined_on_metrics_that_exist() -> None:
    assert {rule["alert"] for rule in rules()} == ALERTS
    known = exported()
    for rule in rules():
        used = named_metrics(rule["expr"])
        assert used, f"{rule['alert']} names none of our metrics"
        assert used <= known, f"{rule['alert']}: {sorted(used - known)} are not exported"


def test_every_dashboard_panel_queries_metrics_that_exist() -> None:
    dashboard = json.loads((COMPONENT / "dashboards" / "tatame-billing.json").read_text())
    known = exported()
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        expressions = [target["expr"] for target in panel["targets"]]
        used = set().union(*(named_metrics(e) for e in expressions))
        assert used, f"panel {panel['title']!r} names none of our metrics"
        assert used <= known, f"panel {panel['title']!r}: {sorted(used - known)} not exported"
