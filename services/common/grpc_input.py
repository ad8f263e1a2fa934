"""A gRPC server interceptor refusing requests that hold a NUL character in any string field.

Postgres cannot store NUL in text or jsonb (`psycopg.DataError`), so such a string would fail
deep inside a method as INTERNAL; refused at the edge it is INVALID_ARGUMENT and touches neither
the database nor Stripe. The gateway refuses every control character before it calls; this edge
guards billing against its other internal callers.
"""

# grpc's classes are generic only in their type stubs: annotations stay unevaluated.
from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

NUL = "\x00"


def nul_field(message: Message) -> str | None:
    """The path of the first string field (at any depth) of `message` holding NUL, else None."""
    for path, text in _strings(message, ""):
        if NUL in text:
            return path
    return None


def _strings(message: Message, prefix: str) -> Iterator[tuple[str, str]]:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if key_field.type == FieldDescriptor.TYPE_STRING:
                    yield f"{path}[key]", key
                yield from _values(value_field, item, f"{path}[{key!r}]")
        elif field.is_repeated:
            for index, item in enumerate(value):
                yield from _values(field, item, f"{path}[{index}]")
        else:
            yield from _values(field, value, path)


def _values(field: FieldDescriptor, value: Any, path: str) -> Iterator[tuple[str, str]]:
    if field.type == FieldDescriptor.TYPE_STRING:
        yield path, value
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        yield from _strings(value, f"{path}.")


# The class is generic only in grpc-stubs: it cannot be subscripted at run time.
class RefuseNulInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Unary requests whose strings hold NUL are refused with INVALID_ARGUMENT."""

    # grpc-stubs 1.53 says a handler is always returned; grpcio takes None (no such method).
    async def intercept_service(  # type: ignore[override]
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        if handler.response_streaming:
            behavior, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
        else:
            behavior, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
            return handler
        return factory(
            _checked(behavior),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _checked(behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def refuse(context: grpc.aio.ServicerContext[Any, Any], path: str) -> None:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"{path} must not contain a NUL character"
        )

    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            path = nul_field(request)
            if path is not None:
                await refuse(context, path)
            async for response in behavior(request, context):
                yield response

        return streaming

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        path = nul_field(request)
        if path is not None:
            await refuse(context, path)
        return await behavior(request, context)

    return unary
