"""Rollout and scaling, disruption budgets, and the prepare stage (migrations first, alone)."""

from tatame_devstack.k8s_check.rendering import (
    PodOwner,
    Rendered,
    Report,
    selected,
    selector_matches,
)

# The label of the objects applied before the rollout (namespace, accounts, policies, migrations).
STAGE_LABEL = "tatame.dev/stage"
PREPARE_STAGE = "prepare"
COMPONENT_LABEL = "app.kubernetes.io/component"
MIGRATION = "migration"


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
