"""Refunds and disputes in the emulator, as Stripe makes them at the pinned API version, driven
by the real `stripe` SDK."""

from collections.abc import Iterator

import pytest
import stripe
from tatame_devstack.run import running_stripe_emulator

from tests.integration.stripe_fields import id_of, present
from tests.integration.test_stripe_emulator import emulator_only, events_of, sdk_client, unique
from tests.integration.test_stripe_emulator_payments import paid, payment


@pytest.fixture
def client(stripe_emulator: str) -> stripe.StripeClient:
    return sdk_client(stripe_emulator)


@pytest.fixture(scope="module")
def unchecked_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An emulator without the conformance check, for tests of what the emulator itself refuses
    (the session's emulator refuses it in its conformance check first, and fails the run)."""
    log_path = tmp_path_factory.mktemp("unchecked-emulator") / "emulator.log"
    with running_stripe_emulator(log_path, "--port", "0") as base_url:
        yield base_url


# --- Refunds ------------------------------------------------------------------------------------


def test_refunds_take_back_part_then_the_rest_of_a_charge_and_never_more(
    client: stripe.StripeClient,
) -> None:
    intent = paid(client, 3000)
    charge_id = id_of(intent.latest_charge)

    part = client.v1.refunds.create(
        params={
            "payment_intent": intent.id,
            "amount": 1000,
            "reason": "requested_by_customer",
            "metadata": {"ticket": "42"},
        },
        options={"idempotency_key": unique("refund")},
    )
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"charge": charge_id, "amount": 2001})
    rest = client.v1.refunds.create(params={"charge": charge_id})

    assert (part.amount, part.status, part.reason, part.charge) == (
        1000,
        "succeeded",
        "requested_by_customer",
        charge_id,
    )
    assert part.payment_intent == intent.id
    assert present(part.metadata).to_dict() == {"ticket": "42"}
    assert too_much.value.param == "amount"
    assert rest.amount == 2000
    charge = client.v1.charges.retrieve(charge_id, params={"expand": ["refunds"]})
    assert (charge.amount_refunded, charge.refunded) == (3000, True)
    assert charge.refunds is not None
    assert {r.id for r in charge.refunds.data} == {part.id, rest.id}
    assert "refunds" not in client.v1.charges.retrieve(charge_id)
    assert client.v1.refunds.retrieve(part.id).to_dict() == part.to_dict()
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert {r.id for r in listed.data} == {part.id, rest.id}
    assert events_of(client, part.id) == ["refund.created"]
    assert events_of(client, charge.id).count("charge.refunded") == 2
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"charge": charge_id})


def test_a_refund_retried_with_its_idempotency_key_refunds_once(
    client: stripe.StripeClient,
) -> None:
    intent = paid(client, 2000)
    key = unique("refund")

    first = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 500}, options={"idempotency_key": key}
    )
    again = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 500}, options={"idempotency_key": key}
    )

    assert again.id == first.id
    assert client.v1.charges.retrieve(id_of(intent.latest_charge)).amount_refunded == 500


def test_a_payment_that_did_not_succeed_cannot_be_refunded(client: stripe.StripeClient) -> None:
    intent = payment(client)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"payment_intent": intent.id})

    assert refused.value.code == "charge_not_refundable"


# --- Disputes -----------------------------------------------------------------------------------


def test_a_dispute_is_opened_by_the_bank_and_lost_when_the_merchant_closes_it(
    client: stripe.StripeClient,
) -> None:
    intent = paid(client, 4000)
    charge_id = id_of(intent.latest_charge)
    assert charge_id is not None

    opened = client.v1.disputes.retrieve(
        emulator_only(client, f"charges/{charge_id}/dispute", reason="product_not_received")["id"]
    )
    closed = client.v1.disputes.close(opened.id)

    assert (opened.status, opened.amount, opened.reason) == (
        "needs_response",
        4000,
        "product_not_received",
    )
    assert (opened.charge, opened.payment_intent) == (charge_id, intent.id)
    assert closed.status == "lost"
    assert client.v1.charges.retrieve(charge_id).disputed is True
    assert events_of(client, opened.id)[0] == "charge.dispute.created"
    assert "charge.dispute.closed" in events_of(client, opened.id)
    listed = client.v1.disputes.list(params={"payment_intent": intent.id})
    assert [d.id for d in listed.data] == [opened.id]
    with pytest.raises(stripe.InvalidRequestError):
        emulator_only(client, f"disputes/{opened.id}/resolve", outcome="won")
    with pytest.raises(stripe.InvalidRequestError) as no_refund:
        client.v1.refunds.create(params={"charge": charge_id})
    assert no_refund.value.code == "charge_disputed"


def test_the_bank_resolves_a_dispute_won_or_lost(client: stripe.StripeClient) -> None:
    outcomes = {}
    for outcome in ("won", "lost"):
        intent = paid(client)
        dispute = emulator_only(client, f"charges/{intent.latest_charge}/dispute")
        emulator_only(client, f"disputes/{dispute['id']}/resolve", outcome=outcome)
        outcomes[outcome] = client.v1.disputes.retrieve(dispute["id"])

    assert {outcome: d.status for outcome, d in outcomes.items()} == {"won": "won", "lost": "lost"}
    assert "charge.dispute.funds_reinstated" in events_of(client, outcomes["won"].id)
    assert "charge.dispute.closed" in events_of(client, outcomes["lost"].id)


def test_evidence_is_staged_then_submitted_and_the_dispute_waits_for_the_bank(
    client: stripe.StripeClient,
) -> None:
    intent = paid(client)
    dispute_id = emulator_only(client, f"charges/{intent.latest_charge}/dispute")["id"]

    staged = client.v1.disputes.update(
        dispute_id, params={"evidence": {"uncategorized_text": "Attended 12 classes."}}
    )
    submitted = client.v1.disputes.update(dispute_id, params={"submit": True})

    assert staged.status == "needs_response"
    assert staged.evidence_details.has_evidence
    assert submitted.status == "under_review"
    assert submitted.evidence.uncategorized_text == "Attended 12 classes."
    assert (
        submitted.evidence_details.submission_count,
        submitted.evidence_details.submission_method,
    ) == (1, "manual")
    with pytest.raises(stripe.InvalidRequestError):  # under review: no longer the merchant's
        client.v1.disputes.close(dispute_id)
    emulator_only(client, f"disputes/{dispute_id}/resolve", outcome="won")
    assert client.v1.disputes.retrieve(dispute_id).status == "won"


def test_dispute_evidence_of_an_unknown_kind_is_refused_with_its_param(
    unchecked_emulator: str,
) -> None:
    client = sdk_client(unchecked_emulator)
    intent = paid(client)
    dispute_id = emulator_only(client, f"charges/{intent.latest_charge}/dispute")["id"]

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.disputes.update(dispute_id, params={"evidence": {"essay": "x"}})  # type: ignore[arg-type]  # unknown on purpose

    assert unknown.value.param == "evidence[essay]"
