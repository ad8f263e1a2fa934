"""The one way our gRPC servers start and stop: aio server, health, reflection, graceful drain."""

# grpc's classes are generic only in their type stubs: annotations stay unevaluated.
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

# `health.aio` is this module; import it by name, since grpc-stubs 1.53 types only the sync one.
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.grpc_observability import ObservingInterceptor

log = logging.getLogger(__name__)

# Client channels to our services: spread calls over every address the (headless) Service
# resolves to, so added replicas get traffic; keep idle connections alive.
CHANNEL_OPTIONS = [
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.enable_retries", 1),
]
# How often a server with a readiness check (its database) runs it.
READINESS_INTERVAL_SECONDS = 2.0

ReadinessCheck = Callable[[], Awaitable[bool]]


@dataclass
class GrpcServer:
    """A started server, the port it bound, its health servicer and its readiness watch, and
    the plaintext health-only server beside a TLS one, if any."""

    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    watch: asyncio.Task[None] | None = field(default=None)
    health_server: grpc.aio.Server | None = field(default=None)
    health_port: int | None = field(default=None)
    # Run first on stop: what ends long-lived calls (billing's WatchBilling streams), so that
    # the drain does not wait out its grace for them.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def stop(self, grace: float) -> None:
        """End long-lived calls (`closers`), report NOT_SERVING, let in-flight calls finish for
        up to `grace` seconds, then stop."""
        for close in self.closers:
            await close()
        if self.watch is not None:
            self.watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watch
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(None)


async def start_grpc_server(
    *,
    address: str,
    service_names: Sequence[str],
    add_servicers: Callable[[grpc.aio.Server], None],
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
    readiness: ReadinessCheck | None = None,
    readiness_interval: float = READINESS_INTERVAL_SECONDS,
    credentials: grpc.ServerCredentials | None = None,
    health_address: str | None = None,
) -> GrpcServer:
    """Bind `address` ("host:port", port 0 for any), register servicers, health and reflection;
    every call is counted and carries its request id (services.common.grpc_observability).

    With `readiness` (e.g. "the database answers"), health is SERVING only while it holds,
    checked every `readiness_interval` seconds, so probes and callers see an outage. With
    `credentials` the port serves TLS; `health_address` then serves the same health service in
    plaintext for kubelet's gRPC probes, which cannot speak TLS."""
    server = grpc.aio.server(
        # Outermost: counts the calls the other interceptors refuse.
        interceptors=[ObservingInterceptor(), *interceptors],
        options=[
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
            # Clients re-resolve when connections age out, so new replicas are found.
            ("grpc.max_connection_age_ms", 300_000),
            ("grpc.max_connection_age_grace_ms", 30_000),
        ],
    )
    add_servicers(server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    port = _bind(server, address, credentials)
    await server.start()
    started = GrpcServer(server=server, port=port, health=health_servicer)
    if health_address is not None:
        started.health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, started.health_server)
        started.health_port = _bind(started.health_server, health_address, None)
        await started.health_server.start()
    names = (*service_names, "")
    if readiness is None:
        await _report(health_servicer, names, serving=True)
        return started
    serving = await readiness()
    await _report(health_servicer, names, serving=serving)
    started.watch = asyncio.create_task(
        _watch(health_servicer, names, readiness, readiness_interval, serving=serving),
        name="readiness watch",
    )
    return started


def _bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Add a plaintext or TLS port; return the port bound."""
    port = (
        server.add_insecure_port(address)
        if credentials is None
        else server.add_secure_port(address, credentials)
    )
    if port == 0:
        raise OSError(f"could not bind gRPC server to {address}")
    return port


async def _report(
    health_servicer: health_aio.HealthServicer, names: Sequence[str], *, serving: bool
) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in names:
        await health_servicer.set(name, status)


async def _watch(
    health_servicer: health_aio.HealthServicer,
    names: Sequence[str],
    readiness: ReadinessCheck,
    interval: float,
    *,
    serving: bool,
) -> None:
    """Keep health (now `serving`) in step with `readiness`, logging each change."""
    while True:
        await asyncio.sleep(interval)
        now = await readiness()
        if now != serving:
            log.warning("readiness changed", extra={"fields": {"serving": now}})
            await _report(health_servicer, names, serving=now)
            serving = now


async def wait_for_termination_signal() -> None:
    """Return on the first SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    log.info("termination signal received; draining")
