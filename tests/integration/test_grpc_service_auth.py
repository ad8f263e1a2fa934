"""ServiceAuthInterceptor on a real grpc.aio server: credentials, per-method policy, open probes."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import grpc
import jwt
import pytest
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.auth.grpc_interceptor import ServiceAuthInterceptor, current_caller
from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials, ServiceTokenVerifier

SERVICE = "tatame.test.v1.Echo"
ECHO = f"/{SERVICE}/Echo"
ECHO_STREAM = f"/{SERVICE}/EchoStream"
COLLECT = f"/{SERVICE}/Collect"
UNLISTED = f"/{SERVICE}/Unlisted"
BLOCKING = f"/{SERVICE}/Blocking"

GATEWAY_SECRET = "gateway-secret-" + "g" * 32
RELAY_SECRET = "relay-secret-" + "r" * 32
REPORTING_SECRET = "reporting-secret-" + "p" * 32
GATEWAY = ServiceCredentials("gateway", GATEWAY_SECRET)
RELAY = ServiceCredentials("webhooks-relay", RELAY_SECRET)
REPORTING = ServiceCredentials("reporting", REPORTING_SECRET)
USER = Principal("user", "user_123")

POLICY = {
    ECHO: frozenset({"gateway", "webhooks-relay"}),
    ECHO_STREAM: frozenset({"gateway"}),
    COLLECT: frozenset({"gateway"}),
    BLOCKING: frozenset({"gateway"}),
}


def describe_caller() -> bytes:
    """What the servicer sees: `service|principal key`."""
    caller = current_caller()
    principal = caller.principal.key if caller.principal else "-"
    return f"{caller.service}|{principal}".encode()


@dataclass(frozen=True)
class Server:
    """A channel to the running server and the methods whose handlers were reached, in order."""

    channel: grpc.aio.Channel
    reached: list[str]

    def unary(self, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        """A bytes-in, bytes-out stub for a unary method."""
        return self.channel.unary_unary(method, request_serializer=None, response_deserializer=None)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[Server]:
    """A grpc.aio server on a loopback port: echo methods behind the interceptor, and health."""
    reached: list[str] = []

    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        reached.append("Echo")
        await asyncio.sleep(0.05)  # overlap concurrent calls: each must see its own caller
        return describe_caller() + b"|" + request

    async def echo_stream(
        _request: bytes, _context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        reached.append("EchoStream")
        for _ in range(2):
            yield describe_caller()

    async def collect(requests: AsyncIterator[bytes], _context: grpc.aio.ServicerContext) -> bytes:
        reached.append("Collect")
        received = [request async for request in requests]
        return describe_caller() + b"|" + b",".join(received)

    def blocking(request: bytes, _context: grpc.ServicerContext) -> bytes:
        reached.append("Blocking")
        return request

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "EchoStream": grpc.unary_stream_rpc_method_handler(echo_stream),
            "Collect": grpc.stream_unary_rpc_method_handler(collect),
            "Unlisted": grpc.unary_unary_rpc_method_handler(echo),
            "Blocking": grpc.unary_unary_rpc_method_handler(blocking),
        },
    )
    verifier = ServiceTokenVerifier(
        {"gateway": GATEWAY_SECRET, "webhooks-relay": RELAY_SECRET, "reporting": REPORTING_SECRET},
        audience="billing",
    )
    aio_server = grpc.aio.server(interceptors=[ServiceAuthInterceptor(verifier, POLICY)])
    aio_server.add_generic_rpc_handlers((handler,))
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), aio_server)
    port = aio_server.add_insecure_port("127.0.0.1:0")
    await aio_server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Server(channel, reached)
    await aio_server.stop(grace=None)


@dataclass(frozen=True)
class CallDetails(grpc.HandlerCallDetails):
    """What grpc hands an interceptor about a call."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


async def status_of(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    """The status code and details a failed call ended with (fails the test on success)."""
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await call
    return excinfo.value.code(), excinfo.value.details() or ""


def forged_metadata(*, secret: str, exp_offset: int = 60) -> tuple[tuple[str, str], ...]:
    """Metadata with a token naming `gateway`, signed with `secret`, expiring at now+offset."""
    now = int(time.time())
    claims = {
        "iss": "gateway",
        "aud": "billing",
        "sub": USER.key,
        "iat": now - 120,
        "exp": now + exp_offset,
        "jti": "forged",
    }
    return (("authorization", f"Bearer {jwt.encode(claims, secret, 'HS256')}"),)


async def test_call_without_credentials_is_unauthenticated(server: Server) -> None:
    before = len(server.reached)
    code, details = await status_of(server.unary(ECHO)(b"hi"))
    assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, "missing_credentials")
    assert len(server.reached) == before


async def test_call_with_a_forged_token_is_unauthenticated(server: Server) -> None:
    call = server.unary(ECHO)(b"hi", metadata=forged_metadata(secret="x" * 48))
    assert await status_of(call) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_credentials")


