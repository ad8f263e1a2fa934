"""A dispute on a subscription's payment: logged and counted (a metric operators alert on), and
its access kept or suspended until the dispute is won, as BILLING_DISPUTE_POLICY says."""

from prometheus_client import REGISTRY

from tests.harness import BillingHandle
from tests.integration.billing_accounts import BASIC_FEATURES, Account, billing_server
from tests.integration.billing_accounts import apply_events as deliver

METRIC = "billing_subscription_disputes_total"


def disputes_counted(reason: str) -> float:
    return REGISTRY.get_sample_value(METRIC, {"reason": reason}) or 0.0


async def first_charge(billing: BillingHandle, invoice_id: str) -> str:
    invoice = await billing.stripe.v1.invoices.retrieve_async(
        invoice_id, params={"expand": ["payments"]}
    )
    assert invoice.payments is not None
    intent_id = invoice.payments.data[0].payment.payment_intent
    assert isinstance(intent_id, str)
    intent = await billing.stripe.v1.payment_intents.retrieve_async(intent_id)
    assert isinstance(intent.latest_charge, str)
    return intent.latest_charge


async def test_a_subscription_payment_disputed_is_counted_and_keeps_or_suspends_access(
    billing: BillingHandle, paying: Account
) -> None:
    created = await paying.subscribe("basic_monthly")
    charge_id = await first_charge(billing, created.subscription.latest_invoice_id)
    counted_before = disputes_counted("fraudulent")

    dispute_id = await billing.stripe_target.dispute(charge_id)
    await deliver(billing, paying.stub, charge_id, dispute_id)

    assert disputes_counted("fraudulent") == counted_before + 1
    # Delivered again (the relay's retry of a delivery that timed out), it is not counted again.
    await deliver(billing, paying.stub, dispute_id)
    assert disputes_counted("fraudulent") == counted_before + 1
    assert await paying.features() == BASIC_FEATURES  # keep: the default
    async with billing_server(billing, trial_days=0, dispute_policy="suspend") as suspending:
        strict = Account(billing, suspending)
        strict.principal, strict.metadata = paying.principal, paying.metadata
        assert await strict.features() == set()

        await billing.stripe_target.resolve_dispute(dispute_id, "won")
        await deliver(billing, suspending, dispute_id)

        assert await strict.features() == BASIC_FEATURES
