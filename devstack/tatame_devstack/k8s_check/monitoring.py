"""The optional monitoring component (deploy/k8s/components/monitoring): what Prometheus scrapes.

The Prometheus Operator's kinds (monitoring.coreos.com) have no schema offline; `check_schemas`
skips them with a note, and these checks stand in for what matters: every ServiceMonitor selects
a Service with the port it scrapes, every PodMonitor selects a Deployment whose pods declare it,
every Deployment is scraped by one of them, and every pod scraped is let in by a NetworkPolicy
on that port.
"""

from tatame_devstack.k8s_check.rendering import (
    Rendered,
    Report,
    container_port,
    selected,
    selector_matches,
)

MONITORING_GROUP = "monitoring.coreos.com/"


def check_monitors(rendered: Rendered, report: Report) -> None:
    """ServiceMonitors and PodMonitors reach real ports of every Deployment (when present)."""
    service_monitors = rendered.of_kind("ServiceMonitor")
    pod_monitors = rendered.of_kind("PodMonitor")
    if not service_monitors and not pod_monitors:
        return
    scraped: set[str] = set()
    for monitor in service_monitors:
        ref = f"ServiceMonitor/{monitor['metadata']['name']}"
        selector = monitor["spec"].get("selector")
        services = [
            s
            for s in rendered.of_kind("Service")
            if selector_matches(selector, s["metadata"].get("labels", {}))
        ]
        if len(services) != 1:
            report.errors.append(f"{ref}: selects {len(services)} Services; it must select one")
            continue
        ports = {p.get("name") for p in services[0]["spec"].get("ports", [])}
        for endpoint in monitor["spec"].get("endpoints", []):
            if endpoint.get("port") not in ports:
                report.errors.append(f"{ref}: port {endpoint.get('port')!r} is not a port of it")
        owners = selected(
            rendered, {"matchLabels": services[0]["spec"].get("selector", {})}, "Deployment"
        )
        ports_scraped = [e.get("port") for e in monitor["spec"].get("endpoints", [])]
        _check_scrape_allowed(rendered, report, ref, owners, ports_scraped)
        scraped.update(o.name for o in owners)
    for monitor in pod_monitors:
        ref = f"PodMonitor/{monitor['metadata']['name']}"
        owners = selected(rendered, monitor["spec"].get("selector"), "Deployment")
        if not owners:
            report.errors.append(f"{ref}: selects no Deployment's pods")
            continue
        ports_scraped = [e.get("port") for e in monitor["spec"].get("podMetricsEndpoints", [])]
        for owner in owners:
            for port in ports_scraped:
                if not any(container_port(c, port) for c in owner.spec.get("containers", [])):
                    report.errors.append(f"{ref}: {owner.ref} declares no port {port!r}")
        _check_scrape_allowed(rendered, report, ref, owners, ports_scraped)
        scraped.update(o.name for o in owners)
    for deployment in rendered.deployments():
        if deployment.name not in scraped:
            report.errors.append(f"{deployment.ref}: no ServiceMonitor or PodMonitor scrapes it")


def _check_scrape_allowed(
    rendered: Rendered, report: Report, ref: str, owners: list, ports: list[object]
) -> None:
    """Some NetworkPolicy admits ingress to each owner's pods on each scraped port."""
    for owner in owners:
        for port in ports:
            if not any(
                selector_matches(policy["spec"].get("podSelector"), owner.labels)
                and any(
                    any(p.get("port") == port for p in rule.get("ports", []))
                    for rule in policy["spec"].get("ingress", [])
                )
                for policy in rendered.of_kind("NetworkPolicy")
            ):
                report.errors.append(
                    f"{ref}: no NetworkPolicy lets a scraper reach {owner.ref} on port {port!r}"
                )
