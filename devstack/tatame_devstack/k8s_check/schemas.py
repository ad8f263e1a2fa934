"""Strict schema validation of every rendered object, offline (kubernetes-validate)."""

import functools
import re
from typing import Any

import jsonschema
from jsonschema.protocols import Validator
from kubernetes_validate import utils as schema_validation
from referencing import Registry, Resource

from tatame_devstack.k8s_check.monitoring import MONITORING_GROUP
from tatame_devstack.k8s_check.rendering import Rendered, Report

# The schemas every object must satisfy: a current release (kubernetes-validate ships them).
KUBERNETES_VERSION = "1.37.0"


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
    """Every object is valid against the strict schemas of KUBERNETES_VERSION; no unknown kinds
    (the Prometheus Operator's kinds excepted: no schema for them offline, `check_monitors`)."""
    operator_kinds = set()
    for obj in rendered.objects:
        kind, api_version = obj.get("kind", ""), obj.get("apiVersion", "")
        ref = f"{kind}/{obj.get('metadata', {}).get('name')}"
        if api_version.startswith(MONITORING_GROUP):
            operator_kinds.add(kind)
            continue
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
    if operator_kinds:
        report.notes.append(
            f"schema: {', '.join(sorted(operator_kinds))} ({MONITORING_GROUP[:-1]}) not validated "
            "against a schema (none offline); rendered and cross-checked (check_monitors)"
        )
