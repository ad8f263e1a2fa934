"""Checkout Sessions, Billing Portal sessions and ephemeral keys."""

from typing import Any

import stripe
from aiohttp import web
from localstripe import server as localstripe_server
from localstripe.errors import UserError
from localstripe.resources import Customer, Invoice, PaymentMethod, StripeObject, random_id

from tatame_devstack.stripe_emulator.boleto import allowed_types, offered_types
from tatame_devstack.stripe_emulator.catalog import recurring_plan
from tatame_devstack.stripe_emulator.checkout_tax import TaxCollection, tax_collection
from tatame_devstack.stripe_emulator.currencies import check_customer_currency
from tatame_devstack.stripe_emulator.customers import attach
from tatame_devstack.stripe_emulator.events import send_event
from tatame_devstack.stripe_emulator.params import (
    as_bool,
    as_int,
    as_metadata,
    as_optional_str,
    as_str,
    param_error,
    reject_unknown,
)
from tatame_devstack.stripe_emulator.render import expanded, shape
from tatame_devstack.stripe_emulator.subscriptions import PriceSubscription
from tatame_devstack.stripe_emulator.tax import automatic_tax_of, customer_location

CHECKOUT_PAGES = "https://checkout.stripe-emulator.invalid/c/pay"
PORTAL_PAGES = "https://billing.stripe-emulator.invalid/p/session"
CHECKOUT_SESSION_TTL_SECONDS = 24 * 60 * 60
EPHEMERAL_KEY_TTL_SECONDS = 60 * 60
# What a session keeps of what Stripe renders (the rest is null or constant).
SESSION_FIELDS = (
    *("id", "allow_promotion_codes", "amount_subtotal", "amount_total", "cancel_url"),
    *("client_reference_id", "created", "currency", "customer", "expires_at", "invoice"),
    "livemode",
    *("metadata", "mode", "payment_status", "status", "subscription", "success_url", "url"),
)


