"""What operators see: every deployable as its real process (`python -m …`) serving Prometheus
metrics on its own port, and OTLP traces from the gateway, billing and the relay collected over
HTTP by a receiver in the test, one trace per request across processes."""

import asyncio
import gzip
import json
import os
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc
from tatame_devstack.ports import free_port

from tests.e2e.gateway_client import AUTHORIZED_PARTY, ISSUER, TokenIssuer
from tests.e2e.webhook_pipeline import RelayProcess, eventually
from tests.harness import migrated_database, serve_on_loopback
from tests.integration.webhook_signing import encode, signature_header, stripe_event
from tests.stripe_target import EMULATOR_KEY

BILLING_SERVICE = "tatame.billing.v1.BillingService"


@dataclass
class Collector:
    """An OTLP/HTTP trace receiver: the spans each service exported, by service name."""

    url: str = ""
    spans: dict[str, list[Span]] = field(default_factory=dict)

    async def export(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = self.spans.setdefault(attributes["service.name"], [])
            for scope_spans in resource_spans.scope_spans:
                service.extend(scope_spans.spans)
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )

    def trace(self, service: str, trace_id: bytes) -> list[Span]:
        return [s for s in self.spans.get(service, []) if s.trace_id == trace_id]


@pytest.fixture(scope="module")
async def collector() -> AsyncIterator[Collector]:
    collector = Collector()
    app = Starlette(routes=[Route("/v1/traces", collector.export, methods=["POST"])])
    server, task, port = await serve_on_loopback(app)
    collector.url = f"http://127.0.0.1:{port}"
    yield collector
    server.should_exit = True
    await task


@asynccontextmanager
async def running(args: list[str], env: dict[str, str], log: Path) -> AsyncIterator[None]:
    """`python <args>` as a child process logging to `log`, stopped (SIGTERM, then waited for)
    on exit; the wait leaves the event loop free, so the collector takes the spans it flushes
    while stopping."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, env={**os.environ, **env}, stderr=stderr
        )
        try:
            yield
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)


def log_lines(log: Path) -> list[dict[str, Any]]:
    """The JSON lines a process logged."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@dataclass(frozen=True)
class Stack:
    gateway_url: str
    receiver_url: str
    billing_target: str
    webhook_secret: str
    metrics: dict[str, str]  # deployable -> its /metrics URL
    logs: Path  # <deployable>.log: what each process logged


