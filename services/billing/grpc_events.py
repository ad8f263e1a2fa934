"""BillingService's methods that apply Stripe's and Clerk's events (the relay's calls). A part
of BillingServicer (grpc_api.py), which holds the state they use."""

import asyncio

import grpc
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2, billing_pb2_grpc

from services.billing import event_batch, events
from services.billing import grpc_messages as messages
from services.billing.mirror import Outcome
from services.billing.privacy import clerk_events
from services.billing.privacy.inbox import InboxClient
from services.common.errors import ErrorReason
from services.common.rpc import Context, Failure, failure_of, rpc

# Of an ApplyStripeEvents call's deadline, the time kept back to answer for every event.
_ANSWER_MARGIN_SECONDS = 0.5


class EventRpcs(billing_pb2_grpc.BillingServiceServicer):
    """ApplyStripeEvent and ApplyStripeEvents."""

    _engine: AsyncEngine
    _stripe: stripe.StripeClient
    _inbox: InboxClient | None

    async def _apply(self, request: billing_pb2.ApplyStripeEventRequest) -> Outcome:
        if request.provider == clerk_events.PROVIDER:
            return await self._apply_clerk(request)
        return await events.apply_event(
            engine=self._engine,
            stripe_client=self._stripe,
            event_id=request.event_id,
            event_type=request.type,
            payload=request.payload,
        )

    @rpc
    async def ApplyStripeEvent(
        self, request: billing_pb2.ApplyStripeEventRequest, context: Context
    ) -> billing_pb2.ApplyStripeEventResponse:
        return billing_pb2.ApplyStripeEventResponse(
            outcome=messages.OUTCOMES[await self._apply(request)]
        )

    @rpc
    async def ApplyStripeEvents(
        self, request: billing_pb2.ApplyStripeEventsRequest, context: Context
    ) -> billing_pb2.ApplyStripeEventsResponse:
        # The events get the call's time less a margin for the answer: one slow event (a
        # Stripe fetch) is then UNAVAILABLE on its own instead of timing out the whole batch.
        # grpc-stubs says float; grpcio answers None for a call without a deadline.
        remaining: float | None = context.time_remaining()
        limit = None if remaining is None else max(0.0, remaining - _ANSWER_MARGIN_SECONDS)
        # Clerk's events (rare) are applied each on its own, beside Stripe's batch.
        clerk = [e for e in request.events if e.provider == clerk_events.PROVIDER]
        stripe_events = [e for e in request.events if e.provider != clerk_events.PROVIDER]
        batch, alone = await asyncio.gather(
            event_batch.apply_events(
                engine=self._engine,
                stripe_client=self._stripe,
                deliveries=[
                    event_batch.Delivery(event.event_id, event.type, event.payload)
                    for event in stripe_events
                ],
                limit=limit,
            ),
            asyncio.gather(
                *(asyncio.wait_for(self._apply_clerk(event), limit) for event in clerk),
                return_exceptions=True,
            ),
        )
        # Each event's own result, in the request's order (an id may repeat).
        stripe_results, clerk_results = iter(batch), iter(alone)
        results: list[event_batch.Result] = []
        for event in request.events:
            if event.provider == clerk_events.PROVIDER:
                result = next(clerk_results)
                results.append(result if isinstance(result, Outcome | Exception) else Exception())
            else:
                results.append(next(stripe_results))
        return billing_pb2.ApplyStripeEventsResponse(
            results=[
                _event_result(event.event_id, result)
                for event, result in zip(request.events, results, strict=True)
            ]
        )

    async def _apply_clerk(self, request: billing_pb2.ApplyStripeEventRequest) -> Outcome:
        return await clerk_events.apply_clerk_event(
            engine=self._engine,
            stripe_client=self._stripe,
            inbox=self._inbox,
            event_id=request.event_id,
            event_type=request.type,
            payload=request.payload,
        )


def _event_result(event_id: str, result: event_batch.Result) -> billing_pb2.ApplyStripeEventResult:
    """One event of a batch: its outcome, or the status it failed with."""
    if isinstance(result, Outcome):
        return billing_pb2.ApplyStripeEventResult(
            event_id=event_id, outcome=messages.OUTCOMES[result]
        )
    if isinstance(result, TimeoutError):
        failure = Failure(
            grpc.StatusCode.UNAVAILABLE,
            ErrorReason.APPLY_TIMED_OUT,
            "applying the event took longer than the call allows; try again",
        )
    else:  # one event's failure is its own result
        failure = failure_of(result, "ApplyStripeEvents")
    error = billing_pb2.EventError(
        code=failure.code.value[0], message=failure.message, reason=failure.reason
    )
    return billing_pb2.ApplyStripeEventResult(event_id=event_id, error=error)