class CheckoutSession(StripeObject):
    """A subscription-mode Checkout Session for an existing customer, in the price's currency
    or one of its `currency_options` (`currency`). The emulator hosts no
    payment page: a test completes a session with `POST /_testing/checkout/sessions/{id}/complete`
    (optionally `payment_method=pm_card_…`), which creates the subscription and sends
    `checkout.session.completed`, as paying on Stripe's page does."""

    object = "checkout.session"
    _id_prefix = "cs_test_"
    invoice: str | None = None  # the first invoice, once complete
    _amount_tax = 0  # the first invoice's tax, once complete
    _tax = TaxCollection()  # sessions of an older state file have none

    def __init__(
        self,
        mode: Any = None,
        customer: Any = None,
        line_items: Any = None,
        success_url: Any = None,
        cancel_url: Any = None,
        client_reference_id: Any = None,
        metadata: Any = None,
        allow_promotion_codes: Any = None,
        subscription_data: Any = None,
        currency: Any = None,
        automatic_tax: Any = None,
        billing_address_collection: Any = None,
        customer_update: Any = None,
        tax_id_collection: Any = None,
        allowed_payment_method_types: Any = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(unknown)
        as_str("mode", mode, choices=("subscription",))
        allowed = allowed_types("allowed_payment_method_types", allowed_payment_method_types)
        customer_id = Customer._api_retrieve(as_str("customer", customer)).id
        collection = tax_collection(
            customer_id,
            automatic_tax=automatic_tax,
            billing_address_collection=billing_address_collection,
            customer_update=customer_update,
            tax_id_collection=tax_id_collection,
        )
        if not isinstance(line_items, list) or len(line_items) != 1:
            raise param_error("line_items", "The emulator takes exactly one line item.")
        item = dict(line_items[0]) if isinstance(line_items[0], dict) else {}
        plan = recurring_plan("line_items[0][price]", item.pop("price", None), currency)
        check_customer_currency(customer_id, plan.currency)
        quantity = as_int("line_items[0][quantity]", item.pop("quantity", 1), minimum=1)
        reject_unknown(item, parent="line_items[0]")
        success_url = as_str("success_url", success_url)
        cancel_url = as_optional_str("cancel_url", cancel_url)
        reference = as_optional_str("client_reference_id", client_reference_id)
        metadata = as_metadata(metadata)
        promotion_codes = (
            None
            if allow_promotion_codes is None
            else as_bool("allow_promotion_codes", allow_promotion_codes)
        )
        if subscription_data is not None and not isinstance(subscription_data, dict):
            raise param_error("subscription_data", "Invalid subscription_data: expected a hash")
        data = dict(subscription_data or {})
        trial_days = data.pop("trial_period_days", None)
        if trial_days is not None:
            trial_days = as_int("subscription_data[trial_period_days]", trial_days, minimum=1)
        subscription_metadata = as_metadata(data.pop("metadata", None))
        reject_unknown(data, parent="subscription_data")

        super().__init__()
        self.mode = "subscription"
        self.customer = customer_id
        self.client_reference_id = reference
        self.metadata = metadata
        self.allow_promotion_codes = promotion_codes
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.currency = plan.currency
        self.amount_subtotal = self.amount_total = plan.amount * quantity
        self.status = "open"
        self.payment_status = "unpaid"
        self.subscription = None
        self.expires_at = self.created + CHECKOUT_SESSION_TTL_SECONDS
        self.url = f"{CHECKOUT_PAGES}/{self.id}"
        self._plan_id, self._quantity, self._currency = plan.id, quantity, plan.currency
        self._trial_days, self._subscription_metadata = trial_days, subscription_metadata
        self._tax = collection
        # None: every payment method the account enables for the currency.
        self._allowed_types = allowed

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        customer: Any = None,
        status: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **unknown: Any,
    ) -> Any:
        reject_unknown(unknown)
        if status is not None:
            as_str("status", status, choices=("open", "complete", "expired"))
        page = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        page._list = [
            session
            for session in reversed(page._list)  # newest first, as Stripe lists
            if customer in (None, session.customer) and status in (None, session.status)
        ]
        return page

    @classmethod
    def _api_expire(cls, id: str, **unknown: Any) -> "CheckoutSession":
        reject_unknown(unknown)
        session = cls._api_retrieve(id)
        if session.status != "open":
            raise UserError(
                400, f"Only open Checkout Sessions can be expired; this one is {session.status}."
            )
        session.status = "expired"
        send_event("checkout.session.expired", session)
        return session

    @classmethod
    def _api_complete(
        cls,
        id: str,
        payment_method: Any = "pm_card_visa",
        billing_details: Any = None,
        **unknown: Any,
    ) -> "CheckoutSession":
        """Pay on the (absent) hosted page: attach the card (or boleto), start the subscription;
        with `billing_details[address][…]` and `[name]`, what the customer typed on the page
        (saved to the customer as `customer_update` asks; Stripe Tax locates it by that
        address). Paid by boleto, the session completes `unpaid`: its subscription is
        `incomplete` until the voucher is paid (`checkout.session.async_payment_succeeded`) or
        expires."""
        reject_unknown(unknown)
        session = cls._api_retrieve(id)
        if session.status != "open":
            raise UserError(400, f"This Checkout Session is {session.status}.")
        session._tax.collect(session.customer, billing_details)
        card = PaymentMethod._api_retrieve(as_str("payment_method", payment_method))
        if card.type not in session._types():
            raise param_error("payment_method", f"This session does not take {card.type}.")
        if card._attaching_is_declined() or card._charging_is_declined():
            raise UserError(402, "Your card was declined.", {"code": "card_declined"})
        attach(card, session.customer)
        trial = {} if session._trial_days is None else {"trial_period_days": session._trial_days}
        subscription = PriceSubscription._api_create(
            customer=session.customer,
            items=[{"price": session._plan_id, "quantity": session._quantity}],
            default_payment_method=card.id,
            metadata=dict(session._subscription_metadata),
            # Sessions of an older state file have no currency of their own: their price's.
            currency=getattr(session, "_currency", None),
            automatic_tax={"enabled": session._tax.automatic},
            # Its invoices take what the session allowed.
            payment_settings={"payment_method_types": session._allowed_types},
            **trial,
        )
        session.subscription, session.invoice = subscription.id, subscription.latest_invoice
        first = Invoice._api_retrieve(subscription.latest_invoice)
        session._amount_tax, session.amount_total = first.tax, first.total
        session.status = "complete"
        session.payment_status = "no_payment_required" if trial else "paid"
        if subscription.status == "incomplete":  # a boleto's voucher waits to be paid
            session.payment_status = "unpaid"
        send_event("checkout.session.completed", session)
        return session

    def _export(self, expand: Any = None) -> dict[str, Any]:
        S = stripe.checkout.Session
        values = {name: getattr(self, name) for name in SESSION_FIELDS}
        rendered = shape(
            S,
            {
                **values,
                "object": self.object,
                "automatic_tax": automatic_tax_of(
                    S.AutomaticTax,
                    enabled=self._tax.automatic,
                    located=customer_location(self.customer) is not None,
                ),
                "billing_address_collection": self._tax.billing_address_collection,
                "allowed_payment_method_types": getattr(self, "_allowed_types", None),
                "custom_fields": [],
                "custom_text": shape(S.CustomText, {}),
                "customer_details": self._customer_details(),
                "payment_method_collection": "always",
                "payment_method_types": self._types(),
                "phone_number_collection": shape(S.PhoneNumberCollection, {"enabled": False}),
                "shipping_options": [],
                "tax_id_collection": shape(
                    S.TaxIdCollection,
                    {"enabled": self._tax.tax_ids, "required": "never"},
                ),
                "total_details": shape(
                    S.TotalDetails,
                    {"amount_discount": 0, "amount_shipping": 0, "amount_tax": self._amount_tax},
                ),
                "ui_mode": "hosted_page",
            },
            expand=expand or (),
        )
        return expanded(rendered, [path for path in expand or () if path != "line_items"])

    def _customer_details(self) -> dict[str, Any] | None:
        """Who paid, once complete: the customer's email, and its address and name as the page
        saved them."""
        if self.status != "complete":
            return None
        D = stripe.checkout.Session.CustomerDetails
        customer = Customer._api_retrieve(self.customer)
        address = None if customer.address is None else shape(D.Address, customer.address)
        details = {"email": customer.email, "tax_exempt": "none", "tax_ids": []}
        return shape(D, {**details, "address": address, "name": customer.name})

    def _types(self) -> list[str]:
        return offered_types(self.currency, getattr(self, "_allowed_types", None))