@pytest.fixture(scope="module")
async def stack(
    collector: Collector,
    issuer: TokenIssuer,
    billing_database_url: str,
    postgres_admin_url: str,
    stripe_emulator: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """Gateway, billing, receiver and relay as processes, tracing to `collector` (spans exported
    every 100 ms) and each serving metrics on a port of its own."""
    secret = {name: secrets.token_urlsafe(32) for name in ("gateway", "webhooks-relay")}
    ports = {name: free_port() for name in ("gateway", "billing", "receiver")}
    metrics = {
        name: free_port() for name in ("gateway", "billing", "webhooks-receiver", "webhooks-relay")
    }
    common = {
        "TATAME_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    logs = tmp_path_factory.mktemp("observability")
    billing_target = f"127.0.0.1:{ports['billing']}"
    webhook_secret = "whsec_" + secrets.token_hex(16)
    webhooks_db = await asyncio.to_thread(migrated_database, postgres_admin_url, "webhooks")
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    relay = RelayProcess(
        database_url=webhooks_db,
        billing_target=billing_target,
        relay_secret=secret["webhooks-relay"],
    )
    relay.env.update(common, METRICS_PORT=str(metrics["webhooks-relay"]))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            running(
                ["-m", "services.billing", "serve"],
                {
                    **common,
                    "DATABASE_URL": billing_database_url,
                    "STRIPE_SECRET_KEY": EMULATOR_KEY,
                    "STRIPE_API_BASE": stripe_emulator,
                    "BILLING_SERVICE_SECRETS": ",".join(f"{k}={v}" for k, v in secret.items()),
                    "BILLING_GRPC_ADDRESS": billing_target,
                    "METRICS_PORT": str(metrics["billing"]),
                },
                logs / "billing.log",
            )
        )
        await stack.enter_async_context(
            running(
                ["-m", "gateway"],
                {
                    **common,
                    "GATEWAY_PORT": str(ports["gateway"]),
                    "GATEWAY_SERVICE_SECRET": secret["gateway"],
                    "GATEWAY_RPC_TIMEOUT_SECONDS": "30",  # a loaded CI machine's first calls
                    "BILLING_TARGET": billing_target,
                    "CLERK_ISSUER": ISSUER,
                    "CLERK_JWT_KEY": public_pem.decode(),
                    "CLERK_AUTHORIZED_PARTIES": AUTHORIZED_PARTY,
                    "METRICS_PORT": str(metrics["gateway"]),
                    "LOG_LEVEL": "INFO",  # client errors' access lines
                },
                logs / "gateway.log",
            )
        )
        await stack.enter_async_context(
            running(
                ["-m", "services.webhooks", "receiver"],
                {
                    **common,
                    "DATABASE_URL": webhooks_db,
                    "STRIPE_WEBHOOK_SECRET": webhook_secret,
                    "WEBHOOKS_RECEIVER_PORT": str(ports["receiver"]),
                    "METRICS_PORT": str(metrics["webhooks-receiver"]),
                },
                logs / "webhooks-receiver.log",
            )
        )
        relay.start()
        stack.push_async_callback(asyncio.to_thread, relay.stop)
        handle = Stack(
            gateway_url=f"http://127.0.0.1:{ports['gateway']}",
            receiver_url=f"http://127.0.0.1:{ports['receiver']}",
            billing_target=billing_target,
            webhook_secret=webhook_secret,
            metrics={name: f"http://127.0.0.1:{port}/metrics" for name, port in metrics.items()},
            logs=logs,
        )
        async with httpx.AsyncClient(timeout=5) as client:
            ready = [
                f"{handle.gateway_url}/readyz",  # billing answers its health, too
                f"{handle.receiver_url}/readyz",
                *handle.metrics.values(),
            ]
            await eventually(lambda: _all_answer(client, ready), within=180)
        yield handle


async def _all_answer(client: httpx.AsyncClient, urls: list[str]) -> bool:
    try:
        answers = [await client.get(url) for url in urls]
    except httpx.TransportError:
        return False
    return all(answer.status_code == 200 for answer in answers)


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics page, by name and labels (the multiprocess `pid` label of
    granian's workers summed away)."""
    async with httpx.AsyncClient(timeout=5) as client:
        page = await client.get(url)
    assert page.status_code == 200
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(page.text):
        samples[(family.name, frozenset())] = samples.get((family.name, frozenset()), 0.0)
        for s in family.samples:
            key = (s.name, frozenset((k, v) for k, v in s.labels.items() if k != "pid"))
            samples[key] = samples.get(key, 0.0) + s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def spans_of(collector: Collector, service: str, trace_id: bytes, within: float = 10):
    await eventually(lambda: _has(collector, service, trace_id), within=within)
    return collector.trace(service, trace_id)


async def _has(collector: Collector, service: str, trace_id: bytes) -> bool:
    return bool(collector.trace(service, trace_id))


async def test_one_rest_request_is_one_trace_from_the_gateway_into_billing_postgres_and_stripe(
    stack: Stack, collector: Collector, issuer: TokenIssuer
) -> None:
    user = "user_" + secrets.token_hex(6)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        created = await client.post(
            "/v1/customer",
            json={"email": f"{user}@example.com", "name": "Ana"},
            headers=issuer.headers(user),
        )
    assert created.status_code == 201, created.text

    await eventually(lambda: _gateway_span(collector, "POST /v1/customer"), within=10)
    root = next(
        s
        for s in collector.spans["gateway"]
        if s.name == "POST /v1/customer" and s.kind == Span.SPAN_KIND_SERVER
    )
    gateway_spans = collector.trace("gateway", root.trace_id)
    billing_spans = await spans_of(collector, "billing", root.trace_id)
    # billing's server span is the child of the gateway's gRPC client span: traceparent crossed
    calls = {s.span_id for s in gateway_spans if s.kind == Span.SPAN_KIND_CLIENT}
    served = [s for s in billing_spans if s.kind == Span.SPAN_KIND_SERVER]
    assert served, [s.name for s in billing_spans]
    assert all(s.name.startswith(f"/{BILLING_SERVICE}/") for s in served)
    assert all(s.parent_span_id in calls for s in served)
    # ... and billing's own work in the same trace: Postgres statements and the call to Stripe
    attributes = [{a.key: a.value.string_value for a in s.attributes} for s in billing_spans]
    assert any(a.get("db.system") == "postgresql" for a in attributes)
    stripe_calls = [
        s for s in billing_spans if s.kind == Span.SPAN_KIND_CLIENT and s.name in ("POST", "GET")
    ]
    assert stripe_calls, [s.name for s in billing_spans]
    # one request, one trace: nothing of it started a trace of its own
    assert {s.trace_id for s in gateway_spans} == {root.trace_id}


async def _gateway_span(collector: Collector, name: str) -> bool:
    return any(s.name == name for s in collector.spans.get("gateway", []))


async def test_each_process_serves_its_metrics_on_its_own_port_after_traffic(
    stack: Stack, collector: Collector, issuer: TokenIssuer
) -> None:
    user = "user_" + secrets.token_hex(6)
    request_id = "obs-" + secrets.token_hex(8)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        headers = issuer.headers(user)
        before = await scrape(stack.metrics["gateway"])
        created = await client.post(
            "/v1/customer", json={"email": f"{user}@example.com"}, headers=headers
        )
        assert created.status_code == 201, created.text
        unauthorized = await client.get("/v1/customer", headers={"X-Request-ID": request_id})
        assert unauthorized.status_code == 401
        probe = "/v1/no-such-route-" + secrets.token_hex(4)
        assert (await client.get(probe)).status_code == 404
        # the public port serves no metrics
        assert (await client.get("/metrics")).status_code == 404

    # gateway: per route template and status, with its latency
    gateway = await scrape(stack.metrics["gateway"])
    post = {"method": "POST", "route": "/v1/customer"}
    assert value(gateway, "http_server_requests_total", **post, status="201") == (
        value(before, "http_server_requests_total", **post, status="201") + 1
    )
    assert (
        value(
            gateway, "http_server_requests_total", method="GET", route="/v1/customer", status="401"
        )
        >= 1
    )
    assert (
        value(gateway, "http_server_requests_total", method="GET", route="unmatched", status="404")
        >= 1
    )
    assert value(gateway, "http_server_request_duration_seconds_count", **post) >= 1
    assert value(gateway, "http_server_request_duration_seconds_sum", **post) > 0
    assert not [key for key in gateway if probe in str(key)], "a raw path became a label"
    # the gateway's access line of the 401 carries the request id and its trace's id
    (access,) = [
        line
        for line in log_lines(stack.logs / "gateway.log")
        if line.get("request_id") == request_id
    ]
    assert access["status"] == 401
    assert re.fullmatch("[0-9a-f]{32}", access["trace_id"])

    # billing: per RPC and code (a refused call too), Stripe by endpoint and outcome, disputes
    async with grpc.aio.insecure_channel(stack.billing_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await billing_pb2_grpc.BillingServiceStub(channel).ListPlans(
                billing_pb2.ListPlansRequest(), timeout=5, metadata=(("x-request-id", request_id),)
            )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    # the caller's request id is on billing's log line about the call
    refusals = [
        line
        for line in log_lines(stack.logs / "billing.log")
        if line["message"].startswith("refused a call to")
    ]
    assert [line.get("request_id") for line in refusals] == [request_id]
    billing = await scrape(stack.metrics["billing"])
    handled = [
        (dict(labels), n)
        for (name, labels), n in billing.items()
        if name == "grpc_server_handled_total" and n > 0
    ]
    assert any(
        labels["grpc_service"] == BILLING_SERVICE and labels["grpc_code"] == "OK"
        for labels, _ in handled
    ), handled
    unauthenticated = {"grpc_service": BILLING_SERVICE, "grpc_method": "ListPlans"}
    assert (
        value(billing, "grpc_server_handled_total", **unauthenticated, grpc_code="UNAUTHENTICATED")
        >= 1
    )
    customers = {"method": "POST", "endpoint": "/v1/customers"}
    assert value(billing, "stripe_requests_total", **customers, outcome="ok") >= 1
    assert value(billing, "stripe_request_duration_seconds_count", **customers) >= 1
    assert ("billing_subscription_disputes", frozenset()) in billing  # scrapeable, none yet

    # receiver and relay: a signed event stored, delivered to billing, the backlog empty again
    event = stripe_event("balance.available", obj={"object": "balance"})
    body = encode(event)
    async with httpx.AsyncClient(timeout=10) as client:
        stored = await client.post(
            f"{stack.receiver_url}/webhooks/stripe",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": signature_header(body, stack.webhook_secret),
            },
        )
    assert stored.status_code == 200, stored.text
    receiver = await scrape(stack.metrics["webhooks-receiver"])
    assert value(receiver, "webhooks_events_received_total", source="webhook") == 1
    webhook = {"method": "POST", "route": "/webhooks/stripe"}
    assert value(receiver, "http_server_requests_total", **webhook, status="200") == 1

    async def delivered() -> bool:
        relay = await scrape(stack.metrics["webhooks-relay"])
        return value(relay, "webhooks_receive_to_applied_seconds_count") == 1

    await eventually(delivered, within=30)
    deadline = time.monotonic() + 15
    while True:  # the gauges are refreshed every few seconds
        relay = await scrape(stack.metrics["webhooks-relay"])
        if value(relay, "webhooks_backlog_events") == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert value(relay, "webhooks_backlog_events") == 0
    assert value(relay, "webhooks_oldest_pending_age_seconds") == 0
    assert value(relay, "webhooks_dead_letter_events") == 0
    assert (
        sum(n for (name, _), n in relay.items() if name == "webhooks_events_delivered_total") == 1
    )

    # and the relay's delivery is one trace with billing's handling of it (calls made while
    # billing was still starting have no server side)
    async def delivery_traced() -> bool:
        calls = {
            (s.trace_id, s.span_id)
            for s in collector.spans.get("webhooks-relay", [])
            if s.kind == Span.SPAN_KIND_CLIENT and "ApplyStripeEvent" in s.name
        }
        return any(
            (s.trace_id, s.parent_span_id) in calls
            for s in collector.spans.get("billing", [])
            if s.kind == Span.SPAN_KIND_SERVER
        )

    await eventually(delivery_traced, within=15)
