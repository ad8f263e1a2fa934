"""deploy/k8s: every overlay renders, validates strictly and passes the cross-checks; each kind of
breakage, made in a copy of the tree, is caught. (The cluster-less smoke run is `make k8s-check`.)"""

import shutil
from pathlib import Path

import pytest
from tatame_devstack import k8s_check
from tatame_devstack.k8s_smoke import LoopbackNetwork

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("dev", "prod", "prod-monitoring")


@pytest.fixture(scope="module")
def reports() -> dict[str, k8s_check.Report]:
    return {report.overlay: report for report in k8s_check.check_tree(ROOT)}


def test_every_overlay_is_checked(reports: dict[str, k8s_check.Report]) -> None:
    assert sorted(reports) == sorted(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_validates_and_passes_every_cross_check(
    reports: dict[str, k8s_check.Report], overlay: str
) -> None:
    report = reports[overlay]
    assert report.objects > 30
    assert report.errors == []


def broken_copy(tmp_path: Path, path: str, old: str, new: str) -> Path:
    """A copy of deploy/k8s with the first `old` in `path` replaced by `new`."""
    root = tmp_path / "k8s"
    shutil.copytree(ROOT, root)
    file = root / path
    text = file.read_text()
    assert old in text, f"{old!r} is not in {path}: update this test"
    file.write_text(text.replace(old, new, 1))
    return root


def errors(root: Path, overlay: str) -> list[str]:
    readme = (root / "README.md").read_text()
    return k8s_check.check_overlay(root / "overlays" / overlay, readme=readme).errors


def test_service_whose_target_port_names_no_container_port_is_caught(tmp_path: Path) -> None:
    root = broken_copy(tmp_path, "base/gateway/service.yaml", "targetPort: http", "targetPort: web")
    expected = "Service/gateway: targetPort 'web' names no container port of Deployment/gateway"
    assert errors(root, "dev") == [expected]
    assert errors(root, "prod") == [expected]


BREAKAGES = {
    "unknown_field_fails_schema_validation": (
        "base/billing/deployment.yaml",
        "revisionHistoryLimit: 5",
        "revisionHistoryLimit: 5\n  paused_by_mistake: true",
        "dev",
        "Deployment/billing: schema: spec: Additional properties are not allowed",
    ),
    "removed_api_version_fails_schema_validation": (
        "base/gateway/hpa.yaml",
        "autoscaling/v2",
        "autoscaling/v2beta2",
        "dev",
        "HorizontalPodAutoscaler/gateway: schema: no schema for kind HorizontalPodAutoscaler in autoscaling/v2beta2",
    ),
    "probe_on_an_undeclared_port_is_caught": (
        "base/gateway/deployment.yaml",
        "path: /readyz\n              port: http",
        "path: /readyz\n              port: https",
        "dev",
        "Deployment/gateway/gateway: readinessProbe port 'https' names no container port",
    ),
    "grpc_probe_on_an_undeclared_port_is_caught": (
        "base/billing/deployment.yaml",
        "grpc:\n              port: 50051",
        "grpc:\n              port: 50052",
        "dev",
        "Deployment/billing/billing: readinessProbe gRPC port 50052 is no containerPort",
    ),
    "variable_no_setting_reads_is_caught": (
        "base/gateway/kustomization.yaml",
        "GATEWAY_WORKERS=1",
        "GATEWAY_WORKER=1",
        "dev",
        "Deployment/gateway/gateway: GatewaySettings reads no GATEWAY_WORKER",
    ),
    "required_setting_left_unset_is_caught": (
        "base/billing/deployment.yaml",
        "- name: STRIPE_SECRET_KEY",
        "- name: STRIPE_API_KEY",
        "dev",
        "Deployment/billing/billing: required by BillingSettings but not set: STRIPE_SECRET_KEY",
    ),
    "setting_that_production_refuses_is_caught": (
        "overlays/prod/kustomization.yaml",
        "CLERK_ISSUER=https://",
        "CLERK_ISSUER=http://",
        "prod",
        "GatewaySettings refuses this environment: settings: Value error, CLERK_ISSUER must be an https URL",
    ),
    "latest_tag_is_caught": (
        "overlays/dev/kustomization.yaml",
        'newTag: "0.1.0"',
        "newTag: latest",
        "dev",
        "image 'registry.tatame.example/tatame-billing:latest' uses the latest tag",
    ),
    "container_without_a_memory_limit_is_caught": (
        "base/billing/migrate-job.yaml",
        'cpu: "1"\n              memory: 256Mi',
        'cpu: "1"',
        "dev",
        "Job/billing-migrate/migrate: no memory in resources.limits",
    ),
    "network_policy_that_selects_no_pods_is_caught": (
        "base/billing/networkpolicy.yaml",
        "app.kubernetes.io/name: webhooks-relay",
        "app.kubernetes.io/name: webhook-relay",
        "dev",
        "NetworkPolicy/billing: ingress peer {'matchLabels': {'app.kubernetes.io/name': 'webhook-relay'}} selects no pods",
    ),
    "writable_root_filesystem_is_caught": (
        "base/gateway/deployment.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
        "dev",
        "Deployment/gateway/gateway: expected readOnlyRootFilesystem is true",
    ),
    "grace_shorter_than_the_drain_is_caught": (
        "base/billing/kustomization.yaml",
        "BILLING_SHUTDOWN_GRACE_SECONDS=20",
        "BILLING_SHUTDOWN_GRACE_SECONDS=40",
        "dev",
        "Deployment/billing: terminationGracePeriodSeconds 30 < preStop 5 s + drain 40 s",
    ),
    "several_replicas_without_a_disruption_budget_are_caught": (
        "overlays/prod/kustomization.yaml",
        "  - ../../base/billing/pdb\n",
        "",
        "prod",
        "Deployment/billing: runs 2 replicas and needs one PodDisruptionBudget",
    ),
    "migration_job_reading_a_config_map_is_caught": (
        "base/billing/migrate-job.yaml",
        "          env:\n",
        "          envFrom:\n            - configMapRef:\n                name: tatame-env\n          env:\n",
        "dev",
        "Job/billing-migrate/migrate: reads a ConfigMap, which the prepare stage lacks",
    ),
    "pod_monitor_of_an_undeclared_port_is_caught": (
        "components/monitoring/podmonitor.yaml",
        "- port: metrics",
        "- port: metric",
        "prod-monitoring",
        "PodMonitor/webhooks-relay: Deployment/webhooks-relay declares no port 'metric'",
    ),
    "service_monitor_of_a_port_the_service_lacks_is_caught": (
        "components/monitoring/servicemonitors.yaml",
        "- port: metrics",
        "- port: metric",
        "prod-monitoring",
        "ServiceMonitor/gateway: port 'metric' is not a port of it",
    ),
    "scrape_port_no_policy_admits_is_caught": (
        "base/common/networkpolicies.yaml",
        "- {protocol: TCP, port: metrics}",
        "- {protocol: TCP, port: 9999}",
        "prod-monitoring",
        "ServiceMonitor/billing: no NetworkPolicy lets a scraper reach Deployment/billing on port 'metrics'",
    ),
    "deployment_nobody_scrapes_is_caught": (
        "components/monitoring/podmonitor.yaml",
        "app.kubernetes.io/name: webhooks-relay",
        "app.kubernetes.io/name: gateway",
        "prod-monitoring",
        "Deployment/webhooks-relay: no ServiceMonitor or PodMonitor scrapes it",
    ),
}


@pytest.mark.parametrize(
    ("path", "old", "new", "overlay", "expected"), BREAKAGES.values(), ids=BREAKAGES.keys()
)
def test_breakage_is_caught(
    tmp_path: Path, path: str, old: str, new: str, overlay: str, expected: str
) -> None:
    found = errors(broken_copy(tmp_path, path, old, new), overlay)
    assert any(expected in error for error in found), found


def test_loopback_network_maps_service_names_and_bind_addresses_to_loopback() -> None:
    rendered = k8s_check.Rendered("dev", k8s_check.render(ROOT / "overlays" / "dev"))
    network = LoopbackNetwork.allocate(rendered)
    deployments = {owner.name: owner for owner in rendered.deployments()}
    gateway, billing = deployments["gateway"], deployments["billing"]
    gateway_container, billing_container = (
        gateway.spec["containers"][0],
        billing.spec["containers"][0],
    )
    billing_port = network.port(billing, billing_container, "grpc")
    gateway_port = network.port(gateway, gateway_container, "http")

    env = network.rewrite(
        gateway,
        gateway_container,
        {
            "BILLING_TARGET": "billing:50051",
            "OTHER": "dns:///billing.tatame-dev.svc.cluster.local:50051",
            "GATEWAY_HOST": "0.0.0.0",  # noqa: S104 (a value to rewrite; nothing binds)
            "GATEWAY_PORT": "8080",
            "GATEWAY_WORKERS": "1",
        },
    )

    assert env == {
        "BILLING_TARGET": f"127.0.0.1:{billing_port}",
        "OTHER": f"dns:///127.0.0.1:{billing_port}",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_WORKERS": "1",
    }
    assert network.rewrite(
        billing, billing_container, {"BILLING_GRPC_ADDRESS": "0.0.0.0:50051"}
    ) == {"BILLING_GRPC_ADDRESS": f"127.0.0.1:{billing_port}"}
