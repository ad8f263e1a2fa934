"""Pod templates: images, resources, restricted pod security, probes."""

from tatame_devstack.k8s_check.rendering import Rendered, Report, container_port

# Inside the containers: the one writable directory of a read-only root filesystem.
CONTAINER_TMP = "/tmp"  # noqa: S108


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
                    if not isinstance(port, str) or container_port(c, port) is None:
                        report.errors.append(
                            f"{ref}: {probe_kind} port {port!r} names no container port"
                        )
                elif "grpc" in probe:
                    port = probe["grpc"]["port"]
                    if container_port(c, port) is None:
                        report.errors.append(
                            f"{ref}: {probe_kind} gRPC port {port} is no containerPort"
                        )
                else:
                    report.errors.append(
                        f"{ref}: {probe_kind} must be httpGet or grpc (what is served)"
                    )
