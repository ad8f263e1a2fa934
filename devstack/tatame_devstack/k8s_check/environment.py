"""Container environments against the settings classes their commands read; drain times.

Each container command (`python -m <module> [subcommand]`) is matched to the settings class it
reads in ENTRYPOINTS; a new deployable adds its entries here. A settings module that does not
exist yet is reported as skipped (loudly), not failed.
"""

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import AliasChoices, AliasPath, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource

from tatame_devstack.k8s_check.rendering import Obj, PodOwner, Rendered, Report
from tatame_devstack.k8s_check.secret_values import SecretTestValues, placeholder_secrets

# Seconds a pod's terminationGracePeriodSeconds must leave beyond its preStop pause and its drain.
GRACE_MARGIN_SECONDS = 5


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
    Entrypoint("services.billing", "reconcile", "services.billing.settings:CatalogSyncSettings"),
    Entrypoint("services.billing", "migrate", DATABASE_SETTINGS),
    Entrypoint(
        "services.billing",
        "notifier",
        "services.billing.notifications.settings:NotifierSettings",
    ),
    Entrypoint("services.billing", "ops-page", "services.billing.settings:OpsPageSettings"),
    Entrypoint("services.webhooks", "receiver", "services.webhooks.settings:ReceiverSettings"),
    Entrypoint("services.webhooks", "relay", "services.webhooks.settings:RelaySettings"),
    Entrypoint("services.webhooks", "backstop", "services.webhooks.settings:BackstopSettings"),
    Entrypoint("services.webhooks", "retention", "services.webhooks.settings:RetentionSettings"),
    Entrypoint("services.webhooks", "migrate", DATABASE_SETTINGS),
)


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
        "add an Entrypoint to ENTRYPOINTS in tatame_devstack/k8s_check/environment.py"
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
        raise ValueError(
            f"{module_name} has no {class_name}: update ENTRYPOINTS in k8s_check/environment.py"
        )
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
