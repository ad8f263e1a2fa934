"""One principal never reaches another's subscriptions, cards or sessions over real gRPC."""

import grpc

from tests.integration.billing_accounts import (
    Account,
    checkout,
)


async def test_a_second_principal_gets_not_found_for_every_id_of_the_first(
    billing, stub, paying
) -> None:
    created = await paying.subscribe("pro_monthly")
    card = (await paying.call("ListPaymentMethods")).payment_methods[0].id
    session_id = await checkout(Account(billing, stub))  # another account's session
    other = Account(billing, paying.stub)
    await other.customer_id()
    subscription_id = created.subscription.id

    for method, fields in (
        ("GetSubscription", {"id": subscription_id}),
        ("PreviewSubscriptionChange", {"id": subscription_id, "price": "basic_monthly"}),
        (
            "UpdateSubscription",
            {"id": subscription_id, "price": "basic_monthly", "proration_behavior": 1},
        ),
        ("CancelSubscription", {"id": subscription_id, "immediately": True}),
        ("ResumeSubscription", {"id": subscription_id}),
        ("SetDefaultPaymentMethod", {"id": card}),
        ("DetachPaymentMethod", {"id": card}),
        ("ConfirmCheckoutSession", {"session_id": session_id}),
    ):
        refused = await other.refused(method, **fields)
        assert refused.code() is grpc.StatusCode.NOT_FOUND, method

    assert list((await other.call("ListInvoices")).invoices) == []
    assert list((await other.call("ListSubscriptions")).subscriptions) == []
    assert list((await other.call("ListPaymentMethods")).payment_methods) == []
    # And nothing of the first changed.
    assert (await paying.subscription(subscription_id)).status == "active"
    assert [pm.id for pm in (await paying.call("ListPaymentMethods")).payment_methods] == [card]


async def test_ids_of_nothing_are_not_found(account) -> None:
    await account.customer_id()
    for method, fields in (
        ("GetSubscription", {"id": "sub_missing"}),
        ("CancelSubscription", {"id": "sub_missing"}),
        ("DetachPaymentMethod", {"id": "pm_missing"}),
        ("ConfirmCheckoutSession", {"session_id": "cs_test_missing"}),
    ):
        refused = await account.refused(method, **fields)
        assert refused.code() is grpc.StatusCode.NOT_FOUND, method
