"""What every gRPC server observes per call: Prometheus counts by method and status code, the
call's latency, and the caller's request id (`x-request-id` metadata) on the call's log lines.

`start_grpc_server` installs `ObservingInterceptor` outermost, so calls its other interceptors
refuse (a missing credential, a method the caller may not use) are counted too.
"""

# grpc's classes are generic only in their type stubs: annotations stay unevaluated.
from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from services.common.logging import REQUEST_ID_METADATA, request_id_var, valid_request_id

HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code",
    ["grpc_service", "grpc_method", "grpc_code"],
)
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "From a call's arrival at the servicer to its end",
    ["grpc_service", "grpc_method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

_SHAPES: dict[tuple[bool, bool], tuple[str, Callable[..., grpc.RpcMethodHandler[Any, Any]]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


# The class is generic only in grpc-stubs: it cannot be subscripted at run time.
class ObservingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Counts each call of a known method under `/package.Service/Method` and its final code;
    runs it with the caller's request id, when it sent a well-formed one."""

    # grpc-stubs 1.53 says a handler is always returned; grpcio takes None (no such method).
    async def intercept_service(  # type: ignore[override]
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        # grpc.aio serves each call in a task of its own, interceptors and handler alike: set
        # here, the id is on every line logged for the call, the other interceptors' included.
        given = next(
            (
                value
                for key, value in handler_call_details.invocation_metadata or ()
                if key == REQUEST_ID_METADATA and isinstance(value, str)
            ),
            None,
        )
        request_id_var.set(valid_request_id(given))
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: its name is the caller's, not a label
            return handler
        _, service, method = handler_call_details.method.split("/", 2)
        return _observed(handler, service, method)


def _observed(
    handler: grpc.RpcMethodHandler[Any, Any], service: str, method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    attribute, factory = _SHAPES[handler.request_streaming, handler.response_streaming]
    behavior = getattr(handler, attribute)

    def record(context: grpc.aio.ServicerContext[Any, Any], started: float, failed: bool) -> None:
        code = _code(context, failed)
        HANDLED.labels(service, method, code).inc()
        HANDLING_SECONDS.labels(service, method).observe(time.perf_counter() - started)

    wrapped: Callable[..., Any]
    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started, failed = time.perf_counter(), True
            try:
                async with aclosing(behavior(request, context)) as responses:
                    async for response in responses:
                        yield response
                failed = False
            finally:
                record(context, started, failed)

        wrapped = streaming
    else:

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started, failed = time.perf_counter(), True
            try:
                response = await behavior(request, context)
                failed = False
                return response
            finally:
                record(context, started, failed)

        wrapped = unary
    return factory(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _code(context: grpc.aio.ServicerContext[Any, Any], failed: bool) -> str:
    """The call's status code name: the one set or aborted with, else OK, or UNKNOWN when the
    servicer raised without setting one (grpc answers UNKNOWN then)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # grpc.aio reports a code set by `set_code` as given
        return _NAMES.get(code, "UNKNOWN")
    return "UNKNOWN" if failed else "OK"


_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}