class BillingPortalSession(StripeObject):
    """A Billing Portal session (the emulator hosts no portal page)."""

    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, customer: Any = None, return_url: Any = None, **unknown: Any) -> None:
        reject_unknown(unknown)
        customer_id = Customer._api_retrieve(as_str("customer", customer)).id
        return_url = as_optional_str("return_url", return_url)

        super().__init__()
        self.customer = customer_id
        self.return_url = return_url
        self.url = f"{PORTAL_PAGES}/{self.id}"
        self.configuration = "bpc_emulator"
        self.flow = self.locale = self.on_behalf_of = None

    def _export(self, expand: Any = None) -> dict[str, Any]:
        fields = ("id", "configuration", "created", "customer", "flow", "livemode", "locale")
        values = {
            name: getattr(self, name) for name in (*fields, "on_behalf_of", "return_url", "url")
        }
        rendered = shape(stripe.billing_portal.Session, {**values, "object": self.object})
        return expanded(rendered, expand or ())


class EphemeralKey(StripeObject):
    """An ephemeral key for a mobile SDK, made for the API version in its `Stripe-Version`
    header (`GET /_testing/ephemeral_keys/{secret}` tells which, for tests)."""

    object = "ephemeral_key"
    _id_prefix = "ephkey_"

    def __init__(self, stripe_version: str, customer: Any = None, **unknown: Any) -> None:
        reject_unknown(unknown)
        customer_id = Customer._api_retrieve(as_str("customer", customer)).id

        super().__init__()
        self._customer = customer_id
        self.expires = self.created + EPHEMERAL_KEY_TTL_SECONDS
        self.secret = "ek_test_" + random_id(32)
        self._stripe_version = stripe_version

    def _export(self, expand: Any = None) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in ("id", "created", "expires", "livemode")}
        return shape(stripe.EphemeralKey, {**values, "object": self.object, "secret": self.secret})


async def create_ephemeral_key(request: web.Request) -> web.StreamResponse:
    version = request.headers.get("Stripe-Version")
    if not version:
        raise UserError(400, "Stripe-Version header is required to create an ephemeral key.")
    params = await localstripe_server.get_post_data(request) or {}
    return localstripe_server.json_response(EphemeralKey(version, **params)._export())
