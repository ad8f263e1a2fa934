"""BillingService's methods of Stripe Tax: the customer's billing address, by which Stripe
locates it to tax (services/billing/tax.py). A part of BillingServicer (grpc_api.py), which
holds the state they use."""

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine
from tatame.billing.v1 import billing_pb2_grpc, tax_pb2

from services.billing import tax
from services.billing.grpc_policy import acting_principal
from services.billing.idempotency import RequestKey, idempotent
from services.billing.settings import BillingRules
from services.common.rpc import Context, rpc


def location_message(location: tax.TaxLocation) -> tax_pb2.TaxLocation:
    return tax_pb2.TaxLocation(
        country=location.country,
        postal_code=location.postal_code,
        state=location.state,
        city=location.city,
        line1=location.line1,
        line2=location.line2,
        automatic_tax=location.automatic_tax,
    )


class TaxRpcs(billing_pb2_grpc.BillingServiceServicer):
    """GetTaxLocation and SetTaxLocation."""

    _engine: AsyncEngine
    _stripe: stripe.StripeClient
    _rules: BillingRules

    @rpc
    async def GetTaxLocation(
        self, request: tax_pb2.GetTaxLocationRequest, context: Context
    ) -> tax_pb2.GetTaxLocationResponse:
        location = await tax.tax_location(
            engine=self._engine,
            stripe_client=self._stripe,
            rules=self._rules,
            principal=await acting_principal(context),
        )
        return tax_pb2.GetTaxLocationResponse(location=location_message(location))

    @rpc
    @idempotent(tax_pb2.SetTaxLocationResponse)
    async def SetTaxLocation(
        self,
        request: tax_pb2.SetTaxLocationRequest,
        context: Context,
        idempotency: RequestKey | None,
    ) -> tax_pb2.SetTaxLocationResponse:
        given = request.location
        location = await tax.set_tax_location(
            engine=self._engine,
            stripe_client=self._stripe,
            rules=self._rules,
            principal=await acting_principal(context),
            location=tax.TaxLocation(
                country=given.country,
                postal_code=given.postal_code,
                state=given.state,
                city=given.city,
                line1=given.line1,
                line2=given.line2,
            ),
            idempotency=idempotency,
        )
        return tax_pb2.SetTaxLocationResponse(location=location_message(location))
