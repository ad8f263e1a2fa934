"""The gateway's side of billing: one channel, calls with a deadline and the gateway's credential."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tatame.billing.v1 import billing_pb2_grpc

from services.auth.principal import Principal
from services.auth.service_credentials import ServiceCredentials
from services.common.grpc_server import CHANNEL_OPTIONS
from services.common.idempotency import IDEMPOTENCY_METADATA

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class BillingClient:
    """Calls billing for a principal (or for nobody, for public data) with a deadline."""

    def __init__(self, *, target: str, credentials: ServiceCredentials, timeout: float) -> None:
        self._channel = grpc.aio.insecure_channel(
            target,
            options=CHANNEL_OPTIONS,
        )
        self.stub = billing_pb2_grpc.BillingServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._credentials = credentials
        self._timeout = timeout

    async def call(
        self,
        method: Callable[..., Awaitable[Resp]],
        request: Req,
        *,
        principal: Principal | None,
        idempotency_key: str | None = None,
    ) -> Resp:
        """Invoke `method` (a stub attribute) acting for `principal`, with the client's
        `Idempotency-Key` when it sent one (billing reads it from the call's metadata)."""
        metadata = self._credentials.metadata(principal)
        if idempotency_key is not None:
            metadata += ((IDEMPOTENCY_METADATA, idempotency_key),)
        return await method(request, timeout=self._timeout, metadata=metadata)

    async def is_serving(self) -> bool:
        """Whether billing's health service answers SERVING within a second."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def close(self) -> None:
        await self._channel.close()
