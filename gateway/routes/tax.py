"""Stripe Tax: the caller's billing address, by which Stripe locates its customer to tax
(BILLING_AUTOMATIC_TAX; services/billing/tax.py)."""

from fastapi import APIRouter, Response
from tatame.billing.v1 import tax_pb2

from gateway import rendering
from gateway.dependencies import ForCaller, ForManager, IdempotencyKey
from gateway.schemas import TaxLocationIn, TaxLocationOut, error_responses

router = APIRouter(tags=["tax"])

ERRORS = error_responses(400, 401, 403, 404, 409, 503)
PATH = "/v1/customer/tax-location"


def _location(message: tax_pb2.TaxLocation) -> TaxLocationOut:
    return TaxLocationOut(
        country=message.country or None,
        postal_code=message.postal_code or None,
        state=message.state or None,
        city=message.city or None,
        line1=message.line1 or None,
        line2=message.line2 or None,
        automatic_tax=message.automatic_tax or None,
    )


@router.get(
    PATH,
    response_model=TaxLocationOut,
    responses=ERRORS,
    summary="The caller's billing address, as Stripe Tax sees it",
)
async def get_tax_location(billing: ForCaller) -> Response:
    reply = await billing.get_tax_location(tax_pb2.GetTaxLocationRequest())
    return rendering.json_response(_location(reply.location))


@router.put(
    PATH,
    response_model=TaxLocationOut,
    responses=ERRORS,
    summary="Set the caller's billing address (400 customer_tax_location_invalid when Stripe "
    "Tax cannot locate it)",
)
async def set_tax_location(
    body: TaxLocationIn, billing: ForManager, key: IdempotencyKey
) -> Response:
    reply = await billing.set_tax_location(
        tax_pb2.SetTaxLocationRequest(location=tax_pb2.TaxLocation(**body.model_dump())),
        idempotency_key=key,
    )
    return rendering.json_response(_location(reply.location))
