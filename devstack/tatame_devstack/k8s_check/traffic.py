"""Who may talk to whom: Services, network policies, Ingresses."""

from tatame_devstack.k8s_check.rendering import (
    PodOwner,
    Rendered,
    Report,
    container_port,
    selected,
    selector_matches,
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
            elif not any(container_port(c, target) for c in containers):
                report.errors.append(
                    f"{ref}: targetPort {target!r} names no container port of {deployments[0].ref}"
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
                        container_port(c, name) for o in port_owners for c in o.containers()
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
