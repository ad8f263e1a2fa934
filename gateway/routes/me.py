"""The caller's own data, on request: `DELETE /v1/me` (erase it) and `GET /v1/me/export`.

Both act only for the verified session's principal (billing takes it from the service
credential, never from the request), so no caller reaches another's data."""

from fastapi import APIRouter, Response
from tatame.billing.v1 import billing_pb2

from gateway.dependencies import CurrentSession, CustomerCache, ForManager
from gateway.schemas import ErasureOut, error_responses
from services.common.timestamps import optional_datetime

router = APIRouter(tags=["me"])


@router.delete(
    "/v1/me",
    response_model=ErasureOut,
    responses=error_responses(401, 503),
    summary="Erase the caller's billing (an app's delete-my-account)",
    description="Cancels the caller's live subscriptions at once, deletes its Stripe customer, "
    "and blanks its personal data (email, name, addresses, card details) from billing and from "
    "the stored webhook events, keeping ids, amounts and dates that accounting keeps. "
    "Idempotent: asked again, it answers the same erasure; one that stopped part way "
    "(503) resumes. The caller may become a customer again afterwards.",
)
async def erase_me(
    session: CurrentSession, billing: ForManager, cache: CustomerCache
) -> ErasureOut:
    reply = await billing.erase_account(billing_pb2.EraseAccountRequest())
    if cache is not None:
        cache.drop(session.principal.key)
    erasure = reply.erasure
    requested_at = optional_datetime(erasure, "request_time")
    assert requested_at is not None
    return ErasureOut(
        state=erasure.state,
        requested_by=erasure.requested_by,
        requested_at=requested_at,
        completed_at=optional_datetime(erasure, "complete_time"),
        stripe_customer_id=erasure.stripe_customer_id or None,
        canceled_subscription_ids=list(erasure.canceled_subscription_ids),
        inbox_events_scrubbed=erasure.inbox_events_scrubbed,
    )


@router.get(
    "/v1/me/export",
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "One JSON document: `customer`, `subscriptions`, `invoices`, "
            "`purchases`, `charges`, `payment_methods`, `erasures` and `events` (the stored "
            "webhook events about the caller, with their payloads).",
        },
        **error_responses(401, 503),
    },
    summary="Everything billing holds about the caller",
)
async def export_me(billing: ForManager) -> Response:
    reply = await billing.export_account(billing_pb2.ExportAccountRequest())
    return Response(
        reply.document,
        media_type="application/json",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": 'attachment; filename="tatame-billing-export.json"',
        },
    )
