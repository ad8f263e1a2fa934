"""Prometheus metrics: every deployable serves its own on a port of its own (named `metrics` in
its Deployment), apart from the traffic it serves.

How a deployable uses it:

- its settings class also inherits `MetricsSettings` (`METRICS_HOST`, default `127.0.0.1`, pods
  set `0.0.0.0`; `METRICS_PORT`, default 9102, `0` turns the endpoint off);
- a process that does its own work (billing, the relay, a worker) calls
  `start_metrics_server(settings)` once at start; it serves `GET /metrics` from a thread;
- an HTTP app served by granian (`serve_asgi(..., metrics=settings)`) gets the same endpoint from
  granian's main process, which sums what its worker processes count (prometheus_client's
  multiprocess mode; the workers are spawned with a directory of their own for it).

Metrics themselves are module-level `prometheus_client` objects in the module that counts them;
the HTTP ones every edge shares (`HTTP_REQUESTS`, `HTTP_DURATION`) are here.
"""

import logging

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import Field

from services.common.settings import BaseServiceSettings

log = logging.getLogger(__name__)

# The variable prometheus_client reads, at import, to count in files shared across processes.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class MetricsSettings(BaseServiceSettings):
    """Where a process serves its Prometheus metrics."""

    metrics_host: str = "127.0.0.1"
    # 0 turns the endpoint off.
    metrics_port: int = Field(default=9102, ge=0, le=65535)


def start_metrics_server(settings: MetricsSettings, *, multiprocess_dir: str | None = None) -> None:
    """Serve `GET /metrics` on `settings`' host and port from a daemon thread (nothing when the
    port is 0). With `multiprocess_dir`, what the processes counting there have counted, summed."""
    if not settings.metrics_port:
        return
    registry = REGISTRY  # this process's own metrics
    if multiprocess_dir is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    log.info(
        "metrics serving",
        extra={"fields": {"metrics": f"http://{settings.metrics_host}:{settings.metrics_port}"}},
    )


# The HTTP edges (gateway, webhooks receiver), counted by services.common.http's middleware for
# every request, labelled by the route template that matched (never the raw path).
HTTP_REQUESTS = Counter(
    "http_server_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "From a request's arrival to the end of its answer",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# The label of requests that matched no route (404s, probes of unknown paths): raw paths would
# let any client create series.
UNMATCHED_ROUTE = "unmatched"
