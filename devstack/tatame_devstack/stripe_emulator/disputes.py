"""Disputes: a card holder's bank charges a payment back (emulator-only
`POST /_testing/charges/{id}/dispute`); the merchant accepts the loss
(`POST /v1/disputes/{id}/close`) or submits evidence (`POST /v1/disputes/{id}`, `submit=true`),
and the bank decides (emulator-only `POST /_testing/disputes/{id}/resolve`, `outcome=won|lost`)."""

from typing import Any

import stripe
from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import Charge, StripeObject

from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_int,
    as_str,
    merged_metadata,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import expanded, shape

D = stripe.Dispute
REASONS = (
    *("bank_cannot_process", "credit_not_processed", "customer_initiated", "debit_not_authorized"),
    *("duplicate", "fraudulent", "general", "incorrect_account_details", "insufficient_funds"),
    *("product_not_received", "product_unacceptable", "subscription_canceled", "unrecognized"),
)
OPEN_STATUSES = ("needs_response", "warning_needs_response")
UNDECIDED_STATUSES = (*OPEN_STATUSES, "under_review", "warning_under_review")
# The evidence a merchant may give as text or file ids (not the hashes `appeal` and
# `enhanced_evidence`, which the emulator does not take).
TEXT_EVIDENCE = frozenset(stripe.params.DisputeUpdateParamsEvidence.__annotations__) - {
    "appeal",
    "enhanced_evidence",
}
RESPONSE_DAYS_SECONDS = 7 * 24 * 60 * 60


class Dispute(StripeObject):
    """A dispute of a succeeded charge, open (`needs_response`) until closed, won or lost."""

    object = "dispute"
    _id_prefix = "du_"

    def __init__(self, charge: Charge, amount: int, reason: str) -> None:
        super().__init__()
        self.charge, self.payment_intent = charge.id, charge.payment_intent
        self.amount, self.currency, self.reason = amount, charge.currency, reason
        self.status = "needs_response"
        self.metadata: dict[str, str] = {}
        self._evidence: dict[str, str] = {}
        self._submissions = 0
        charge._disputed = True

    @classmethod
    def _api_update(
        cls,
        id: str,
        evidence: Any = None,
        submit: Any = False,
        metadata: Any = None,
        **unknown: Any,
    ) -> "Dispute":
        """`POST /v1/disputes/{id}`: text evidence, staged until `submit=true` sends it to the
        bank (the dispute is then `under_review`)."""
        reject_unknown(unknown)
        dispute = cls._api_retrieve(id)
        given = {} if evidence is None else _text_evidence(evidence)
        submit = as_bool("submit", submit)
        if (given or submit) and dispute.status not in OPEN_STATUSES:
            raise UserError(
                400,
                f"This dispute is {dispute.status}: evidence can no longer be given.",
            )
        if metadata is not None:
            dispute.metadata = merged_metadata(dispute.metadata, metadata)
        dispute._evidence.update(given)
        if submit:
            dispute.status = "under_review"
            dispute._submissions += 1
        send_event("charge.dispute.updated", dispute)
        return dispute

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        charge: Any = None,
        payment_intent: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **unknown: Any,
    ) -> Any:
        reject_unknown(unknown)
        page = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        page._list = [
            dispute
            for dispute in reversed(page._list)  # newest first, as Stripe lists
            if charge in (None, dispute.charge) and payment_intent in (None, dispute.payment_intent)
        ]
        return page

    def _close(self, status: str, *, allowed: tuple[str, ...]) -> "Dispute":
        if self.status not in allowed:
            raise UserError(400, f"This dispute is {self.status}: it cannot be {status}.")
        self.status = status
        if status == "won":
            send_event("charge.dispute.funds_reinstated", self)
        send_event("charge.dispute.closed", self)
        return self

    def _export(self, expand: Any = None) -> dict[str, Any]:
        due_by = self.created + RESPONSE_DAYS_SECONDS if self.status in OPEN_STATUSES else None
        rendered = shape(
            D,
            {
                "id": self.id,
                "object": self.object,
                "amount": self.amount,
                "balance_transactions": [],
                "charge": self.charge,
                "created": self.created,
                "currency": self.currency,
                "enhanced_eligibility_types": [],
                "evidence": shape(D.Evidence, {"enhanced_evidence": {}, **self._evidence}),
                "evidence_details": shape(
                    D.EvidenceDetails,
                    {
                        "due_by": due_by,
                        "enhanced_eligibility": {},
                        "has_evidence": bool(self._evidence),
                        "past_due": False,
                        "submission_count": self._submissions,
                        "submission_method": "manual" if self._submissions else "not_submitted",
                    },
                ),
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": self.metadata,
                "payment_intent": self.payment_intent,
                "reason": self.reason,
                "status": self.status,
            },
        )
        return expanded(rendered, expand or ())


def _text_evidence(evidence: Any) -> dict[str, str]:
    if not isinstance(evidence, dict):
        raise param_error("evidence", "Invalid evidence: expected a hash")
    for name, value in evidence.items():
        if name not in TEXT_EVIDENCE:
            raise param_error(f"evidence[{name}]", f"Received unknown parameter: evidence[{name}]")
        as_str(f"evidence[{name}]", value)
    return dict(evidence)


def dispute_charge(
    id: str, reason: Any = "fraudulent", amount: Any = None, **unknown: Any
) -> Dispute:
    """`POST /_testing/charges/{id}/dispute` (emulator only): the card holder's bank disputes
    the charge (all of it unless `amount`) and withdraws the money."""
    reject_unknown(unknown)
    charge = Charge._api_retrieve(id)
    if charge.status != "succeeded" or getattr(charge, "_disputed", False):
        raise UserError(400, f"Charge {id} cannot be disputed (again).")
    amount = charge.amount if amount is None else as_int("amount", amount, minimum=1)
    if amount > charge.amount:
        raise param_error("amount", "A dispute cannot exceed the charge's amount.")
    dispute = Dispute(charge, amount, as_str("reason", reason, choices=REASONS))
    send_event("charge.dispute.created", dispute)
    send_event("charge.dispute.funds_withdrawn", dispute)
    return dispute


def close_dispute(id: str, **unknown: Any) -> Dispute:
    """`POST /v1/disputes/{id}/close`: the merchant accepts the dispute, which is lost."""
    reject_unknown(unknown)
    return Dispute._api_retrieve(id)._close("lost", allowed=OPEN_STATUSES)


def resolve_dispute(id: str, outcome: Any = None, **unknown: Any) -> Dispute:
    """`POST /_testing/disputes/{id}/resolve` (emulator only): the bank decides, `won|lost`."""
    reject_unknown(unknown)
    outcome = as_str("outcome", outcome, choices=("won", "lost"))
    return Dispute._api_retrieve(id)._close(outcome, allowed=UNDECIDED_STATUSES)


def add_routes(app: web.Application) -> None:
    """The disputes API and the emulator-only endpoints that open and resolve disputes."""
    collection, one = "/v1/disputes", "/v1/disputes/{id}"
    app.router.add_get(collection, localstripe_server.api_list_all(Dispute, collection))
    app.router.add_get(one, localstripe_server.api_retrieve(Dispute, one))
    app.router.add_post(one, localstripe_server.api_update(Dispute, one))
    for path, func in (
        ("/v1/disputes/{id}/close", close_dispute),
        ("/_testing/charges/{id}/dispute", dispute_charge),
        ("/_testing/disputes/{id}/resolve", resolve_dispute),
    ):
        app.router.add_post(path, localstripe_server.api_extra(func, path))
