"""gRPC server interceptor enforcing service credentials and a per-method allow list."""

# grpc's classes are generic only in their type stubs: annotations stay unevaluated.
from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any

import grpc

from services.auth.errors import AuthError, AuthReason
from services.auth.service_credentials import Caller, ServiceTokenVerifier

logger = logging.getLogger(__name__)

_OPEN_SERVICES: frozenset[str] = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

_current_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("current_caller")

# (request_streaming, response_streaming) -> handler attribute and factory of that shape.
_HANDLER_SHAPES: dict[
    tuple[bool, bool], tuple[str, Callable[..., grpc.RpcMethodHandler[Any, Any]]]
] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def current_caller() -> Caller:
    """The verified caller of the gRPC call being served; raises outside an authenticated call."""
    try:
        return _current_caller.get()
    except LookupError:
        raise RuntimeError("current_caller() used outside an authenticated gRPC call") from None


# The class is generic only in grpc-stubs: it cannot be subscripted at run time.
class ServiceAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates each call by service token and authorizes it by method; probes stay open."""

    def __init__(
        self, verifier: ServiceTokenVerifier, policy: Mapping[str, frozenset[str]]
    ) -> None:
        for method in policy:
            if _service_of(method) is None:
                raise ValueError(f"policy key {method!r} is not a full method name /pkg.Service/M")
        self._verifier = verifier
        self._policy = {method: frozenset(services) for method, services in policy.items()}

    # grpc-stubs 1.53 says a handler is always returned; grpcio takes None (no such method).
    async def intercept_service(  # type: ignore[override]
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Return the handler bound to the verified caller, or one that refuses the call."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or _service_of(method) in _OPEN_SERVICES:
            return handler
        try:
            caller = self._authorize(method, handler_call_details.invocation_metadata)
        except AuthError as error:
            logger.warning("refused a call to %s: %s", method, error)
            return _refusing(handler, error)
        return _bound_to_caller(handler, caller)

    def _authorize(self, method: str, metadata: Any) -> Caller:
        """Verify the credential once and check the caller against the method's allow list."""
        values = [value for key, value in metadata or () if key == "authorization"]
        if len(values) > 1:
            raise AuthError(AuthReason.INVALID_CREDENTIALS, "Send exactly one authorization.")
        caller = self._verifier.verify(values[0] if values else None)
        if caller.service not in self._policy.get(method, frozenset()):
            raise AuthError(
                AuthReason.PERMISSION_DENIED, f"Service {caller.service!r} may not call {method}."
            )
        return caller


def _service_of(method: str) -> str | None:
    """The service part of `/package.Service/Method`, or None when the name is malformed."""
    parts = method.split("/")
    if len(parts) != 3 or parts[0] or not parts[1] or not parts[2]:
        return None
    return parts[1]


def _refusing(
    handler: grpc.RpcMethodHandler[Any, Any], error: AuthError
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape that aborts without reading or deserializing the request."""
    code = (
        grpc.StatusCode.PERMISSION_DENIED
        if error.reason is AuthReason.PERMISSION_DENIED
        else grpc.StatusCode.UNAUTHENTICATED
    )

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, error.reason.value)

    _, factory = _HANDLER_SHAPES[handler.request_streaming, handler.response_streaming]
    return factory(refuse, request_deserializer=None, response_serializer=None)


def _bound_to_caller(
    handler: grpc.RpcMethodHandler[Any, Any], caller: Caller
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler whose behaviour runs with `caller` as current_caller()."""
    attribute, factory = _HANDLER_SHAPES[handler.request_streaming, handler.response_streaming]
    behavior = getattr(handler, attribute)
    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # No reset: each grpc.aio call runs in its own task, whose context dies with it, and
            # this generator may be finalized from another context.
            _current_caller.set(caller)
            async with aclosing(behavior(request, context)) as responses:
                async for response in responses:
                    yield response

        wrapped: Callable[..., Any] = streaming
    elif inspect.iscoroutinefunction(behavior):

        async def coroutine(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            token = _current_caller.set(caller)
            try:
                return await behavior(request, context)
            finally:
                _current_caller.reset(token)

        wrapped = coroutine
    else:
        raise TypeError(f"{attribute} handlers must be async to be served behind auth: {behavior}")
    return factory(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
