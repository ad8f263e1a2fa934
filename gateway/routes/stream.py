"""GET /v1/billing/stream: the billing screen pushed to the app as it changes (Server-Sent
Events), from billing's WatchBilling stream for the caller's principal.

Each `billing.updated` event carries the body of GET /v1/billing, with the principal's version as
its `id`; the first is the current state, unless the client reconnects with `Last-Event-ID` and
nothing changed since. Heartbeats are SSE comments. The stream ends at the session token's
expiry (after a `session.expired` event), and when the gateway shuts down (the client reconnects
to another replica with its Last-Event-ID). When a billing replica goes away, the gateway calls
another and the client notices nothing."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Header, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from tatame.billing.v1 import billing_pb2

from gateway import rendering
from gateway.billing_client import BillingCalls
from gateway.dependencies import Billing, CurrentSession
from gateway.schemas import error_responses
from gateway.settings import GatewaySettings
from gateway.streams import Streams, StreamTicket
from services.auth.errors import AuthReason
from services.common.errors import ErrorReason
from services.common.http import ApiError

log = logging.getLogger(__name__)
router = APIRouter(tags=["billing"])

UPDATED = "billing.updated"
EXPIRED = "session.expired"
# Calling billing again after a WatchBilling stream ended (a billing replica shut down or
# became unreachable): backoff base and cap in seconds, and calls before the stream gives up
# (the client reconnects).
_RETRY_BASE_SECONDS = 0.1
_RETRY_MAX_SECONDS = 2.0
_RETRIES = 6
_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})


async def open_streams(request: Request) -> Streams:
    streams: Streams = request.app.state.streams
    return streams


async def stream_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def last_event_id(
    value: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The `id` of the last event received, sent by EventSource when it "
            "reconnects: the stream then starts with the current state only if it changed since.",
        ),
    ] = None,
) -> int | None:
    """The version the client last saw; 400 when it is not one of our event ids."""
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise ApiError(
            400, ErrorReason.INVALID_ARGUMENT, "Last-Event-ID must be an id this stream sent"
        )
    return int(value)


@router.get(
    "/v1/billing/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`billing.updated` events (data: the body of GET /v1/billing; id: "
            "the version), heartbeat comments, a `session.expired` event at the token's expiry.",
        },
        **error_responses(400, 401, 429, 503),
    },
    summary="The caller's billing screen, pushed whenever billing applies a change (SSE)",
)
async def billing_stream(
    session: CurrentSession,
    billing: Billing,
    streams: Annotated[Streams, Depends(open_streams)],
    settings: Annotated[GatewaySettings, Depends(stream_settings)],
    since: Annotated[int | None, Depends(last_event_id)],
) -> Response:
    calls = billing.acting_for(session.principal)
    expires_at = session.expires_at.timestamp()
    ticket = streams.admit(session.principal)
    try:
        # The first answer before the response starts: a failure is still an HTTP error.
        first = await _first_answer(ticket, calls, since, expires_at)
    except BaseException:
        ticket.release()
        raise
    return EventSourceResponse(
        _events(ticket, calls, first, expires_at),
        ping=settings.gateway_stream_heartbeat_seconds,
        background=BackgroundTask(ticket.release),
    )


async def _first_answer(
    ticket: StreamTicket, calls: BillingCalls, since: int | None, expires_at: float
) -> billing_pb2.WatchBillingResponse:
    """Call WatchBilling and read its first answer (the current state)."""
    remaining = expires_at - time.time()
    if remaining <= 0:
        raise ApiError(401, AuthReason.EXPIRED, "The session token has expired.")
    request = billing_pb2.WatchBillingRequest(since_version=since)
    ticket.call = calls.watch_billing(request, timeout=remaining)
    first = await ticket.call.read()
    if not isinstance(first, billing_pb2.WatchBillingResponse):  # ended at once: shutting down
        raise ApiError(503, "unavailable", "billing is unavailable; try again")
    return first


async def _events(
    ticket: StreamTicket,
    calls: BillingCalls,
    first: billing_pb2.WatchBillingResponse,
    expires_at: float,
) -> AsyncIterator[ServerSentEvent]:
    """The stream's events, until the token expires or the process shuts down; on a billing
    replica's end, the next call resumes from the last version sent."""
    streams = ticket.streams
    try:
        reply: billing_pb2.WatchBillingResponse | None = first
        version = first.version
        failures = 0
        while True:
            if reply is not None:
                if reply.HasField("overview"):
                    body = rendering.overview(reply.overview).model_dump_json()
                    yield ServerSentEvent(data=body, event=UPDATED, id=str(reply.version))
                version = reply.version
                failures = 0
            try:
                assert ticket.call is not None
                reply = await _next(ticket.call)
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    yield _expired()
                    return
                if e.code() not in _RETRIED or failures >= _RETRIES:
                    log.warning(
                        "billing stream ended", extra={"fields": {"grpc_code": e.code().name}}
                    )
                    return
                reply = None
            if reply is not None:
                continue
            # Billing's stream ended: its replica shut down, or the process is shutting down.
            if streams.closing:
                return
            await streams.pause(min(_RETRY_MAX_SECONDS, _RETRY_BASE_SECONDS * 2**failures))
            failures += 1
            remaining = expires_at - time.time()
            if streams.closing:
                return
            if remaining <= 0:
                yield _expired()
                return
            ticket.call = calls.watch_billing(
                billing_pb2.WatchBillingRequest(since_version=version), timeout=remaining
            )
    finally:
        ticket.call = None
        ticket.release()


async def _next(
    call: "grpc.aio.UnaryStreamCall[object, object]",
) -> billing_pb2.WatchBillingResponse | None:
    """The call's next answer; None when it ended (billing's end, or cancelled by shutdown)."""
    try:
        reply = await call.read()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if call.cancelled() and (task is None or task.cancelling() == 0):
            return None  # cancelled by Streams.close, not this task's own cancellation
        raise
    return reply if isinstance(reply, billing_pb2.WatchBillingResponse) else None


def _expired() -> ServerSentEvent:
    return ServerSentEvent(
        data='{"code": "expired", "message": "The session token has expired."}', event=EXPIRED
    )
