"""OpenTelemetry traces, configured only by the standard `OTEL_*` variables and off when none asks
for them: then no SDK is set up and no library is instrumented (the API's no-op tracer remains).

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or, without it, when
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; never when
`OTEL_SDK_DISABLED=true`. The OTLP exporter speaks HTTP/protobuf and reads its own variables
(endpoint, headers, timeout); `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER(_ARG)` and `OTEL_BSP_*` apply as the SDK defines them.

What is traced, once `configure_tracing` said yes: gRPC calls out and in (W3C `traceparent` in
the metadata), Postgres statements (psycopg), HTTP calls made with httpx (Stripe's SDK, the JWKS
fetch), and the gateway's routes (`instrument_fastapi`).
"""

import atexit
import os
from typing import Any

_state = {"on": False}


def tracing_requested(environ: Any = os.environ) -> bool:
    """Whether the `OTEL_*` variables in `environ` ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        return exporters.strip().lower() not in ("", "none")
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(service: str, *, database: bool = True) -> bool:
    """Set up the SDK and instrument the libraries when the `OTEL_*` variables ask for traces;
    `service` names the process unless `OTEL_SERVICE_NAME` does. `database=False` leaves psycopg
    alone (a poller's queries would each start a trace). Returns whether tracing is on."""
    if _state["on"] or not tracing_requested():
        return _state["on"]
    from opentelemetry import trace
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(named))
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # export what is still buffered
    GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument()
    if database:
        PsycopgInstrumentor().instrument(enable_commenter=False)
    _state["on"] = True
    return True


def _exporters() -> list[Any]:
    """The exporters `OTEL_TRACES_EXPORTER` names (default `otlp`)."""
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    exporters: list[Any] = []
    for name in (part.strip().lower() for part in names.split(",") if part.strip()):
        if name == "otlp":
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            if protocol != "http/protobuf":
                raise ValueError(f"OTLP protocol {protocol!r} is not supported: use http/protobuf")
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            raise ValueError(f"OTEL_TRACES_EXPORTER {name!r} is not supported: otlp or console")
    return exporters


def instrument_fastapi(app: Any) -> None:
    """Trace `app`'s requests (each route a server span, the caller's `traceparent` honoured)
    when tracing is on; probes are left out."""
    if not _state["on"]:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="/healthz,/readyz")
