"""A local, stateful Stripe emulator for development and tests (never production).

It runs `localstripe` (GPL-3.0, a dev/test dependency only) with what our backend needs and
localstripe lacks, added by subclassing its resources and extending its aiohttp app, and it
answers as Stripe does at the API version stripe-python pins (`2026-10-28.endive`): every object
it renders goes through `render.shape`, which gives it exactly the fields of stripe-python's
class for it (no field that version dropped, null for an optional one without a value,
includable ones such as `invoice.confirmation_secret` only when expanded). Besides:

- the Prices API; each recurring price is also a localstripe Plan with the same id;
- products with `marketing_features`, `default_price_data` (create), `default_price` (update)
  and `updated`, and a `product.updated` event on update;
- subscriptions as Stripe bills them at that version, in flexible billing mode (its default):
  `payment_behavior=default_incomplete` (the first invoice's PaymentIntent, or during a trial a
  `pending_setup_intent`, waits for the client; confirming it with `payment_method=pm_card_visa`
  pays and activates, saving the card with `payment_settings.save_default_payment_method`), a
  `default_payment_method`, a trial that starts `trialing` (so says its created event) with its
  $0 paid invoice, item changes with prorations that credit what was debited
  (`proration_behavior`, `always_invoice` billing at once), `cancel_at_period_end` with
  `cancel_at`, periods (on the items) that honour `interval_count` and trials; pending updates
  (`payment_behavior=pending_if_incomplete`: a change whose invoice is not paid at once is held
  as `pending_update` until paid, or voided at its expiry; `pending_updates`); paused collection
  (`pause_collection`: invoices voided, kept as drafts or marked uncollectible, `resumes_at`
  passed by a test clock; `pauses`) and `billing_cycle_anchor[type]=now` (a new period from the
  customer's time, without prorations);
- subscription schedules `from_subscription` (phases of one item; release), invoice previews
  (`POST /v1/invoices/create_preview`) of an item change;
- Stripe Tax (`tax`, `checkout_tax`): customers located by their billing address (`tax`
  includable; `tax[validate_location]=immediately`), `automatic_tax` on subscriptions, their
  invoices (`total_taxes`, lines' `taxes`, `total_excluding_tax`) and previews, a fixed rate by
  country, `customer_tax_location_invalid` for a customer it cannot locate; Checkout's
  `automatic_tax`, `billing_address_collection`, `customer_update`, `tax_id_collection`; the Tax
  Calculations API, which a PaymentIntent names in `hooks[inputs][tax][calculation]`;
- Checkout Sessions (subscription mode, for an existing customer), Billing Portal sessions and
  ephemeral keys (made for the request's `Stripe-Version`);
- a customer's default payment method (must be attached; detaching unsets it), its payment
  methods (`GET /v1/customers/{id}/payment_methods`), attach/detach events;
- invoices naming their subscription under `parent` and their PaymentIntent under `payments`
  (includable; also `GET /v1/invoice_payments`), a `billing_reason`, `invoice.finalized`/
  `invoice.paid` events, lines with their `parent` and `pricing` and, once finalized, a `number`
  and links to the hosted page and PDF (under `.invalid` hosts: the emulator serves no pages);
- events of the pinned version, with the object as it was then and, for a change, the previous
  values of what changed (`data.previous_attributes`); lists newest first, without localstripe's
  `total_count`; each delivered to the webhook endpoints that enable its type, signed with the
  endpoint's secret at the time of the attempt, and retried with a growing delay (1 s to 60 s,
  eight attempts: Stripe's schedule of days, in seconds) until the endpoint answers 2xx;
- objects rendered as Stripe renders them at the SDK's pinned API version (`render.shape`):
  customers, products, prices, payment and setup intents, payment methods, charges, refunds,
  disputes, Checkout and portal sessions, ephemeral keys, test clocks;
- Stripe's test cards: `pm_card_visa`, `pm_card_chargeDeclined` (declined; attaching it fails),
  `pm_card_chargeCustomerFail` (attaches; every charge declines), `pm_card_authenticationRequired`
  (3-D Secure: `requires_action` until the card holder answers), for payment intents, setup
  intents and the payments of subscriptions and invoices (`intents.pay`); each succeeded payment
  has its charge (`latest_charge`); a renewal that waits for the card holder sends
  `invoice.payment_action_required` after `invoice.payment_failed`;
- paying an open invoice (`POST /v1/invoices/{id}/pay`, with a `payment_method` of its customer's
  or what pays it otherwise): a decline is Stripe's 402 card error, a card asking for 3-D Secure
  Stripe's 402 `invoice_payment_intent_requires_action` (the card holder is taken as present);
- Billing Meters (`/v1/billing/meters`), meter events (`POST /v1/billing/meter_events`, one
  event per identifier for 24 hours) and their summaries (`…/event_summaries`); a metered price
  names an existing meter;
- refunds (`POST /v1/refunds`, in full or in part), disputes (`POST /v1/disputes/{id}/close`) and
  test clocks (`/v1/test_helpers/test_clocks`, advancing moves the clock's customers'
  subscriptions through their period ends);
- emulator-only endpoints for what a customer or a test clock would do: paying a Checkout Session
  (`POST /_testing/checkout/sessions/{id}/complete`, `payment_method=pm_card_…`), ending a
  subscription's period or trial (`POST /_testing/subscriptions/{id}/end_period`: a planned
  cancellation happens, the schedule's next phase starts, the new period is charged), telling an
  ephemeral key's version (`GET /_testing/ephemeral_keys/{secret}`), the card holder's 3-D Secure
  answer (`POST /_testing/{payment,setup}_intents/{id}/authenticate`, `outcome=succeed|fail`), a
  bank's dispute of a charge (`POST /_testing/charges/{id}/dispute`) and its decision
  (`POST /_testing/disputes/{id}/resolve`, `outcome=won|lost`), and what the conformance check
  saw (`GET /_testing/conformance`);
- Stripe's idempotency layer (`Idempotency-Key` on POST: replay, mismatch 400, in-flight 409);
- Stripe-shaped JSON errors for unknown routes and unexpected failures;
- state in memory (never localstripe's shared /tmp/localstripe.pickle), or in a state file.

Usage: python -m tatame_devstack.stripe_emulator [--host 127.0.0.1] [--port 8420]
[--state-file PATH]. Once listening it prints one line to stdout:
`stripe-emulator listening on http://127.0.0.1:<port>`.

One module per resource family: `catalog`, `customers`, `subscriptions` (with
`subscription_params`, `subscription_render`, `prorations` and `pending_updates`), `schedules`,
`invoices` (with `previews` and `invoice_tax`), `intents`, `setup_intents`, `payment_methods`,
`charges`, `refunds`, `disputes`, `meters`, `checkout` (with `checkout_tax`), `tax`, `currencies`,
`test_clocks`, `events` (with `webhook_endpoints` and `webhook_delivery`), `testing` (the `/_testing/*`
endpoints), on `params` (parsing), `render` (objects, lists and `expand[]`), `idempotency` and `state`; `app` builds the
application and serves it (`--conformance`: every request and response checked against
stripe-python's types, as in tests).
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
