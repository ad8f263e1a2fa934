"""A local, stateful Stripe emulator for development and tests (never production).

It runs `localstripe` (GPL-3.0, a dev/test dependency only) with what our backend needs and
localstripe lacks, added by subclassing its resources and extending its aiohttp app:

- the Prices API; each recurring price is also a localstripe Plan with the same id, so that
  subscriptions accept it (`items[].price` is taken as `items[].plan`);
- products with `marketing_features`, `default_price_data` (create), `default_price` (update)
  and `updated`, and a `product.updated` event on update;
- subscriptions as Stripe bills them now: `payment_behavior=default_incomplete` (the first
  invoice's PaymentIntent, or during a trial a `pending_setup_intent`, waits for the client;
  confirming it with `payment_method=pm_card_visa` pays and activates, saving the card with
  `payment_settings.save_default_payment_method`), a `default_payment_method`, item changes with
  prorations (`proration_behavior`, `always_invoice` billing at once), `cancel_at_period_end`
  with `cancel_at`, periods that honour `interval_count` and trials, and
  `customer.subscription.updated` events;
- subscription schedules `from_subscription` (phases of one item; release), invoice previews
  (`POST /v1/invoices/create_preview`) of an item change;
- Checkout Sessions (subscription mode, for an existing customer), Billing Portal sessions and
  ephemeral keys (made for the request's `Stripe-Version`);
- a customer's default payment method (must be attached; detaching unsets it), its payment
  methods (`GET /v1/customers/{id}/payment_methods`), attach/detach events;
- invoices with `amount_remaining`, `invoice.finalized`/`invoice.paid` events, lines with their
  `parent` (proration or not) and, once finalized, a `confirmation_secret`, a `number` and links
  to the hosted page and PDF (under `.invalid` hosts: the emulator serves no pages);
- objects rendered as Stripe renders them at the SDK's pinned API version (`render.shape`):
  customers, products, prices, payment and setup intents, payment methods, charges, refunds,
  disputes, Checkout and portal sessions, ephemeral keys, test clocks;
- Stripe's test cards: `pm_card_visa`, `pm_card_chargeDeclined` (declined; attaching it fails),
  `pm_card_chargeCustomerFail` (attaches; every charge declines), `pm_card_authenticationRequired`
  (3-D Secure: `requires_action` until the card holder answers), for payment intents, setup
  intents and the payments of subscriptions and invoices (`intents.pay`); each succeeded payment
  has its charge (`latest_charge`);
- refunds (`POST /v1/refunds`, in full or in part), disputes (`POST /v1/disputes/{id}/close`) and
  test clocks (`/v1/test_helpers/test_clocks`, advancing moves the clock's customers'
  subscriptions through their period ends);
- emulator-only endpoints for what a customer or a test clock would do: paying a Checkout Session
  (`POST /_testing/checkout/sessions/{id}/complete`, `payment_method=pm_card_…`), ending a
  subscription's period (`POST /_testing/subscriptions/{id}/end_period`: a planned cancellation
  happens, the schedule's next phase starts, the new period is charged) and telling an ephemeral
  key's version (`GET /_testing/ephemeral_keys/{secret}`), the card holder's 3-D Secure answer
  (`POST /_testing/{payment,setup}_intents/{id}/authenticate`, `outcome=succeed|fail`), a bank's
  dispute of a charge (`POST /_testing/charges/{id}/dispute`) and its decision
  (`POST /_testing/disputes/{id}/resolve`, `outcome=won|lost`);
- Stripe's idempotency layer (`Idempotency-Key` on POST: replay, mismatch 400, in-flight 409);
- Stripe-shaped JSON errors for unknown routes and unexpected failures;
- state in memory (never localstripe's shared /tmp/localstripe.pickle), or in a state file.

Usage: python -m tatame_devstack.stripe_emulator [--host 127.0.0.1] [--port 8420]
[--state-file PATH]. Once listening it prints one line to stdout:
`stripe-emulator listening on http://127.0.0.1:<port>`.

One module per resource family: `catalog`, `customers`, `subscriptions`, `schedules`, `invoices`,
`intents`, `setup_intents`, `payment_methods`, `charges`, `refunds`, `disputes`, `checkout`,
`test_clocks`, `events`, `testing` (the `/_testing/*` endpoints), on `params` (parsing), `render`
(responses), `expansion` (`expand[]`), `idempotency` and `state`; `app` builds the application
and serves it.
"""

# State files pickle the emulator's objects by module and class name: those written before the
# emulator became a package name them here, so these names stay importable from the package.
from tatame_devstack.stripe_emulator.app import build_app, main, serve
from tatame_devstack.stripe_emulator.catalog import CatalogProduct, Price
from tatame_devstack.stripe_emulator.checkout import (
    BillingPortalSession,
    CheckoutSession,
    EphemeralKey,
)
from tatame_devstack.stripe_emulator.idempotency import IdempotencyLayer, _Outcome
from tatame_devstack.stripe_emulator.schedules import SubscriptionSchedule
from tatame_devstack.stripe_emulator.state import StateFile
from tatame_devstack.stripe_emulator.subscriptions import PriceSubscription

__all__ = [
    "BillingPortalSession",
    "CatalogProduct",
    "CheckoutSession",
    "EphemeralKey",
    "IdempotencyLayer",
    "Price",
    "PriceSubscription",
    "StateFile",
    "SubscriptionSchedule",
    "_Outcome",
    "build_app",
    "main",
    "serve",
]