async def test_call_with_an_expired_token_is_unauthenticated(server: Server) -> None:
    call = server.unary(ECHO)(
        b"hi", metadata=forged_metadata(secret=GATEWAY_SECRET, exp_offset=-60)
    )
    assert await status_of(call) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_credentials")


async def test_call_with_two_authorizations_is_unauthenticated(server: Server) -> None:
    metadata = GATEWAY.metadata(USER) + RELAY.metadata(None)
    call = server.unary(ECHO)(b"hi", metadata=metadata)
    assert await status_of(call) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_credentials")


async def test_service_not_allowed_by_the_policy_is_permission_denied(server: Server) -> None:
    before = len(server.reached)
    call = server.unary(ECHO)(b"hi", metadata=REPORTING.metadata(USER))
    assert await status_of(call) == (grpc.StatusCode.PERMISSION_DENIED, "permission_denied")
    assert len(server.reached) == before


async def test_method_missing_from_the_policy_is_denied_to_every_service(server: Server) -> None:
    call = server.unary(UNLISTED)(b"hi", metadata=GATEWAY.metadata(USER))
    assert await status_of(call) == (grpc.StatusCode.PERMISSION_DENIED, "permission_denied")


async def test_allowed_service_reaches_the_handler_which_sees_caller_and_principal(
    server: Server,
) -> None:
    response = await server.unary(ECHO)(b"hi", metadata=GATEWAY.metadata(USER))
    assert response == b"gateway|user:user_123|hi"


async def test_allowed_service_acting_for_no_one_is_seen_without_principal(server: Server) -> None:
    response = await server.unary(ECHO)(b"hi", metadata=RELAY.metadata(None))
    assert response == b"webhooks-relay|-|hi"


async def test_concurrent_calls_each_see_their_own_caller(server: Server) -> None:
    org = Principal("org", "org_abc")
    responses = await asyncio.gather(
        *(
            server.unary(ECHO)(str(i).encode(), metadata=credentials.metadata(principal))
            for i, (credentials, principal) in enumerate([(GATEWAY, USER), (RELAY, org)] * 5)
        )
    )
    expected = [b"gateway|user:user_123", b"webhooks-relay|org:org_abc"] * 5
    assert [response.rsplit(b"|", 1)[0] for response in responses] == expected


async def test_server_streaming_handler_sees_the_caller(server: Server) -> None:
    call = server.channel.unary_stream(
        ECHO_STREAM, request_serializer=None, response_deserializer=None
    )(b"", metadata=GATEWAY.metadata(USER))
    assert [message async for message in call] == [b"gateway|user:user_123"] * 2


async def test_server_streaming_call_from_a_denied_service_is_permission_denied(
    server: Server,
) -> None:
    call = server.channel.unary_stream(
        ECHO_STREAM, request_serializer=None, response_deserializer=None
    )(b"", metadata=RELAY.metadata(None))
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        _ = [message async for message in call]
    assert excinfo.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_client_streaming_handler_sees_the_caller(server: Server) -> None:
    call = server.channel.stream_unary(
        COLLECT, request_serializer=None, response_deserializer=None
    )(iter([b"a", b"b"]), metadata=GATEWAY.metadata(USER))
    assert await call == b"gateway|user:user_123|a,b"


async def test_client_streaming_call_without_credentials_is_unauthenticated(
    server: Server,
) -> None:
    call = server.channel.stream_unary(
        COLLECT, request_serializer=None, response_deserializer=None
    )(iter([b"a"]))
    code, _ = await status_of(call)
    assert code is grpc.StatusCode.UNAUTHENTICATED


async def test_sync_handler_behind_the_interceptor_fails_closed(server: Server) -> None:
    before = len(server.reached)
    code, _ = await status_of(server.unary(BLOCKING)(b"hi", metadata=GATEWAY.metadata(USER)))
    assert code is grpc.StatusCode.UNKNOWN
    assert len(server.reached) == before


async def test_health_check_needs_no_credentials(server: Server) -> None:
    response = await health_pb2_grpc.HealthStub(server.channel).Check(
        health_pb2.HealthCheckRequest(service="")
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_current_caller_outside_an_authenticated_call_raises() -> None:
    with pytest.raises(RuntimeError):
        current_caller()


async def test_caller_does_not_outlive_the_call_even_when_invoked_in_this_task() -> None:
    async def behavior(_request: bytes, _context: object) -> bytes:
        return describe_caller()

    async def continuation(_details: object) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(behavior)

    verifier = ServiceTokenVerifier({"gateway": GATEWAY_SECRET}, audience="billing")
    details = CallDetails(method=ECHO, invocation_metadata=GATEWAY.metadata(None))
    interceptor = ServiceAuthInterceptor(verifier, POLICY)
    handler = await interceptor.intercept_service(continuation, details)
    assert handler is not None
    assert handler.unary_unary is not None
    # The behaviour never reads its context (None here: no call is being served).
    assert await handler.unary_unary(b"", None) == b"gateway|-"  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        current_caller()
